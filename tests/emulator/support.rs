use std::collections::BTreeSet;

use apiconform::emulator::{Config, Emulator, Fault};
use apiconform::protocol::{
    self, Call, Clock, Credentials, FamilyId, HttpResponse, Method, Outcome, Params,
    ResponseFormat, SignatureMethod,
};
use serde_json::Value;

pub const NOW: i64 = 1_795_384_368;

pub fn emu(faults: &[Fault]) -> Emulator {
    Emulator::new(Config {
        faults: faults.iter().copied().collect::<BTreeSet<_>>(),
        ..Config::default()
    })
}

pub fn tencent() -> Credentials {
    Credentials {
        id: apiconform::emulator::TENCENT_DEFAULT.0.into(),
        secret: apiconform::emulator::TENCENT_DEFAULT.1.into(),
    }
}

pub fn alibaba() -> Credentials {
    Credentials {
        id: "testid".into(),
        secret: "testsecret".into(),
    }
}

pub fn params(v: Value) -> Params {
    v.as_object().cloned().expect("object")
}

pub fn cvm(action: &str, p: Value) -> Call {
    Call {
        family: FamilyId::TencentApi3,
        action: action.into(),
        version: Some("2017-03-12".into()),
        region: Some("ap-guangzhou".into()),
        service: "cvm".into(),
        host: "127.0.0.1:9000".into(),
        path: "/".into(),
        method: Method::Post,
        signature: SignatureMethod::Tc3HmacSha256,
        params: params(p),
        format: ResponseFormat::Default,
        index_base: 0,
    }
}

pub fn ecm(p: Value) -> Call {
    Call {
        version: Some("2019-07-19".into()),
        service: "ecm".into(),
        region: None,
        ..cvm("DisassociateInstancesKeyPairs", p)
    }
}

pub fn v2(p: Value) -> Call {
    Call {
        family: FamilyId::TencentV2,
        action: "UnBindInstanceKey".into(),
        version: None,
        region: Some("gz".into()),
        service: String::new(),
        host: "127.0.0.1:9000".into(),
        path: "/v2/index.php".into(),
        method: Method::Get,
        signature: SignatureMethod::V1HmacSha1,
        params: params(p),
        format: ResponseFormat::Default,
        index_base: 0,
    }
}

pub fn ecs(action: &str, p: Value, format: ResponseFormat) -> Call {
    Call {
        family: FamilyId::AliyunRpc,
        action: action.into(),
        version: Some("2014-05-26".into()),
        region: None,
        service: String::new(),
        host: "127.0.0.1:9000".into(),
        path: "/".into(),
        method: Method::Post,
        signature: SignatureMethod::RpcHmacSha1,
        params: params(p),
        format,
        index_base: 0,
    }
}

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);

pub fn send(emu: &Emulator, call: &Call) -> (HttpResponse, Outcome) {
    let creds = if call.family == FamilyId::AliyunRpc {
        alibaba()
    } else {
        tencent()
    };
    let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let req = protocol::encode(
        call,
        &creds,
        &Clock {
            timestamp: NOW,
            nonce: n.to_string(),
        },
    )
    .unwrap();
    let resp = emu.handle(&req, NOW);
    let out = protocol::decode(call.family, &resp);
    (resp, out)
}

pub fn code(out: &Outcome) -> String {
    match &out.result {
        protocol::OutcomeResult::Error { code, .. } => code.clone(),
        protocol::OutcomeResult::Success => "success".into(),
        protocol::OutcomeResult::Malformed { reason } => format!("malformed: {reason}"),
    }
}

pub fn keys(emu: &Emulator, id: &str) -> Vec<String> {
    emu.world()
        .instances
        .iter()
        .find(|i| i.id == id)
        .map(|i| i.keys.clone())
        .unwrap_or_default()
}
