//! apiconform: a property-based conformance harness for cloud control-plane APIs.
//!
//! Spec files (transcribed from the vendors' documents) drive generators of valid and invalid
//! requests; the requests are signed and sent to a target; every response is judged against the
//! spec. The pure stages ([`spec`], [`world`], [`protocol`]) do no network I/O.
#![warn(missing_docs)]

pub mod case;
pub mod cli;
pub mod emulator;
pub mod generate;
pub mod input;
pub mod oracle;
pub mod protocol;
pub mod proxy;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod spec;
pub mod world;
