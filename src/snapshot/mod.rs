//! Snapshots: a fixed corpus of exchanges per API, normalised for people, stored in insta's
//! `.snap` format so `cargo insta review` can accept changes.
//!
//! One source of truth serves both `cargo test` (`tests/snapshots/main.rs`) and the `apiconform
//! snapshot` command. Its own parts are the three below; sending, signing and observing are the
//! runner's ([`crate::run::Session`]):
//! 1. `corpus` builds the cases ([`corpus`], [`api_corpus`]), deterministically from a fixed
//!    seed and the world.
//! 2. `record` sends them ([`record_in_process`], [`record_target`]) and renders each exchange
//!    as YAML ([`Recorded`]), normalised by `normalise` ([`redact`]).
//! 3. `store` checks the YAML against `<dir>/<api>/<id>.snap` ([`compare`]); a difference is
//!    shown as a unified diff naming the exchange and, by [`Mode`], written beside it as
//!    `.snap.new` (what `cargo insta review` accepts) or over it.

mod corpus;
mod normalise;
mod record;
mod store;

pub use corpus::{api_corpus, corpus, counts, missing_situations, Entry, SEED};
pub use normalise::redact;
pub use record::{record_in_process, record_target, Recorded, TargetRun};
pub use store::{compare, snap_file, Mode, Report, Status};
