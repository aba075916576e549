//! Cases: one abstract request (parameter values, not bytes) plus what it is meant to break, and
//! the analysis of what a case does to a spec's rules.
//!
//! Every stage meets here: the generator makes cases, the oracle judges them, the protocol turns
//! them into bytes, the runner and the snapshots send them. This module imports none of those:
//! it reads the spec and the world, and nothing else, so the stages can share it without
//! depending on each other.

pub mod analysis;

use serde::{Deserialize, Serialize};

use crate::spec::{
    BatchMode, LoadedApi, Method, Params, ResponseFormat, SignatureMethod, Situation,
};

/// One generated request: abstract parameters plus what it is meant to break.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Case {
    /// `LoadedApi.name` of the API.
    pub api: String,
    /// The region the request is sent to (resources are looked up there).
    pub region: String,
    /// Parameter values keyed by the document's parameter names.
    pub params: Params,
    /// Ids of the rules the generator meant to break (the oracle recomputes them); empty when
    /// left out (a hand-written repro).
    #[serde(default)]
    pub violates: Vec<String>,
    /// Unspecified situations the case hits (only those the spec lists).
    #[serde(default)]
    pub situations: Vec<Situation>,
    /// An authentication fault the runner applies while signing (none when left out).
    #[serde(default)]
    pub auth: AuthFault,
    /// The document example this case is (its `name`), when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// How the request travels.
    pub transport: Transport,
}

/// Authentication faults, applied by the runner when it signs the request.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuthFault {
    /// A correctly signed request.
    #[default]
    None,
    /// Sign with a secret key other than the target's (family rule `signature`).
    WrongSecret,
    /// Send a secret id the target does not know (family rule `secret_id_known`).
    UnknownSecretId,
    /// Sign correctly, then change one character of the signature (family rule `signature`).
    TamperedSignature,
    /// Sign with a timestamp an hour in the past (family rule `timestamp_window`).
    ExpiredTimestamp,
    /// Send the same signed request twice; the second is judged (family rule `nonce_unique`).
    ReusedNonce,
    /// Sign with a timestamp three hours ahead of the clock: the window's other side (family
    /// rule `timestamp_window`; every family states or reads its window as a skew either way).
    FutureTimestamp,
    /// Send the common parameter `Version` as a well-formed date no version of the product has
    /// (`1999-` and the spec's month and day) (family rule `version_known`): a target routing
    /// by host or action alone, ignoring it, accepts the request.
    UnknownVersion,
}

impl AuthFault {
    /// Every fault, in a fixed order.
    pub const ALL: [AuthFault; 7] = [
        AuthFault::WrongSecret,
        AuthFault::UnknownSecretId,
        AuthFault::TamperedSignature,
        AuthFault::ExpiredTimestamp,
        AuthFault::ReusedNonce,
        AuthFault::FutureTimestamp,
        AuthFault::UnknownVersion,
    ];
}

/// How a request travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Transport {
    /// HTTP method.
    pub method: Method,
    /// Signature scheme.
    pub signature: SignatureMethod,
    /// Response format to ask for.
    pub format: ResponseFormat,
    /// First index of `Name.N` list items on forms: 0 as the SDKs send, 1 where the documents
    /// show it (a wire form) or for the `one_based_index` situation.
    pub index_base: u32,
    /// The other wire forms the documents show, where the case uses them.
    #[serde(default, skip_serializing_if = "Forms::is_sdk")]
    pub forms: Forms,
}

/// Wire forms a case may take besides the SDKs' own (see [`crate::spec::WireForm`]); all off is
/// what the SDKs send.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Forms {
    /// The action spelt as the spec's `action_spelling` form.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub action_spelling: bool,
    /// Booleans written `TRUE`/`FALSE` on forms.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upper_booleans: bool,
    /// JSON list parameters written with a space after each comma.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spaced_json_lists: bool,
}

impl Forms {
    /// Whether these are the SDKs' forms.
    pub fn is_sdk(&self) -> bool {
        *self == Forms::default()
    }
}

impl Case {
    /// A CVM `AssociateInstancesKeyPairs` case with these parameters, signed and sent as the
    /// SDKs do (unit tests).
    #[cfg(test)]
    pub(crate) fn cvm_associate(params: serde_json::Value) -> Case {
        Case {
            api: "tencent-cvm/AssociateInstancesKeyPairs".into(),
            region: "ap-guangzhou".into(),
            params: params.as_object().cloned().unwrap_or_default(),
            violates: vec![],
            situations: vec![],
            auth: AuthFault::None,
            example: None,
            transport: Transport {
                method: crate::protocol::Method::Post,
                signature: crate::protocol::SignatureMethod::Tc3HmacSha256,
                format: crate::protocol::ResponseFormat::Default,
                index_base: 0,
                forms: Forms::default(),
            },
        }
    }

    /// The instance ids this case names in the API's effect parameter, whatever their validity,
    /// sorted and deduplicated: what the runner locks and observes.
    pub fn instance_ids(&self, api: &LoadedApi) -> Vec<String> {
        let mut ids = analysis::param_items(&api.spec, self, &api.spec.effect.instances);
        ids.sort();
        ids.dedup();
        ids
    }

    /// Whether the documents require this case to fail as a whole, judged from what the
    /// generator meant it to break: an all-or-nothing batch breaking a rule, or a signing fault
    /// other than a replay (whose first send is an ordinary call). A hint for scheduling and
    /// planning; the runner confirms it against the model before relying on it for a verdict.
    pub fn must_fail_whole(&self, api: &LoadedApi) -> bool {
        match self.auth {
            // A rule the documents leave `open` may be refused or not: breaking it alone does
            // not make the case fail.
            AuthFault::None => {
                api.spec.batch.mode == BatchMode::AllOrNothing
                    && self.violates.iter().any(|id| {
                        api.spec
                            .rules
                            .iter()
                            .find(|r| &r.id == id)
                            .is_none_or(|r| r.open.is_none())
                    })
            }
            AuthFault::ReusedNonce => false,
            _ => true,
        }
    }
}

/// A case of `api` with these parameters, sent as the vendor's SDK sends it (TC3 JSON for API
/// 3.0, a signed query for API 2.0 and Alibaba RPC).
pub fn sdk_case(api: &crate::spec::LoadedApi, region: &str, params: crate::spec::Params) -> Case {
    let (method, signature) = match api.spec.api.family {
        crate::spec::FamilyId::TencentApi3 => (
            crate::spec::Method::Post,
            crate::spec::SignatureMethod::Tc3HmacSha256,
        ),
        crate::spec::FamilyId::TencentV2 => (
            crate::spec::Method::Get,
            crate::spec::SignatureMethod::V1HmacSha256,
        ),
        crate::spec::FamilyId::AliyunRpc => (
            crate::spec::Method::Get,
            crate::spec::SignatureMethod::RpcHmacSha1,
        ),
    };
    Case {
        api: api.name.clone(),
        region: region.to_string(),
        params,
        violates: vec![],
        situations: vec![],
        auth: AuthFault::None,
        example: None,
        transport: Transport {
            method,
            signature,
            format: crate::spec::ResponseFormat::Default,
            index_base: 0,
            forms: Forms::default(),
        },
    }
}
