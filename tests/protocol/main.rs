//! Protocol integration tests: official signing vectors, SDK captures, properties.

mod captures;
mod props;
mod responses;
mod support;
mod vectors;
