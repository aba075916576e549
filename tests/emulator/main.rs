//! The emulator: behaviour per document, faults that change only what they concern, and a real
//! HTTP listener on loopback.

mod auth;
mod behaviour;
mod http;
mod robust;
mod support;
