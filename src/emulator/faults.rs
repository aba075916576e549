//! Named, narrow emulator bugs, for showing that the harness catches them.
//!
//! Each fault changes the emulator's answer only for the requests it concerns; everything else
//! stays conformant, so a run against a faulty emulator must name exactly the broken rule.

use std::str::FromStr;

/// A deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// CVM accepts 101 instances in one request (the limit is 100).
    LimitOffByOne,
    /// CVM takes any `ins-` id, so a malformed id gets NotFound instead of Malformed.
    LaxInstanceIdPattern,
    /// A failing Tencent batch still applies to the instances before the bad one.
    NonAtomicBatch,
    /// Windows instances are accepted for key operations.
    WindowsAccepted,
    /// `ForceStop=true` is ignored: a RUNNING instance is rejected anyway.
    ForceStopIgnored,
    /// Tencent API 3.0 responses lack `RequestId`.
    MissingRequestId,
    /// Tencent API 3.0 errors are put beside `Response` instead of inside it.
    ErrorOutsideResponse,
    /// Signatures are not checked (any signature passes).
    UncheckedSignature,
    /// Alibaba errors are sent with HTTP 200 instead of their 4xx status.
    WrongHttpStatus,
    /// Alibaba `FailCount` counts successes instead of failures.
    InconsistentFailCount,
    /// CVM associate adds the keys beside the old ones instead of replacing them.
    AssociateAppends,
    /// Disassociate answers success without unbinding anything.
    DisassociateNoop,
    /// Timestamps are not checked against the window.
    StaleTimestampAccepted,
    /// Reused nonces are accepted (API 2.0, Alibaba).
    NonceReplayAccepted,
    /// A missing required parameter gets `InvalidParameterValue` instead of `MissingParameter`.
    MissingParamWrongCode,
    /// API 2.0 answers `code` as a string.
    V2CodeAsString,
    /// Alibaba answers JSON when XML was asked for (or the default).
    XmlIgnored,
    /// Key ids are matched case-insensitively, so `SKEY-…` binds an existing key.
    KeyIdCaseInsensitive,
    /// ECM refuses Windows instances with CVM's `InvalidInstance.NotSupported`, a code seed 001
    /// does not list (nor do the family's common codes).
    ForeignCode,
    /// CVM answers `InvalidInstanceId.NotFound` for an instance named twice, though it exists.
    NotFoundForRepeatedId,
    /// CVM accepts a RUNNING instance without ForceStop and binds it without shutting it down.
    RunningAcceptedWithoutShutdown,
    /// API 2.0 serves only the heading's spelling, refusing the example's `unBindInstanceKey`.
    ActionCaseRejected,
    /// CVM refuses lists numbered from 1, as seeds 000 and 004 write their examples.
    OneBasedRejected,
    /// Tencent API 3.0 refuses `ForceStop=TRUE`/`FALSE` on forms, as the seeds' tables write it.
    UpperBooleansRejected,
    /// Alibaba refuses a JSON list with a space after the comma, as seed 003's example writes it.
    SpacedJsonRejected,
    /// The documented request rates are never enforced, even when asked (`--rate-limits
    /// documented`, or the admin view's switch): no caller ever gets the throttling code.
    NeverThrottles,
    /// An unbind reads an instance's keys, waits, and writes back what it read minus its keys,
    /// without a lock: two calls on one instance at once lose the other's update.
    LostUpdate,
    /// API 2.0's UnBindInstanceKey keeps CVM bindings in a store of its own and writes it back:
    /// an API 3.0 change since its last call is undone.
    LegacySecondStore,
    /// CVM `DescribeKeyPairs` shows the bindings as they were before the last change.
    LaggingView,
    /// Only the past side of the timestamp window is checked: a request signed hours ahead of
    /// the server's clock is accepted.
    FutureTimestampAccepted,
    /// Alibaba XML successes come under a near root element, `<{Action}sResponse>`.
    XmlRootMisnamed,
    /// Request ids come from a ring of 64: the 65th answer repeats the first one's id.
    RequestIdsRecycled,
    /// Tencent API 3.0 serves an unknown `Version` as CVM's 2017-03-12 instead of refusing it.
    VersionIgnored,
}

impl Fault {
    /// Every fault, in catalogue order.
    pub const ALL: &'static [Fault] = &[
        Fault::LimitOffByOne,
        Fault::LaxInstanceIdPattern,
        Fault::NonAtomicBatch,
        Fault::WindowsAccepted,
        Fault::ForceStopIgnored,
        Fault::MissingRequestId,
        Fault::ErrorOutsideResponse,
        Fault::UncheckedSignature,
        Fault::WrongHttpStatus,
        Fault::InconsistentFailCount,
        Fault::AssociateAppends,
        Fault::DisassociateNoop,
        Fault::StaleTimestampAccepted,
        Fault::NonceReplayAccepted,
        Fault::MissingParamWrongCode,
        Fault::V2CodeAsString,
        Fault::XmlIgnored,
        Fault::KeyIdCaseInsensitive,
        Fault::ForeignCode,
        Fault::NotFoundForRepeatedId,
        Fault::RunningAcceptedWithoutShutdown,
        Fault::ActionCaseRejected,
        Fault::OneBasedRejected,
        Fault::UpperBooleansRejected,
        Fault::SpacedJsonRejected,
        Fault::NeverThrottles,
        Fault::LostUpdate,
        Fault::LegacySecondStore,
        Fault::LaggingView,
        Fault::FutureTimestampAccepted,
        Fault::XmlRootMisnamed,
        Fault::RequestIdsRecycled,
        Fault::VersionIgnored,
    ];

    /// The name used with `--fault`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::LimitOffByOne => "limit-off-by-one",
            Fault::LaxInstanceIdPattern => "lax-instance-id-pattern",
            Fault::NonAtomicBatch => "non-atomic-batch",
            Fault::WindowsAccepted => "windows-accepted",
            Fault::ForceStopIgnored => "force-stop-ignored",
            Fault::MissingRequestId => "missing-request-id",
            Fault::ErrorOutsideResponse => "error-outside-response",
            Fault::UncheckedSignature => "unchecked-signature",
            Fault::WrongHttpStatus => "wrong-http-status",
            Fault::InconsistentFailCount => "inconsistent-fail-count",
            Fault::AssociateAppends => "associate-appends",
            Fault::DisassociateNoop => "disassociate-noop",
            Fault::StaleTimestampAccepted => "stale-timestamp-accepted",
            Fault::NonceReplayAccepted => "nonce-replay-accepted",
            Fault::MissingParamWrongCode => "missing-param-wrong-code",
            Fault::V2CodeAsString => "v2-code-as-string",
            Fault::XmlIgnored => "xml-ignored",
            Fault::KeyIdCaseInsensitive => "key-id-case-insensitive",
            Fault::ForeignCode => "foreign-code",
            Fault::NotFoundForRepeatedId => "not-found-for-repeated-id",
            Fault::RunningAcceptedWithoutShutdown => "running-accepted-without-shutdown",
            Fault::ActionCaseRejected => "action-case-rejected",
            Fault::OneBasedRejected => "one-based-rejected",
            Fault::UpperBooleansRejected => "upper-booleans-rejected",
            Fault::SpacedJsonRejected => "spaced-json-rejected",
            Fault::NeverThrottles => "never-throttles",
            Fault::LostUpdate => "lost-update",
            Fault::LegacySecondStore => "legacy-second-store",
            Fault::LaggingView => "lagging-view",
            Fault::FutureTimestampAccepted => "future-timestamp-accepted",
            Fault::XmlRootMisnamed => "xml-root-misnamed",
            Fault::RequestIdsRecycled => "request-ids-recycled",
            Fault::VersionIgnored => "version-ignored",
        }
    }

    /// What the fault breaks, in a sentence.
    pub fn description(self) -> &'static str {
        match self {
            Fault::LimitOffByOne => "CVM accepts 101 InstanceIds (the documented limit is 100)",
            Fault::LaxInstanceIdPattern => {
                "CVM accepts any ins- id as well-formed: malformed ids get NotFound instead of Malformed"
            }
            Fault::NonAtomicBatch => {
                "a Tencent batch with one bad instance still changes the instances before it"
            }
            Fault::WindowsAccepted => "Windows instances can be bound and unbound",
            Fault::ForceStopIgnored => "ForceStop=true is ignored: RUNNING instances are rejected",
            Fault::MissingRequestId => "Tencent API 3.0 responses carry no RequestId",
            Fault::ErrorOutsideResponse => {
                "Tencent API 3.0 errors are sent as a top-level Error object, outside Response"
            }
            Fault::UncheckedSignature => "signatures are not verified",
            Fault::WrongHttpStatus => "Alibaba errors come with HTTP 200",
            Fault::InconsistentFailCount => "Alibaba FailCount counts the successful items",
            Fault::AssociateAppends => "CVM associate keeps the keys bound before",
            Fault::DisassociateNoop => "disassociate and detach answer success but unbind nothing",
            Fault::StaleTimestampAccepted => "request timestamps are not checked",
            Fault::NonceReplayAccepted => "reused nonces are accepted (API 2.0 and Alibaba)",
            Fault::MissingParamWrongCode => {
                "a missing required parameter gets InvalidParameterValue instead of MissingParameter"
            }
            Fault::V2CodeAsString => "API 2.0 responses send code as a string (\"0\")",
            Fault::XmlIgnored => "Alibaba answers JSON when XML (the default) was asked for",
            Fault::KeyIdCaseInsensitive => "Tencent key ids match regardless of case",
            Fault::ForeignCode => {
                "ECM refuses Windows instances with InvalidInstance.NotSupported, a CVM code seed 001 does not list"
            }
            Fault::NotFoundForRepeatedId => {
                "CVM answers InvalidInstanceId.NotFound for an existing instance named twice"
            }
            Fault::RunningAcceptedWithoutShutdown => {
                "CVM binds a RUNNING instance without ForceStop and leaves it RUNNING (no shutdown happened)"
            }
            Fault::ActionCaseRejected => {
                "API 2.0 refuses the example's spelling unBindInstanceKey (4000)"
            }
            Fault::OneBasedRejected => {
                "CVM refuses InstanceIds.1, InstanceIds.2, ... (the seeds' examples number from 1)"
            }
            Fault::UpperBooleansRejected => "Tencent API 3.0 refuses ForceStop=TRUE/FALSE on forms",
            Fault::SpacedJsonRejected => {
                "Alibaba refuses InstanceIds=[\"i-a\", \"i-b\"] (a space after the comma)"
            }
            Fault::NeverThrottles => {
                "the documented request rates (CVM 10/s, ECM 20/s) are never enforced, even when asked"
            }
            Fault::LostUpdate => {
                "unbinds read the keys, wait 10 ms and write back what they read minus their keys (no lock): concurrent calls on one instance lose updates"
            }
            Fault::LegacySecondStore => {
                "API 2.0 UnBindInstanceKey keeps its own copy of the bindings and writes it back, undoing API 3.0 changes made since"
            }
            Fault::LaggingView => {
                "CVM DescribeKeyPairs AssociatedInstanceIds shows the bindings as they were before the last change"
            }
            Fault::FutureTimestampAccepted => {
                "only stale timestamps are refused: a request signed hours ahead is accepted"
            }
            Fault::XmlRootMisnamed => {
                "Alibaba XML successes come as <DetachKeyPairsResponse> (the documents print <DetachKeyPairResponse>)"
            }
            Fault::RequestIdsRecycled => {
                "request ids repeat every 64 answers (the documents call each unique to its request)"
            }
            Fault::VersionIgnored => {
                "Tencent API 3.0 serves an unknown Version as CVM 2017-03-12 instead of NoSuchVersion"
            }
        }
    }
}

impl Fault {
    // The catalogue: where each fault shows and what must name it. `apiconform selftest` and
    // the test suite (`tests/run/catches.rs`) read it; a new fault adds one arm to each match,
    // at the end, in `ALL`'s order.

    /// The spec pattern (as `run --spec` takes it) the fault is exercised on: an API where it
    /// shows.
    pub fn spec(self) -> &'static str {
        match self {
            Fault::LimitOffByOne => "tencent-cvm/Associate",
            Fault::LaxInstanceIdPattern => "tencent-cvm/Associate",
            Fault::NonAtomicBatch => "tencent-cvm/Associate",
            Fault::WindowsAccepted => "tencent-cvm/Associate",
            Fault::ForceStopIgnored => "tencent-cvm/Associate",
            Fault::MissingRequestId => "tencent-cvm/Associate",
            Fault::ErrorOutsideResponse => "tencent-cvm/Associate",
            Fault::UncheckedSignature => "tencent-cvm/Associate",
            Fault::WrongHttpStatus => "alibaba-ecs",
            Fault::InconsistentFailCount => "alibaba-ecs",
            Fault::AssociateAppends => "tencent-cvm/Associate",
            Fault::DisassociateNoop => "tencent-cvm/Disassociate",
            Fault::StaleTimestampAccepted => "tencent-cvm/Associate",
            Fault::NonceReplayAccepted => "UnBindInstanceKey",
            Fault::MissingParamWrongCode => "tencent-cvm/Associate",
            Fault::V2CodeAsString => "UnBindInstanceKey",
            Fault::XmlIgnored => "alibaba-ecs",
            Fault::KeyIdCaseInsensitive => "tencent-cvm/Associate",
            Fault::ForeignCode => "tencent-ecm",
            Fault::NotFoundForRepeatedId => "tencent-cvm/Associate",
            Fault::RunningAcceptedWithoutShutdown => "tencent-cvm/Associate",
            Fault::ActionCaseRejected => "UnBindInstanceKey",
            Fault::OneBasedRejected => "tencent-cvm/Associate",
            Fault::UpperBooleansRejected => "tencent-cvm/Associate",
            Fault::SpacedJsonRejected => "alibaba-ecs",
            Fault::NeverThrottles => "tencent-ecm",
            // The concurrency phase mixes a product's APIs: the whole product.
            Fault::LostUpdate => "tencent-cvm",
            Fault::LegacySecondStore => "tencent-cvm",
            Fault::LaggingView => "tencent-cvm",
            Fault::FutureTimestampAccepted => "tencent-cvm/Associate",
            Fault::XmlRootMisnamed => "alibaba-ecs",
            Fault::RequestIdsRecycled => "tencent-cvm/Associate",
            Fault::VersionIgnored => "tencent-cvm/Associate",
        }
    }

    /// The rule ids a run on [`Fault::spec`] must name (any one of them) to have caught the
    /// fault.
    pub fn caught_by(self) -> &'static [&'static str] {
        match self {
            Fault::LimitOffByOne => &["instance-ids-limit"],
            Fault::LaxInstanceIdPattern => &["instance-id-format"],
            Fault::NonAtomicBatch => &["binds-keys"],
            Fault::WindowsAccepted => &["instance-linux"],
            Fault::ForceStopIgnored => &["instance-stopped"],
            Fault::MissingRequestId => &["success-shape", "error-envelope"],
            Fault::ErrorOutsideResponse => &["error-envelope"],
            Fault::UncheckedSignature => &["signature-valid"],
            // Every Alibaba error the run provokes comes with the right code and the wrong
            // status: the family's envelope rule names it, whichever case meets it.
            Fault::WrongHttpStatus => &["error-envelope"],
            Fault::InconsistentFailCount => &["per-item-consistency"],
            Fault::AssociateAppends => &["binds-keys"],
            Fault::DisassociateNoop => &["unbinds-keys"],
            Fault::StaleTimestampAccepted => &["timestamp-window"],
            Fault::NonceReplayAccepted => &["nonce-unique"],
            Fault::MissingParamWrongCode => &["instance-ids-required", "key-ids-required"],
            Fault::V2CodeAsString => &["success-shape", "error-envelope"],
            Fault::XmlIgnored => &["response-format"],
            Fault::KeyIdCaseInsensitive => &["key-id-format"],
            Fault::ForeignCode => &["documented-code"],
            Fault::NotFoundForRepeatedId => &["instance-exists"],
            Fault::RunningAcceptedWithoutShutdown => &["instance-stopped"],
            Fault::ActionCaseRejected => &["wire-forms"],
            Fault::OneBasedRejected => &["wire-forms"],
            Fault::UpperBooleansRejected => &["wire-forms"],
            Fault::SpacedJsonRejected => &["wire-forms"],
            Fault::NeverThrottles => &["rate-limit"],
            // Only the concurrency phase (`run --concurrent`) sends two calls on one instance
            // at once: the single-request run cannot see it.
            Fault::LostUpdate => &["linearizable"],
            // Only sequences that mix API 3.0 and API 2.0 calls on one instance show these
            // (`run --stateful`), and only they read both views.
            Fault::LegacySecondStore => &["sequence", "linearizable"],
            Fault::LaggingView => &["views-agree"],
            Fault::FutureTimestampAccepted => &["timestamp-window"],
            Fault::XmlRootMisnamed => &["xml-root"],
            Fault::RequestIdsRecycled => &["request-id-unique"],
            Fault::VersionIgnored => &["version-known"],
        }
    }

    /// Whether only a `--strict` run must catch the fault (it breaks one of our judgements, or
    /// a reading of the documents the default leaves open); the self-test runs such a fault
    /// with `--strict`.
    pub fn strict(self) -> bool {
        match self {
            Fault::LimitOffByOne => false,
            Fault::LaxInstanceIdPattern => false,
            Fault::NonAtomicBatch => false,
            Fault::WindowsAccepted => false,
            Fault::ForceStopIgnored => false,
            Fault::MissingRequestId => false,
            Fault::ErrorOutsideResponse => false,
            Fault::UncheckedSignature => false,
            Fault::WrongHttpStatus => false,
            Fault::InconsistentFailCount => false,
            Fault::AssociateAppends => false,
            Fault::DisassociateNoop => false,
            Fault::StaleTimestampAccepted => false,
            Fault::NonceReplayAccepted => false,
            Fault::MissingParamWrongCode => false,
            Fault::V2CodeAsString => false,
            Fault::XmlIgnored => false,
            Fault::KeyIdCaseInsensitive => false,
            Fault::ForeignCode => false,
            Fault::NotFoundForRepeatedId => false,
            // The seeds' literal reading: the default leaves it open.
            Fault::RunningAcceptedWithoutShutdown => true,
            Fault::ActionCaseRejected => false,
            Fault::OneBasedRejected => false,
            Fault::UpperBooleansRejected => false,
            Fault::SpacedJsonRejected => false,
            Fault::NeverThrottles => false,
            Fault::LostUpdate => false,
            Fault::LegacySecondStore => false,
            Fault::LaggingView => false,
            Fault::FutureTimestampAccepted => false,
            Fault::XmlRootMisnamed => false,
            Fault::RequestIdsRecycled => false,
            Fault::VersionIgnored => false,
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown fault `{s}`; `apiconform serve --list-faults` lists them: {}",
                    Fault::ALL
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_every_fault_has_a_catalogue_entry() {
        for &f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
            assert!(!f.spec().is_empty(), "{f}: no spec pattern");
            assert!(!f.caught_by().is_empty(), "{f}: no rule catches it");
        }
    }
}
