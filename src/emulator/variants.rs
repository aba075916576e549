//! The other reading of every open point: where the documents leave a choice to the
//! implementation (a judgement call of the specs, or an `unspecified` situation), a variant makes
//! the emulator take the other defensible choice. A run against the emulator under any variant
//! must report no failure: a check that fails one is a check of our choice, not of the documents.
//!
//! Every variant goes with every other (where two touch one point, as the Alibaba id readings
//! do, the narrower one wins for what it covers), so all of them can be on at once.
//!
//! Unlike a [`super::Fault`], a variant is never a bug. Each spec entry that records a judgement
//! or an unspecified situation names the variants that exercise it (`variants:` in the spec
//! files), and `apiconform specs lint` rejects one that names none.

use std::str::FromStr;

/// Another defensible reading of the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// Alibaba: a bad `InstanceIds` (not a JSON array, empty, over 50, an id outside our
    /// pattern) is answered 400 `InvalidInstanceIds.MalFormed`.
    EcsMalformedIdsCode,
    /// Alibaba: an id outside `^i-[a-z0-9]{1,30}$` is an unknown instance (a per-item
    /// `InvalidInstanceId.NotFound`), not a malformed request.
    EcsIdsAsUnknownInstances,
    /// ECM: an instance id of any form is looked up; one naming no instance is answered
    /// `InvalidParameterValue.InstanceIdNotSupported`.
    EcmAnyIdForm,
    /// ECM rejects Windows instances with `InvalidParameterValue.InstanceIdNotSupported`.
    EcmRejectsWindows,
    /// ECM rejects instances that are not STOPPED (RUNNING ones only without `ForceStop`) with
    /// `InvalidParameterValue.InstanceIdNotSupported`.
    EcmRejectsRunning,
    /// A forced call on a RUNNING instance leaves it STOPPED (CVM and ECM API 3.0).
    ForceStopLeavesStopped,
    /// CVM API 3.0: a RUNNING instance without `ForceStop` is shut down normally and the call
    /// succeeds, leaving it STOPPED (seed 000/004's reading of `ForceStop=FALSE`).
    RunningShutDownNormally,
    /// The same id twice in one request is rejected (Tencent `InvalidParameterValue`, API 2.0
    /// 4000, Alibaba `InvalidParameter`).
    DuplicateIdsRejected,
    /// Unbinding a key that is not bound to a named instance is rejected (CVM
    /// `FailedOperation.DisassociateKeyPairFailed`, ECM `InvalidParameterValue.InvalidKeyPairId`,
    /// API 2.0 5100, Alibaba a per-item failure).
    UnbindNotBoundRejected,
    /// Another precedence among several broken rules: the parameters are checked in another
    /// order (keys before instances where the default checks instances first — API 3.0 and
    /// Alibaba — and instances first in API 2.0).
    ReversePrecedence,
    /// Form lists numbered from 1 are rejected (Tencent `InvalidParameter`, API 2.0 4000).
    OneBasedIndexRejected,
    /// Alibaba key pairs are looked up in every region: a key pair of another region is found,
    /// and detaching it from this region's instances unbinds nothing.
    KeyPairAnyRegion,
    /// Alibaba RPC accepts timestamps up to a day old.
    AliyunTimestampWindowDay,
    /// Alibaba: a nonexistent instance fails the whole request (400
    /// `InvalidInstanceIds.ValueNotSupported`) instead of its own item.
    EcsUnknownInstanceRejectsRequest,
}

impl Variant {
    /// Every variant, in catalogue order.
    pub const ALL: &'static [Variant] = &[
        Variant::EcsMalformedIdsCode,
        Variant::EcsIdsAsUnknownInstances,
        Variant::EcmAnyIdForm,
        Variant::EcmRejectsWindows,
        Variant::EcmRejectsRunning,
        Variant::ForceStopLeavesStopped,
        Variant::RunningShutDownNormally,
        Variant::DuplicateIdsRejected,
        Variant::UnbindNotBoundRejected,
        Variant::ReversePrecedence,
        Variant::OneBasedIndexRejected,
        Variant::KeyPairAnyRegion,
        Variant::AliyunTimestampWindowDay,
        Variant::EcsUnknownInstanceRejectsRequest,
    ];

    /// The name used with `--variant`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::EcsMalformedIdsCode => "ecs-malformed-ids-code",
            Variant::EcsIdsAsUnknownInstances => "ecs-ids-as-unknown-instances",
            Variant::EcmAnyIdForm => "ecm-any-id-form",
            Variant::EcmRejectsWindows => "ecm-rejects-windows",
            Variant::EcmRejectsRunning => "ecm-rejects-running",
            Variant::ForceStopLeavesStopped => "force-stop-leaves-stopped",
            Variant::RunningShutDownNormally => "running-shut-down-normally",
            Variant::DuplicateIdsRejected => "duplicate-ids-rejected",
            Variant::UnbindNotBoundRejected => "unbind-not-bound-rejected",
            Variant::ReversePrecedence => "reverse-precedence",
            Variant::OneBasedIndexRejected => "one-based-index-rejected",
            Variant::KeyPairAnyRegion => "key-pair-any-region",
            Variant::AliyunTimestampWindowDay => "aliyun-timestamp-window-day",
            Variant::EcsUnknownInstanceRejectsRequest => "ecs-unknown-instance-rejects-request",
        }
    }

    /// The reading it takes, in a sentence.
    pub fn description(self) -> &'static str {
        match self {
            Variant::EcsMalformedIdsCode => {
                "Alibaba: a bad InstanceIds is answered 400 InvalidInstanceIds.MalFormed"
            }
            Variant::EcsIdsAsUnknownInstances => {
                "Alibaba: ids outside ^i-[a-z0-9]{1,30}$ are unknown instances (per-item NotFound)"
            }
            Variant::EcmAnyIdForm => {
                "ECM: ids of any form are looked up; unknown ones get InstanceIdNotSupported"
            }
            Variant::EcmRejectsWindows => {
                "ECM rejects Windows instances (InvalidParameterValue.InstanceIdNotSupported)"
            }
            Variant::EcmRejectsRunning => {
                "ECM rejects instances not STOPPED, RUNNING ones without ForceStop (InstanceIdNotSupported)"
            }
            Variant::ForceStopLeavesStopped => {
                "a forced call on a RUNNING instance leaves it STOPPED (CVM, ECM)"
            }
            Variant::RunningShutDownNormally => {
                "CVM: a RUNNING instance without ForceStop is shut down normally; the call succeeds"
            }
            Variant::DuplicateIdsRejected => "the same id twice in one request is rejected",
            Variant::UnbindNotBoundRejected => "unbinding a key that is not bound is rejected",
            Variant::ReversePrecedence => {
                "several broken rules: parameters checked in another order (keys vs instances first)"
            }
            Variant::OneBasedIndexRejected => "form lists numbered from 1 are rejected",
            Variant::KeyPairAnyRegion => {
                "Alibaba: a key pair of another region is found (and unbinds nothing here)"
            }
            Variant::AliyunTimestampWindowDay => "Alibaba RPC accepts timestamps up to a day old",
            Variant::EcsUnknownInstanceRejectsRequest => {
                "Alibaba: a nonexistent instance fails the whole request, not its item"
            }
        }
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> Result<Variant, String> {
        Variant::ALL
            .iter()
            .copied()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown variant `{s}`; known: {}",
                    Variant::ALL
                        .iter()
                        .map(|v| v.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>(), Ok(v));
        }
        let err = "nonsense".parse::<Variant>().unwrap_err();
        assert!(err.contains("ecm-rejects-windows"), "{err}");
    }
}
