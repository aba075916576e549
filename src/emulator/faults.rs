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
    /// The documented request rates are never enforced, even when asked (`--rate-limits
    /// documented`, or the admin view's switch): no caller ever gets the throttling code.
    NeverThrottles,
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
        Fault::NeverThrottles,
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
            Fault::NeverThrottles => "never-throttles",
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
            Fault::NeverThrottles => {
                "the documented request rates (CVM 10/s, ECM 20/s) are never enforced, even when asked"
            }
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
