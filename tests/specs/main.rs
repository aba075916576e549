//! Spec files: the shipped specs load, and broken ones are rejected with located messages.

mod bad_input;
mod shipped;
