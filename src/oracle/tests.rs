use serde_json::json;

use super::*;
use crate::generate::{self, GenOptions};
use crate::protocol::{BodyFormat, Outcome, OutcomeResult};
use crate::spec::{BatchMode, Check, Field, FieldType, Rule};

fn set() -> SpecSet {
    crate::generate::tests::cvm_set()
}

fn success(body: Value) -> Outcome {
    Outcome {
        status: 200,
        result: OutcomeResult::Success,
        request_id: Some("r-1".into()),
        body,
        format: BodyFormat::Json,
        problems: vec![],
        xml_root: None,
    }
}

fn error(code: &str) -> Outcome {
    Outcome {
        status: 200,
        result: OutcomeResult::Error {
            code: code.into(),
            message: "m".into(),
        },
        request_id: Some("r-1".into()),
        body: json!({"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r-1"}}),
        format: BodyFormat::Json,
        problems: vec![],
        xml_root: None,
    }
}

fn ok_body() -> Value {
    json!({"Response": {"RequestId": "6EF60BEC-0242-43AF-BB20-270359FB54A7"}})
}

fn case(params: Value) -> Case {
    Case::cvm_associate(params)
}

#[test]
fn generated_valid_cases_pass_against_a_well_shaped_success() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let s = generate::valid_strategy(&set, api, &w, &GenOptions::default());
    let mut runner = generate::seeded_runner(21);
    for _ in 0..200 {
        use proptest::strategy::{Strategy, ValueTree};
        let c = s.new_tree(&mut runner).unwrap().current();
        let exp = expect(&set, api, &w, &c);
        assert!(exp.success_ok && !exp.error_ok, "{c:?} {exp:?}");
        let v = judge(&set, api, &c, &exp, &success(ok_body()));
        assert_eq!(v.kind, VerdictKind::Pass, "{v:?}");
        assert!(exp.rules.contains(&"binds-keys".to_string()));
    }
}

#[test]
fn invalid_cases_expect_only_codes_of_the_rules_they_break() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    for c in generate::corpus(&set, api, &w, 5, 500, &GenOptions::default()) {
        let exp = expect(&set, api, &w, &c);
        if c.violates.is_empty() {
            continue;
        }
        assert!(!exp.success_ok, "{c:?}");
        let allowed: BTreeSet<String> = c
            .violates
            .iter()
            .flat_map(|r| rule_codes(&api.spec, set.family(api.spec.api.family), r).codes)
            .collect();
        for code in exp.codes() {
            assert!(allowed.contains(code), "{code} not from {:?}", c.violates);
        }
        let first = exp.codes().into_iter().next().unwrap().to_string();
        assert_eq!(
            judge(&set, api, &c, &exp, &error(&first)).kind,
            VerdictKind::Pass
        );
    }
}

#[test]
fn the_oracle_recomputes_a_windows_instance_it_was_not_told_about() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c = case(json!({"InstanceIds": ["ins-cw000000"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    assert_eq!(exp.broken, vec!["instance-linux".to_string()]);
    assert!(exp
        .codes()
        .contains("UnsupportedOperation.InstanceOsWindows"));
}

#[test]
fn judge_fails_a_wrong_code_naming_the_broken_rule() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c = case(json!({"KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    let v = judge(&set, api, &c, &exp, &error("InvalidKeyPairId.NotFound"));
    assert_eq!(v.kind, VerdictKind::Fail);
    assert_eq!(v.rule.as_deref(), Some("instance-ids-required"));
    assert!(v.expected.contains("MissingParameter"), "{v:?}");
    assert_eq!(
        judge(&set, api, &c, &exp, &error("MissingParameter")).kind,
        VerdictKind::Pass
    );
}

/// A second-level code under an expected first-level one passes on our reading (failed under
/// `--strict`); the first level alone where a refinement is documented fails.
#[test]
fn a_refined_code_passes_as_a_judgement_and_the_bare_class_fails() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    // An empty KeyIds: MissingParameter | InvalidParameterValue (key-ids-non-empty).
    let c = case(json!({"InstanceIds": ["ins-cs000003"], "KeyIds": []}));
    let exp = expect(&set, api, &w, &c);
    let v = judge(
        &set,
        api,
        &c,
        &exp,
        &error("InvalidParameterValue.EmptyList"),
    );
    assert_eq!(v.kind, VerdictKind::Pass, "{v:?}");
    assert_eq!(v.strength, Some(Strength::Judgement));
    assert_eq!(weigh(v, true).kind, VerdictKind::Fail);
    for wrong in [
        "InvalidParameter.EmptyList",
        "InvalidParameterValue.A.B",
        "MissingParameterX",
    ] {
        let v = judge(&set, api, &c, &exp, &error(wrong));
        assert_eq!(v.kind, VerdictKind::Fail, "{wrong}: {v:?}");
    }
    // A limit broken: InvalidParameterValue.LimitExceeded documented; the class alone fails.
    let ids: Vec<String> = (0..101).map(|n| format!("ins-cs{n:06}")).collect();
    let c = case(json!({"InstanceIds": ids, "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    let v = judge(&set, api, &c, &exp, &error("InvalidParameterValue"));
    assert_eq!(v.kind, VerdictKind::Fail, "{v:?}");
}

#[test]
fn judge_fails_a_success_where_an_error_was_expected() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c = case(
        json!({"InstanceIds": ["ins-cs000001"], "KeyIds": ["skey-ck000001"], "ForceStop": "maybe"}),
    );
    let exp = expect(&set, api, &w, &c);
    let v = judge(&set, api, &c, &exp, &success(ok_body()));
    assert_eq!(v.kind, VerdictKind::Fail);
    assert_eq!(v.rule.as_deref(), Some("force-stop-type"));
}

#[test]
fn judge_fails_an_error_for_a_valid_request_naming_the_rule_of_the_code() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c = case(json!({"InstanceIds": ["ins-cs000001"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    let v = judge(&set, api, &c, &exp, &error("InvalidInstanceId.NotFound"));
    assert_eq!(v.kind, VerdictKind::Fail);
    assert_eq!(v.rule.as_deref(), Some("instance-exists"));
}

#[test]
fn judge_fails_a_success_without_request_id() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c = case(json!({"InstanceIds": ["ins-cs000001"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    let mut o = success(json!({"Response": {}}));
    o.request_id = None;
    o.problems = vec!["missing Response.RequestId".into()];
    let v = judge(&set, api, &c, &exp, &o);
    assert_eq!(
        (v.kind, v.rule.as_deref()),
        (VerdictKind::Fail, Some("success-shape"))
    );
    // The field check alone catches it too.
    o.problems.clear();
    let v = judge(&set, api, &c, &exp, &o);
    assert_eq!(
        (v.kind, v.rule.as_deref()),
        (VerdictKind::Fail, Some("success-shape"))
    );
}

#[test]
fn open_situations_are_unspecified_never_failed() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c = case(json!({"InstanceIds": ["ins-cr000000"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    assert!(exp.open);
    assert_eq!(
        judge(&set, api, &c, &exp, &success(ok_body())).kind,
        VerdictKind::Unspecified
    );
    assert_eq!(
        judge(
            &set,
            api,
            &c,
            &exp,
            &error("UnsupportedOperation.InstanceStateRunning")
        )
        .kind,
        VerdictKind::Unspecified
    );
}

/// A per-item variant of the CVM spec, built in the test.
fn per_item_api(set: &SpecSet) -> LoadedApi {
    let mut api = set.apis[0].clone();
    let src = api.spec.batch.source.clone();
    api.spec.batch.mode = BatchMode::PerItem;
    api.spec.rules.push(Rule {
        id: "per-item-consistency".into(),
        description: "counts agree".into(),
        check: Check::PerItemConsistency,
        errors: vec![],
        source: src.clone(),
        judgement: None,
        open: None,
        variants: vec![],
    });
    for (path, t) in [
        ("TotalCount", FieldType::Integer),
        ("FailCount", FieldType::Integer),
        ("Results.Result[].Success", FieldType::Boolean),
    ] {
        api.spec.success_fields.push(Field {
            path: path.into(),
            types: vec![t, FieldType::String],
            required: true,
            source: src.clone(),
        });
    }
    api
}

fn per_item_body(fail_count: Value) -> Value {
    json!({"Response": {"RequestId": "r", "TotalCount": 2, "FailCount": fail_count, "Results": {"Result": [
        {"InstanceId": "ins-cs000001", "Success": "true", "Code": "200"},
        {"InstanceId": "ins-zzzzzzzz", "Success": false, "Code": "InvalidInstanceId.NotFound"}
    ]}}})
}

#[test]
fn judge_fails_an_inconsistent_fail_count_on_per_item_batches() {
    let set = set();
    let api = per_item_api(&set);
    let w = World::default_world();
    let c =
        case(json!({"InstanceIds": ["ins-cs000001", "ins-zzzzzzzz"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, &api, &w, &c);
    assert!(
        exp.success_ok,
        "a missing instance is a per-item failure: {exp:?}"
    );
    assert_eq!(exp.items.iter().filter(|i| !i.success).count(), 1);
    assert_eq!(
        judge(&set, &api, &c, &exp, &success(per_item_body(json!("1")))).kind,
        VerdictKind::Pass
    );
    let v = judge(&set, &api, &c, &exp, &success(per_item_body(json!(0))));
    assert_eq!(
        (v.kind, v.rule.as_deref()),
        (VerdictKind::Fail, Some("per-item-consistency"))
    );
    // Apply only what succeeded.
    let mut w2 = w.clone();
    apply(&mut w2, &api, &c, &success(per_item_body(json!(1))));
    assert_eq!(
        w2.instance(crate::spec::Product::Cvm, "ins-cs000001")
            .unwrap()
            .keys,
        vec!["skey-ck000001"]
    );
}

#[test]
fn check_state_fails_an_associate_that_kept_old_keys_and_passes_the_right_one() {
    let set = set();
    let api = &set.apis[0];
    let mut w = World::default_world();
    // ins-cs000000 holds skey-ck000000 in the default world.
    let c = case(json!({"InstanceIds": ["ins-cs000000"], "KeyIds": ["skey-ck000005"]}));
    let exp = expect(&set, api, &w, &c);
    assert_eq!(
        exp.after,
        vec![(
            "ins-cs000000".to_string(),
            vec!["skey-ck000005".to_string()]
        )]
    );
    apply(&mut w, api, &c, &success(ok_body()));
    let kept = [(
        "ins-cs000000".to_string(),
        vec!["skey-ck000000".to_string(), "skey-ck000005".to_string()],
    )];
    let v = check_state(api, &w, &kept).expect("fails");
    assert_eq!(
        (v.kind, v.rule.as_deref()),
        (VerdictKind::Fail, Some("binds-keys"))
    );
    let right = [(
        "ins-cs000000".to_string(),
        vec!["skey-ck000005".to_string()],
    )];
    assert!(check_state(api, &w, &right).is_none());
}

#[test]
fn check_unchanged_fails_a_partially_applied_all_or_nothing_batch() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    // ins-cw000000 is Windows: the whole batch must fail and change nothing.
    let c =
        case(json!({"InstanceIds": ["ins-cs000001", "ins-cw000000"], "KeyIds": ["skey-ck000003"]}));
    let exp = expect(&set, api, &w, &c);
    assert!(!exp.success_ok);
    let o = error("UnsupportedOperation.InstanceOsWindows");
    assert_eq!(judge(&set, api, &c, &exp, &o).kind, VerdictKind::Pass);
    apply(&mut w.clone(), api, &c, &o);
    let observed = [
        (
            "ins-cs000001".to_string(),
            vec!["skey-ck000003".to_string()],
        ),
        ("ins-cw000000".to_string(), vec![]),
    ];
    let v = check_unchanged(api, &w, &observed).expect("fails");
    assert_eq!(
        (v.kind, v.rule.as_deref()),
        (VerdictKind::Fail, Some("binds-keys"))
    );
    assert!(
        v.detail.contains("all-or-nothing batch partially applied"),
        "{v:?}"
    );
}

/// `--source` judges codes by one revision: a Windows instance answered with the current
/// definitions' code passes by the current definitions (and by both), fails by the seed alone;
/// the seed's code likewise the other way round. Each failure rests on that revision.
#[test]
fn judging_by_one_revision_accepts_only_its_codes() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c = case(json!({"InstanceIds": ["ins-cw000000"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    let by = |code: &str, r: Revision| judge_by(&set, api, &c, &exp, &error(code), r);
    let current = "UnsupportedOperation.InstanceOsWindows";
    let seed = "InvalidInstance.NotSupported";
    assert_eq!(by(current, Revision::Both).kind, VerdictKind::Pass);
    assert_eq!(by(seed, Revision::Both).kind, VerdictKind::Pass);
    assert_eq!(by(current, Revision::Current).kind, VerdictKind::Pass);
    assert_eq!(by(seed, Revision::Seed).kind, VerdictKind::Pass);
    let v = by(current, Revision::Seed);
    assert_eq!(v.kind, VerdictKind::Fail, "{v:?}");
    assert_eq!(v.strength, Some(Strength::Seed));
    assert_eq!(v.rule.as_deref(), Some("instance-linux"));
    let v = by(seed, Revision::Current);
    assert_eq!(v.kind, VerdictKind::Fail, "{v:?}");
    assert_eq!(v.strength, Some(Strength::Current));
}

/// Open is not "anything goes": in an open situation (a RUNNING instance without the force
/// flag, an instance named twice) a code the documents list whose meaning fits passes as
/// unspecified, one whose meaning is false for the request fails, and one the documents do not
/// list at all fails, except a second level under a listed code.
#[test]
fn open_situations_still_fail_codes_that_are_false_or_undocumented() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let judged = |params: Value, code: &str| {
        let c = case(params);
        let exp = expect(&set, api, &w, &c);
        assert!(exp.open, "{exp:?}");
        judge(&set, api, &c, &exp, &error(code))
    };
    let running = json!({"InstanceIds": ["ins-cr000000"], "KeyIds": ["skey-ck000001"]});
    let twice =
        json!({"InstanceIds": ["ins-cs000000", "ins-cs000000"], "KeyIds": ["skey-ck000001"]});
    for (params, code, kind, rule) in [
        (
            &twice,
            "InvalidParameterValue",
            VerdictKind::Unspecified,
            None,
        ),
        (
            &twice,
            "InvalidInstanceId.NotFound",
            VerdictKind::Fail,
            Some("instance-exists"),
        ),
        (
            &twice,
            "MissingParameter",
            VerdictKind::Fail,
            Some("instance-ids-required"),
        ),
        (
            &twice,
            "InvalidInstanceId.Malformed",
            VerdictKind::Fail,
            Some("instance-id-format"),
        ),
        (
            &twice,
            "InvalidParameterValue.LimitExceeded",
            VerdictKind::Fail,
            Some("instance-ids-limit"),
        ),
        (
            &twice,
            "AuthFailure.SignatureFailure",
            VerdictKind::Fail,
            Some("signature-valid"),
        ),
        (
            &running,
            "UnsupportedOperation.InstanceStateRunning",
            VerdictKind::Unspecified,
            None,
        ),
        (
            &running,
            "UnsupportedOperation.InstanceOsWindows",
            VerdictKind::Fail,
            Some("instance-linux"),
        ),
        (
            &running,
            "InvalidInstanceState.Running",
            VerdictKind::Fail,
            Some("documented-code"),
        ),
        (
            &running,
            "UnsupportedOperation.SomethingElse",
            VerdictKind::Unspecified,
            None,
        ),
        (
            &running,
            "ResourceUnavailable",
            VerdictKind::Unspecified,
            None,
        ),
    ] {
        let v = judged(params.clone(), code);
        assert_eq!(v.kind, kind, "{code} for {params}: {v:?}");
        if let Some(rule) = rule {
            assert_eq!(v.rule.as_deref(), Some(rule), "{code}: {v:?}");
            assert!(
                v.strength.is_some(),
                "{code}: a failure says what it rests on"
            );
        }
    }
}

/// The meaning check does not touch codes the case's broken rules allow, and a code that
/// says which rule is broken passes where that rule is broken.
#[test]
fn a_code_whose_meaning_holds_is_not_failed_by_the_meaning_check() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c =
        case(json!({"InstanceIds": ["ins-cw000000", "ins-cw000000"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    let v = judge(
        &set,
        api,
        &c,
        &exp,
        &error("UnsupportedOperation.InstanceOsWindows"),
    );
    assert_ne!(v.kind, VerdictKind::Fail, "{v:?}");
    let v = judge(&set, api, &c, &exp, &error("InvalidInstanceId.NotFound"));
    assert_eq!(v.kind, VerdictKind::Fail, "{v:?}");
}

/// Alibaba RPC documents errors with a non-2xx status (its SDKs raise only on one): an error body
/// under HTTP 200 is decoded as the error it says, and judged on the family's envelope rule —
/// with the code named as the one the case's rule expects — never as a request "accepted". A
/// wrong code keeps its own rule. Tencent API 3.0 answers errors with HTTP 200, as documented.
#[test]
fn an_error_body_under_a_success_status_fails_the_envelope_rule_not_as_accepted() {
    let set = crate::spec::load_embedded().unwrap();
    let api = set
        .apis
        .iter()
        .find(|a| a.name == "alibaba-ecs/DetachKeyPair")
        .unwrap();
    let w = World::default_world();
    let kp = w
        .key_pairs
        .iter()
        .find(|k| k.product == crate::spec::Product::Ecs)
        .unwrap();
    let ecs = |params: Value| {
        let mut c = case(params);
        c.api = api.name.clone();
        c.region = kp.region.clone();
        c.transport.signature = crate::protocol::SignatureMethod::RpcHmacSha1;
        c.transport.method = crate::protocol::Method::Get;
        c.transport.format = crate::protocol::ResponseFormat::Json;
        c
    };
    let c = ecs(json!({"RegionId": kp.region, "KeyPairName": kp.id, "InstanceIds": "[i-1"}));
    let exp = expect(&set, api, &w, &c);
    assert_eq!(exp.broken, ["instance-ids-json"], "{exp:?}");
    let answer = |status: u16, code: &str| {
        crate::protocol::decode(
            crate::protocol::FamilyId::AliyunRpc,
            &crate::protocol::HttpResponse {
                status,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: serde_json::to_vec(
                    &json!({"RequestId": "r-1", "Code": code, "Message": "m", "HostId": "ecs"}),
                )
                .unwrap(),
            },
        )
    };
    let o = answer(200, "InvalidParameter");
    assert_eq!(
        o.result,
        OutcomeResult::Error {
            code: "InvalidParameter".into(),
            message: "m".into()
        }
    );
    let v = judge(&set, api, &c, &exp, &o);
    assert_eq!(
        (v.kind, v.rule.as_deref()),
        (VerdictKind::Fail, Some("error-envelope")),
        "{v:?}"
    );
    assert!(
        v.detail.contains(
            "answered InvalidParameter (the code instance-ids-json expects) with HTTP 200"
        ) && v.detail.contains("4xx/5xx"),
        "{v:?}"
    );
    assert!(!v.detail.contains("accepted"), "{v:?}");
    assert_eq!(v.strength, Some(Strength::Current), "{v:?}");
    assert!(
        v.actual.starts_with("HTTP 200 with error InvalidParameter"),
        "{v:?}"
    );
    // The same body with a 4xx status passes (on our reading of the code).
    assert_eq!(
        judge(&set, api, &c, &exp, &answer(400, "InvalidParameter")).kind,
        VerdictKind::Pass
    );
    // A code the broken rule does not allow keeps its own failure; the status is added to it.
    let c = ecs(json!({"RegionId": kp.region, "InstanceIds": "[\"i-1\"]"}));
    let exp = expect(&set, api, &w, &c);
    assert!(
        exp.broken.contains(&"key-pair-name-required".to_string()),
        "{exp:?}"
    );
    let v = judge(&set, api, &c, &exp, &answer(200, "InvalidParameter"));
    assert_eq!(
        (v.kind, v.rule.as_deref()),
        (VerdictKind::Fail, Some("key-pair-name-required")),
        "{v:?}"
    );
    assert!(v.detail.contains("answered with HTTP 200"), "{v:?}");
    // A success body under 200 (no Code, or a success-like one) is still a success.
    for body in [
        json!({"RequestId": "r"}),
        json!({"RequestId": "r", "Code": "200"}),
    ] {
        let o = crate::protocol::decode(
            crate::protocol::FamilyId::AliyunRpc,
            &crate::protocol::HttpResponse {
                status: 200,
                headers: vec![],
                body: serde_json::to_vec(&body).unwrap(),
            },
        );
        assert_eq!(o.result, OutcomeResult::Success, "{body}");
    }
    // Tencent API 3.0: errors with HTTP 200 are the documented envelope.
    let cvm = set
        .apis
        .iter()
        .find(|a| a.name == "tencent-cvm/AssociateInstancesKeyPairs")
        .unwrap();
    let c = case(json!({"KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, cvm, &w, &c);
    assert_eq!(
        judge(&set, cvm, &c, &exp, &error("MissingParameter")).kind,
        VerdictKind::Pass
    );
}

/// A parameter the API does not define (`InstanceId` for `InstanceIds`) breaks the family's
/// `parameter-known` besides the required rule it leaves broken; no document ranks the two, so
/// either code passes — under an ordered precedence of the API's own rules too — and a success
/// or a code of neither fails. Alone, it is refused with UnknownParameter (current definitions).
#[test]
fn an_undefined_parameter_breaks_parameter_known_beside_what_the_request_lacks() {
    let set = set();
    let api = &set.apis[0];
    let w = World::default_world();
    let c = case(json!({"InstanceId": ["ins-cs000001"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    assert_eq!(
        exp.broken,
        ["instance-ids-required", "parameter-known"],
        "{exp:?}"
    );
    for code in ["MissingParameter", "UnknownParameter"] {
        assert_eq!(
            judge(&set, api, &c, &exp, &error(code)).kind,
            VerdictKind::Pass,
            "{code}"
        );
    }
    for wrong in [
        success(ok_body()),
        error("InvalidParameterValue.LimitExceeded"),
    ] {
        let v = judge(&set, api, &c, &exp, &wrong);
        assert_eq!(
            (v.kind, v.rule.as_deref()),
            (VerdictKind::Fail, Some("instance-ids-required")),
            "{v:?}"
        );
    }
    // An order of the API's own rules does not rank the undefined parameter.
    let mut ordered = api.clone();
    ordered.spec.precedence = crate::spec::Precedence::Ordered {
        rules: vec!["instance-ids-required".into()],
        source: api.spec.api.source.clone(),
    };
    let exp = expect(&set, &ordered, &w, &c);
    assert!(exp.codes().contains("UnknownParameter"), "{exp:?}");
    assert!(exp.codes().contains("MissingParameter"), "{exp:?}");
    // Alone: the family's code, stated in the current definitions.
    let c =
        case(json!({"InstanceIds": ["ins-cs000001"], "KeyIds": ["skey-ck000001"], "Force": true}));
    let exp = expect(&set, api, &w, &c);
    assert_eq!(exp.broken, ["parameter-known"], "{exp:?}");
    assert_eq!(
        judge(&set, api, &c, &exp, &error("UnknownParameter")).kind,
        VerdictKind::Pass
    );
    let v = judge(&set, api, &c, &exp, &success(ok_body()));
    assert_eq!(
        (v.kind, v.rule.as_deref(), v.strength),
        (
            VerdictKind::Fail,
            Some("parameter-known"),
            Some(Strength::Current)
        ),
        "{v:?}"
    );
    // Every parameter defined: UnknownParameter claims something false.
    let c =
        case(json!({"InstanceIds": ["ins-cs000001", "ins-cs000001"], "KeyIds": ["skey-ck000001"]}));
    let exp = expect(&set, api, &w, &c);
    let v = judge(&set, api, &c, &exp, &error("UnknownParameter"));
    assert_eq!(
        (v.kind, v.rule.as_deref()),
        (VerdictKind::Fail, Some("parameter-known")),
        "{v:?}"
    );
}
