use apiconform::emulator::Fault;
use apiconform::protocol::ResponseFormat;
use serde_json::json;

use crate::support::*;

const S0: &str = "ins-cs000000"; // Linux, STOPPED, bound to skey-ck000000
const S1: &str = "ins-cs000001"; // Linux, STOPPED, unbound
const RUN: &str = "ins-cr000000"; // Linux, RUNNING
const WIN: &str = "ins-cw000000"; // Windows, STOPPED

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:06}")).collect()
}

#[test]
fn associate_replaces_previous_keys() {
    let e = emu(&[]);
    assert_eq!(keys(&e, S0), ["skey-ck000000"]);
    let (_, out) = send(
        &e,
        &cvm(
            "AssociateInstancesKeyPairs",
            json!({"InstanceIds": [S0], "KeyIds": ["skey-ck000005"]}),
        ),
    );
    assert_eq!(code(&out), "success");
    assert!(out.request_id.is_some());
    assert_eq!(keys(&e, S0), ["skey-ck000005"]);
}

#[test]
fn associate_appends_fault_keeps_old_keys_only_when_injected() {
    let e = emu(&[Fault::AssociateAppends]);
    send(
        &e,
        &cvm(
            "AssociateInstancesKeyPairs",
            json!({"InstanceIds": [S0], "KeyIds": ["skey-ck000005"]}),
        ),
    );
    assert_eq!(keys(&e, S0), ["skey-ck000000", "skey-ck000005"]);
}

#[test]
fn cvm_codes_follow_the_documents() {
    let e = emu(&[]);
    let a = |p| code(&send(&e, &cvm("AssociateInstancesKeyPairs", p)).1);
    assert_eq!(a(json!({"KeyIds": ["skey-ck000001"]})), "MissingParameter");
    assert_eq!(
        a(json!({"InstanceIds": ids("ins-cs", 101), "KeyIds": ["skey-ck000001"]})),
        "InvalidParameterValue.LimitExceeded"
    );
    assert_eq!(
        a(json!({"InstanceIds": ids("ins-cs", 100), "KeyIds": ["skey-ck000001"]})),
        "success"
    );
    assert_eq!(
        a(json!({"InstanceIds": ["ins-1122"], "KeyIds": ["skey-ck000001"]})),
        "InvalidInstanceId.Malformed"
    );
    assert_eq!(
        a(json!({"InstanceIds": [S1], "KeyIds": ["skey-1122"]})),
        "InvalidKeyPairId.Malformed"
    );
    assert_eq!(
        a(json!({"InstanceIds": ["ins-zzzzzzzz"], "KeyIds": ["skey-ck000001"]})),
        "InvalidInstanceId.NotFound"
    );
    assert_eq!(
        a(json!({"InstanceIds": [S1], "KeyIds": ["skey-zzzzzzzz"]})),
        "InvalidKeyPairId.NotFound"
    );
    assert_eq!(
        a(json!({"InstanceIds": [WIN], "KeyIds": ["skey-ck000001"]})),
        "UnsupportedOperation.InstanceOsWindows"
    );
    assert_eq!(
        a(json!({"InstanceIds": [RUN], "KeyIds": ["skey-ck000001"]})),
        "UnsupportedOperation.InstanceStateRunning"
    );
    assert_eq!(
        a(json!({"InstanceIds": [RUN], "KeyIds": ["skey-ck000001"], "ForceStop": true})),
        "success"
    );
    assert_eq!(
        a(json!({"InstanceIds": [S1], "KeyIds": ["skey-ck000001"], "ForceStop": "maybe"})),
        "InvalidParameterValue"
    );
}

#[test]
fn failed_tencent_batch_changes_nothing_unless_non_atomic_fault() {
    for (faults, changed) in [(vec![], false), (vec![Fault::NonAtomicBatch], true)] {
        let e = emu(&faults);
        let (_, out) = send(
            &e,
            &cvm(
                "AssociateInstancesKeyPairs",
                json!({"InstanceIds": [S1, WIN], "KeyIds": ["skey-ck000009"]}),
            ),
        );
        assert_eq!(code(&out), "UnsupportedOperation.InstanceOsWindows");
        assert_eq!(
            keys(&e, S1) == ["skey-ck000009"],
            changed,
            "faults {faults:?}"
        );
    }
}

#[test]
fn each_fault_changes_only_its_requests() {
    // A request no fault concerns gets the same answer with every fault.
    for f in Fault::ALL {
        let e = emu(&[*f]);
        let (_, out) = send(
            &e,
            &cvm(
                "DisassociateInstancesKeyPairs",
                json!({"InstanceIds": [S1], "KeyIds": ["skey-ck000000"]}),
            ),
        );
        let expected = if matches!(f, Fault::MissingRequestId) {
            None
        } else {
            Some(())
        };
        assert_eq!(out.request_id.as_ref().map(|_| ()), expected, "{f}");
        assert_eq!(code(&out), "success", "{f}");
    }
}

#[test]
fn response_shape_faults_show_in_the_outcome() {
    let e = emu(&[Fault::ErrorOutsideResponse]);
    let (_, out) = send(
        &e,
        &cvm(
            "AssociateInstancesKeyPairs",
            json!({"KeyIds": ["skey-ck000001"]}),
        ),
    );
    assert!(!out.problems.is_empty(), "{out:?}");
    let e = emu(&[Fault::V2CodeAsString]);
    let (_, out) = send(
        &e,
        &v2(json!({"keyId": "skey-ck000000", "instanceIds": [S0]})),
    );
    assert!(!out.problems.is_empty(), "{out:?}");
}

#[test]
fn ecm_uses_its_five_codes_and_has_no_instance_limit() {
    let e = emu(&[]);
    let d = |p| code(&send(&e, &ecm(p)).1);
    assert_eq!(
        d(json!({"InstanceIds": ids("ein-es", 104), "KeyIds": ["skey-ek000000"]})),
        "success"
    );
    assert_eq!(
        d(json!({"InstanceIds": ["ein-cw000000"], "KeyIds": ["skey-ek000000"]})),
        "InvalidParameterValue.InstanceIdNotSupported"
    );
    assert_eq!(
        d(json!({"InstanceIds": ["ein-es000001"], "KeyIds": ["skey-nope"]})),
        "InvalidParameterValue.InvalidKeyPairId"
    );
    assert_eq!(d(json!({"KeyIds": ["skey-ek000000"]})), "MissingParameter");
}

#[test]
fn v2_unbind_removes_the_key() {
    let e = emu(&[]);
    let (_, out) = send(
        &e,
        &v2(json!({"keyId": "skey-ck000000", "instanceIds": [S0]})),
    );
    assert_eq!(code(&out), "success");
    assert!(keys(&e, S0).is_empty());
    let (_, out) = send(&e, &v2(json!({"instanceIds": [S0]})));
    assert_eq!(code(&out), "4000");
}

#[test]
fn alibaba_detach_answers_per_item_in_json_and_xml() {
    let e = emu(&[]);
    let ids = json!(["i-bp1s0000000000000000", "i-bp1snotthere000000000"]).to_string();
    let (resp, out) = send(
        &e,
        &ecs(
            "DetachKeyPair",
            json!({"RegionId": "cn-hangzhou", "KeyPairName": "kp-linux-0", "InstanceIds": ids}),
            ResponseFormat::Json,
        ),
    );
    assert_eq!(code(&out), "success", "{out:?}");
    assert_eq!(out.body["TotalCount"], 2);
    assert_eq!(out.body["FailCount"], 1);
    assert!(keys(&e, "i-bp1s0000000000000000").is_empty());
    assert!(resp.header("content-type").unwrap_or("").contains("json"));
    let (resp, out) = send(
        &e,
        &ecs(
            "DetachKeyPair",
            json!({"RegionId": "cn-hangzhou", "KeyPairName": "kp-linux-2", "InstanceIds": "[\"i-bp1s0000000000000002\"]"}),
            ResponseFormat::Default,
        ),
    );
    assert!(
        resp.body.starts_with(b"<?xml"),
        "{}",
        String::from_utf8_lossy(&resp.body)
    );
    assert_eq!(code(&out), "success");
    let (resp, out) = send(
        &e,
        &ecs(
            "DetachKeyPair",
            json!({"RegionId": "cn-hangzhou", "KeyPairName": "kp-linux-2", "InstanceIds": "[\"i-bp1w0000000000000000\"]"}),
            ResponseFormat::Json,
        ),
    );
    assert_eq!(
        (resp.status, code(&out).as_str()),
        (403, "DependencyViolation.WindowsInstance")
    );
}

#[test]
fn auth_failures_get_the_family_codes() {
    let e = emu(&[]);
    let call = cvm(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": [S1], "KeyIds": ["skey-ck000001"]}),
    );
    let bad = apiconform::protocol::Credentials {
        id: tencent().id,
        secret: "wrong".into(),
    };
    let req = apiconform::protocol::encode(
        &call,
        &bad,
        &apiconform::protocol::Clock {
            timestamp: NOW,
            nonce: "1".into(),
        },
    )
    .unwrap();
    let out = apiconform::protocol::decode(call.family, &e.handle(&req, NOW));
    assert_eq!(code(&out), "AuthFailure.SignatureFailure");
    let req = apiconform::protocol::encode(
        &call,
        &tencent(),
        &apiconform::protocol::Clock {
            timestamp: NOW - 301,
            nonce: "1".into(),
        },
    )
    .unwrap();
    assert_eq!(
        code(&apiconform::protocol::decode(
            call.family,
            &e.handle(&req, NOW)
        )),
        "AuthFailure.SignatureExpire"
    );
    let lax = emu(&[Fault::UncheckedSignature]);
    let req = apiconform::protocol::encode(
        &call,
        &bad,
        &apiconform::protocol::Clock {
            timestamp: NOW,
            nonce: "1".into(),
        },
    )
    .unwrap();
    assert_eq!(
        code(&apiconform::protocol::decode(
            call.family,
            &lax.handle(&req, NOW)
        )),
        "success"
    );
}

#[test]
fn describe_instances_shows_bindings() {
    let e = emu(&[]);
    let (_, out) = send(&e, &cvm("DescribeInstances", json!({"InstanceIds": [S0]})));
    assert_eq!(
        out.body["Response"]["InstanceSet"][0]["LoginSettings"]["KeyIds"],
        json!(["skey-ck000000"])
    );
}

/// The wire forms the documents show are accepted (an example's 1-based list, `TRUE`, the
/// spaced JSON list, the example's spelling of the action); each fault refuses exactly its own.
#[test]
fn the_documents_wire_forms_are_accepted_unless_a_fault_refuses_them() {
    use apiconform::protocol::Method;
    let form = |mut c: apiconform::protocol::Call| {
        c.method = Method::Get;
        c.signature = apiconform::protocol::SignatureMethod::V1HmacSha256;
        c
    };
    let one_based = || {
        let mut c = form(cvm(
            "AssociateInstancesKeyPairs",
            json!({"InstanceIds": [S1], "KeyIds": ["skey-ck000005"]}),
        ));
        c.index_base = 1;
        c
    };
    let upper = || {
        form(cvm(
            "AssociateInstancesKeyPairs",
            json!({"InstanceIds": [S1], "KeyIds": ["skey-ck000005"], "ForceStop": "TRUE"}),
        ))
    };
    let spaced = || {
        ecs(
            "DetachKeyPair",
            json!({"RegionId": "cn-hangzhou", "KeyPairName": "kp-linux-2", "InstanceIds": "[\"i-bp1s0000000000000002\", \"i-bp1s0000000000000012\"]"}),
            ResponseFormat::Json,
        )
    };
    let lower_action = || {
        let mut c = v2(json!({"keyId": "skey-ck000000", "instanceIds": [S0]}));
        c.action = "unBindInstanceKey".into();
        c
    };
    let calls: [(&str, Fault, &dyn Fn() -> apiconform::protocol::Call); 4] = [
        ("1-based list", Fault::OneBasedRejected, &one_based),
        ("ForceStop=TRUE", Fault::UpperBooleansRejected, &upper),
        ("spaced JSON list", Fault::SpacedJsonRejected, &spaced),
        (
            "unBindInstanceKey",
            Fault::ActionCaseRejected,
            &lower_action,
        ),
    ];
    for (what, fault, call) in calls {
        let (_, out) = send(&emu(&[]), &call());
        assert_eq!(code(&out), "success", "{what} is accepted: {out:?}");
        let (_, out) = send(&emu(&[fault]), &call());
        assert_ne!(code(&out), "success", "{what} is refused under {fault}");
    }
}

/// The read calls page as documented: CVM `Limit` defaults to 20 and `TotalCount` counts every
/// match; `InstanceIds` with `Filters` is refused; an ECS page holds `PageSize` and no more.
#[test]
fn describe_calls_page_and_filter_as_documented() {
    let e = emu(&[]);
    let (_, out) = send(&e, &cvm("DescribeInstances", json!({})));
    let set = out.body["Response"]["InstanceSet"]
        .as_array()
        .unwrap()
        .len();
    let total = out.body["Response"]["TotalCount"].as_u64().unwrap();
    assert_eq!(set, 20, "the default Limit");
    assert!(total > 100, "every match: {total}");
    let (_, out) = send(
        &e,
        &cvm("DescribeInstances", json!({"Offset": 100, "Limit": 100})),
    );
    let second = out.body["Response"]["InstanceSet"]
        .as_array()
        .unwrap()
        .len() as u64;
    assert_eq!(second, (total - 100).min(100));
    let both = json!({"InstanceIds": [S0], "Filters": [{"Name": "tag:env", "Values": ["x"]}]});
    let (_, out) = send(&e, &cvm("DescribeInstances", both));
    assert_eq!(
        out.body["Response"]["Error"]["Code"],
        "InvalidParameterCombination"
    );
    let untagged = json!({"Filters": [{"Name": "tag:env", "Values": ["x"]}]});
    let (_, out) = send(&e, &cvm("DescribeInstances", untagged));
    assert_eq!(
        out.body["Response"]["TotalCount"], 0,
        "no tags in the default world"
    );
    let (_, out) = send(
        &e,
        &ecs(
            "DescribeInstances",
            json!({"RegionId": "cn-hangzhou", "PageNumber": "2", "PageSize": "50"}),
            ResponseFormat::Json,
        ),
    );
    assert_eq!(
        out.body["Instances"]["Instance"].as_array().unwrap().len(),
        6
    );
    assert_eq!(out.body["TotalCount"], 56, "54 Linux and 2 Windows");
}
