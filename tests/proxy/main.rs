//! `apiconform proxy` end to end: harness-signed traffic through the proxy to the emulator on
//! loopback. A correct emulator gives no server-side finding and well-formed requests no
//! client-side one; an emulator fault is named on the server side; a tampered signature, a
//! missing required parameter, a wrong type and a 1-based list are named on the client side;
//! a target that is down gets a clear 502; many clients at once are each judged, and bodies up
//! to the documented size pass while larger ones get 413.

mod diagnosis;
mod hostile;

use std::collections::BTreeSet;
use std::time::Duration;

use apiconform::case::{AuthFault, Case};
use apiconform::emulator::{Config, Fault};
use apiconform::generate::{self, GenOptions};
use apiconform::protocol::{request, HttpRequest, HttpResponse};
use apiconform::proxy::{Proxy, ProxyOptions, Side, Summary};
use apiconform::run::{Embedded, Target};
use apiconform::spec::{LoadedApi, SpecSet};
use apiconform::world::World;

/// The proxy's and the clients' timeout in these tests.
const TIMEOUT: Duration = Duration::from_secs(10);

fn set() -> SpecSet {
    apiconform::spec::load_embedded().expect("embedded specs load")
}

fn keys() -> apiconform::protocol::Keys {
    apiconform::emulator::example_keys()
}

fn options(target: &str) -> ProxyOptions {
    ProxyOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        target: target.to_string(),
        world: None,
        record: None,
        keys: keys(),
        strict: false,
        revision: apiconform::oracle::Revision::Both,
        timeout: Duration::from_secs(10),
        require_target: true,
        limits: apiconform::emulator::gate::Limits::PROXY,
    }
}

/// The emulator (with `faults`) in-process on loopback, and a proxy in front of it.
async fn proxied(faults: &[Fault], record: Option<&std::path::Path>) -> (Embedded, Proxy, Target) {
    let emu = Embedded::start(
        Config {
            faults: faults.iter().copied().collect(),
            ..Config::default()
        },
        Duration::from_secs(10),
    )
    .await
    .expect("the emulator starts");
    let mut opts = options(emu.target().url());
    opts.record = record.map(|p| p.to_path_buf());
    let proxy = Proxy::start(&set(), opts).await.expect("the proxy starts");
    let client = Target::new(&format!("http://{}", proxy.addr()), Duration::from_secs(10)).unwrap();
    (emu, proxy, client)
}

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Signs a case for the proxy's address, as a client of the proxy would.
fn sign(api: &LoadedApi, case: &Case, client: &Target) -> HttpRequest {
    let nonce = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + rand_base();
    request::sign_case(
        api,
        case,
        &client.authority(),
        &keys(),
        apiconform::emulator::server::now(),
        nonce,
    )
    .expect("the case signs")
}

/// A random start for nonces, so that reruns of the tests never replay one another's.
fn rand_base() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            % 1_000_000_000
            * 1000
    })
}

/// Sends a case through the proxy (a replayed nonce twice, byte for byte).
async fn send(api: &LoadedApi, case: &Case, client: &Target) -> HttpResponse {
    let req = sign(api, case, client);
    let first = client.send(&req).await.expect("the proxy answers");
    if case.auth == AuthFault::ReusedNonce {
        return client.send(&req).await.expect("the proxy answers");
    }
    first
}

fn rules_on(summary: &Summary, side: Side) -> Vec<(String, String)> {
    summary
        .findings
        .iter()
        .filter(|f| f.finding.side == side)
        .map(|f| {
            (
                f.finding.api.clone().unwrap_or_default(),
                f.finding.rule.clone(),
            )
        })
        .collect()
}

/// Generated traffic of every API, valid and invalid, through the proxy to a correct emulator:
/// the server side has no finding; the valid requests have no client-side finding; every rule
/// an invalid request was generated to break in its parameters, and every signing fault, is
/// named on the client side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_emulator_has_no_server_finding_and_each_broken_request_rule_is_named() {
    let set = set();
    let (emu, proxy, client) = proxied(&[], None).await;
    let world = World::default_world();
    let mut expected_client: BTreeSet<(String, String)> = BTreeSet::new();
    let mut as_absent: BTreeSet<(String, String)> = BTreeSet::new();
    let mut valid = 0;
    for (n, api) in set.apis.iter().enumerate() {
        let family = set.family(api.spec.api.family);
        for case in generate::corpus(&set, api, &world, 40 + n as u64, 60, &GenOptions::default()) {
            if case.violates.is_empty() && case.auth == AuthFault::None {
                valid += 1;
            }
            for id in &case.violates {
                let client_kind = api.spec.rules.iter().any(|r| {
                    &r.id == id
                        && r.open.is_none()
                        && matches!(
                            r.check.kind_name(),
                            "required" | "non_empty" | "max_items" | "value_type" | "pattern"
                        )
                });
                // A parameter the table does not define: the family's rule, named as such.
                let undefined = family
                    .rules
                    .iter()
                    .any(|r| &r.id == id && r.check.kind_name() == "known_parameters");
                if client_kind || undefined {
                    expected_client.insert((api.name.clone(), id.clone()));
                }
                // An empty list on a form is the list left out on the wire: the proxy may name
                // the rule requiring it instead.
                let empty_on = api
                    .spec
                    .rules
                    .iter()
                    .find(|r| &r.id == id && r.check.kind_name() == "non_empty");
                if let Some(param) = empty_on.and_then(|r| r.check.param()) {
                    for r in &api.spec.rules {
                        if r.check.kind_name() == "required" && r.check.param() == Some(param) {
                            as_absent.insert((api.name.clone(), r.id.clone()));
                        }
                    }
                }
            }
            if let Some(r) = apiconform::case::analysis::auth_rule(family, case.auth) {
                // An unknown Version leaves only the action to tell the API by: the proxy names
                // the first API of the family with that action (CVM and ECM share one).
                let named_as = match case.auth {
                    AuthFault::UnknownVersion => set
                        .apis
                        .iter()
                        .find(|a| {
                            a.spec.api.family == api.spec.api.family
                                && a.spec.api.action == api.spec.api.action
                        })
                        .unwrap_or(api),
                    _ => api,
                };
                expected_client.insert((named_as.name.clone(), r.id.clone()));
            }
            send(api, &case, &client).await;
        }
    }
    let summary = proxy.stop().await;
    emu.stop().await;
    let server = rules_on(&summary, Side::Server);
    assert!(
        server.is_empty(),
        "server-side findings: {server:?}\n{}",
        summary.table()
    );
    assert!(valid > 50, "valid requests sent: {valid}");
    let named: BTreeSet<(String, String)> = rules_on(&summary, Side::Client).into_iter().collect();
    // An empty list on a form or a query has no item to send: on the wire it is the list left
    // out, and the proxy names the rule that requires it.
    let same_as_absent = |(api, id): &(String, String)| {
        let spec = &set.apis.iter().find(|a| &a.name == api).unwrap().spec;
        let rule = spec.rules.iter().find(|r| &r.id == id).unwrap();
        rule.check.kind_name() == "non_empty"
            && spec.rules.iter().any(|r| {
                r.check.kind_name() == "required"
                    && r.check.param() == rule.check.param()
                    && named.contains(&(api.clone(), r.id.clone()))
            })
    };
    let missing: Vec<_> = expected_client
        .difference(&named)
        .filter(|k| !same_as_absent(k))
        .collect();
    assert!(missing.is_empty(), "client rules not named: {missing:?}");
    // Each finding is on an exchange whose request was generated to break something: a valid
    // request never gets one (checked by count: every client finding's rule was expected).
    let unexpected: Vec<_> = named
        .difference(&expected_client)
        .filter(|k| !as_absent.contains(k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "client findings no case was meant to cause: {unexpected:?}"
    );
    assert!(summary.judged >= 250, "judged: {}", summary.judged);
}

/// Valid requests only, each one alone, so each client-side verdict can be tied to its case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_requests_get_no_client_finding() {
    let set = set();
    let (emu, proxy, client) = proxied(&[], None).await;
    let world = World::default_world();
    for (n, api) in set.apis.iter().enumerate() {
        for case in generate::corpus(&set, api, &world, 7 + n as u64, 40, &GenOptions::default()) {
            if !case.violates.is_empty() || case.auth != AuthFault::None {
                continue;
            }
            let before = proxy.summary().findings.len();
            send(api, &case, &client).await;
            // The client side is judged before forwarding: counted by the time the answer is
            // back (the server side may still be judged).
            tokio::time::sleep(Duration::from_millis(5)).await;
            let after = proxy.summary();
            let client_side: Vec<_> = after.findings[before..]
                .iter()
                .filter(|f| f.finding.side == Side::Client)
                .collect();
            assert!(
                client_side.is_empty(),
                "{}: {case:?}: {client_side:?}",
                api.name
            );
        }
    }
    proxy.stop().await;
    emu.stop().await;
}

/// Under an emulator fault the server-side finding names a rule the fault catalogue expects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_fault_is_named_on_the_server_side() {
    let set = set();
    for fault in [
        Fault::DisassociateNoop,
        Fault::MissingRequestId,
        Fault::WindowsAccepted,
        Fault::WrongHttpStatus,
    ] {
        let (emu, proxy, client) = proxied(&[fault], None).await;
        let world = World::default_world();
        let apis: Vec<&LoadedApi> = set
            .apis
            .iter()
            .filter(|a| a.name.contains(fault.spec()))
            .collect();
        for api in apis {
            for case in generate::corpus(&set, api, &world, 3, 120, &GenOptions::default()) {
                send(api, &case, &client).await;
            }
        }
        let summary = proxy.stop().await;
        emu.stop().await;
        let server: Vec<String> = rules_on(&summary, Side::Server)
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert!(
            server
                .iter()
                .any(|r| fault.caught_by().contains(&r.as_str())),
            "{}: server-side rules {server:?}, expected one of {:?}",
            fault.name(),
            fault.caught_by()
        );
    }
}

/// A valid CVM associate case (0-based lists on a form, as the SDKs send), to derive broken
/// requests from.
fn cvm_case(set: &SpecSet, method: apiconform::spec::Method) -> (&LoadedApi, Case) {
    let api = set
        .apis
        .iter()
        .find(|a| a.name == "tencent-cvm/AssociateInstancesKeyPairs")
        .unwrap();
    let mut params = apiconform::spec::Params::new();
    params.insert("InstanceIds".into(), serde_json::json!(["ins-cs000001"]));
    params.insert("KeyIds".into(), serde_json::json!(["skey-ck000005"]));
    let case = Case {
        api: api.name.clone(),
        region: "ap-guangzhou".into(),
        params,
        violates: vec![],
        situations: vec![],
        auth: AuthFault::None,
        example: None,
        transport: apiconform::case::Transport {
            method,
            signature: if method == apiconform::spec::Method::Post {
                apiconform::spec::SignatureMethod::Tc3HmacSha256
            } else {
                apiconform::spec::SignatureMethod::V1HmacSha256
            },
            format: apiconform::spec::ResponseFormat::Default,
            index_base: 0,
            forms: Default::default(),
        },
    };
    (api, case)
}

/// Seeded client defects, one exchange each, named on the client side with their rule (the
/// signature with the step where it diverges and the strings recomputed from the bytes), and
/// recorded as repro files `apiconform replay` reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_defects_are_named_on_the_client_side_and_recorded() {
    let set = set();
    let dir = tempfile::tempdir().unwrap();
    let (emu, proxy, client) = proxied(&[], Some(dir.path())).await;
    let (api, good) = cvm_case(&set, apiconform::spec::Method::Post);

    // A tampered signature.
    let mut req = sign(api, &good, &client);
    request::tamper(&mut req);
    client.send(&req).await.unwrap();
    // A missing required parameter.
    let mut missing = good.clone();
    missing.params.remove("KeyIds");
    send(api, &missing, &client).await;
    // A wrong type: a string in a JSON body where the document lists a Boolean.
    let mut typed = good.clone();
    typed
        .params
        .insert("ForceStop".into(), serde_json::json!("yes"));
    send(api, &typed, &client).await;
    // A valid request, for contrast: nothing on either side.
    send(api, &good, &client).await;

    let summary = proxy.stop().await;
    emu.stop().await;
    let client_rules: Vec<String> = rules_on(&summary, Side::Client)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        client_rules,
        ["signature-valid", "key-ids-required", "force-stop-type"],
        "{}",
        summary.table()
    );
    assert!(
        rules_on(&summary, Side::Server).is_empty(),
        "{}",
        summary.table()
    );
    let sig = &summary.findings[0].finding;
    assert!(
        sig.detail.contains("diverges at step `signature`")
            && sig.detail.contains("canonical request")
            && sig.detail.contains("TC3-HMAC-SHA256\n"),
        "{}",
        sig.detail
    );
    // Recorded: one file per exchange with a finding, readable as a repro, no secret in it.
    assert_eq!(summary.recorded.len(), 3, "{:?}", summary.recorded);
    for path in &summary.recorded {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !text.contains(apiconform::emulator::TENCENT_DEFAULT.1),
            "{text}"
        );
        assert!(
            !text.contains(apiconform::emulator::TENCENT_DEFAULT.0),
            "{text}"
        );
        let failure: apiconform::run::Failure = serde_json::from_str(&text).unwrap();
        assert_eq!(failure.api, api.name);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["side"], "client");
    }
    let tampered: apiconform::run::Failure =
        serde_json::from_str(&std::fs::read_to_string(&summary.recorded[0]).unwrap()).unwrap();
    assert_eq!(tampered.case.auth, AuthFault::TamperedSignature);
}

/// The list numbering: 1-based is a documented form for CVM (nothing), unspecified for ECM and
/// API 2.0 (a note, not a finding), and 2-based is a finding everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_based_lists_are_a_note_where_no_document_shows_them() {
    let set = set();
    let (emu, proxy, client) = proxied(&[], None).await;
    let (cvm, mut case) = cvm_case(&set, apiconform::spec::Method::Get);
    case.transport.index_base = 1;
    send(cvm, &case, &client).await;
    let v2 = set
        .apis
        .iter()
        .find(|a| a.name.ends_with("UnBindInstanceKey"))
        .unwrap();
    let mut params = apiconform::spec::Params::new();
    params.insert("keyId".into(), serde_json::json!("skey-ck000000"));
    params.insert("instanceIds".into(), serde_json::json!(["ins-cs000000"]));
    let mut v2case = Case {
        api: v2.name.clone(),
        params,
        ..case.clone()
    };
    v2case.transport.signature = apiconform::spec::SignatureMethod::V1HmacSha1;
    send(v2, &v2case, &client).await;
    let mut two = case.clone();
    two.transport.index_base = 2;
    send(cvm, &two, &client).await;
    let summary = proxy.stop().await;
    emu.stop().await;
    let client_rules = rules_on(&summary, Side::Client);
    assert_eq!(
        client_rules,
        [(cvm.name.clone(), "index-base".to_string())],
        "{}",
        summary.table()
    );
    let notes: Vec<(String, String)> = summary
        .notes
        .iter()
        .filter(|n| n.finding.side == Side::Client)
        .map(|n| {
            (
                n.finding.api.clone().unwrap_or_default(),
                n.finding.rule.clone(),
            )
        })
        .collect();
    assert_eq!(notes, [(v2.name.clone(), "index-base".to_string())]);
    assert!(
        rules_on(&summary, Side::Server).is_empty(),
        "{}",
        summary.table()
    );
}

/// A target that is down: the client gets 502 in the family's envelope, naming the target and
/// why; the proxy does not start against it unless told to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_gets_a_clear_gateway_error() {
    let set = set();
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}");
    let err = Proxy::start(&set, options(&down))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("cannot be reached"), "{err}");
    let mut opts = options(&down);
    opts.require_target = false;
    let proxy = Proxy::start(&set, opts).await.expect("starts when told to");
    let client = Target::new(&format!("http://{}", proxy.addr()), Duration::from_secs(10)).unwrap();
    let (api, case) = cvm_case(&set, apiconform::spec::Method::Post);
    let resp = send(api, &case, &client).await;
    assert_eq!(resp.status, 502);
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let error = &body["Response"]["Error"];
    assert_eq!(error["Code"], "ServiceUnavailable", "{body}");
    let message = error["Message"].as_str().unwrap();
    assert!(
        message.contains(&down) && message.contains("could not be reached"),
        "{message}"
    );
    let summary = proxy.stop().await;
    assert_eq!(summary.unreachable, 1);
}

/// The CLI: a banner naming the bound address, SIGTERM stops it with the summary and the JSON,
/// and the exit code follows --fail-on.
#[cfg(unix)]
#[test]
fn the_cli_reports_on_sigterm_and_exits_by_fail_on() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(Embedded::start(Config::default(), Duration::from_secs(10)))
        .unwrap();
    let set = set();
    for (fail_on, want) in [("client", 1), ("server", 0)] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("proxy.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_apiconform"))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--target",
                emu.target().url(),
            ])
            .args(["--fail-on", fail_on, "--report-json"])
            .arg(&json)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        out.read_line(&mut banner).unwrap();
        let addr = banner
            .strip_prefix("apiconform proxy on http://")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("banner: {banner}"))
            .to_string();
        let client = Target::new(&format!("http://{addr}"), Duration::from_secs(10)).unwrap();
        let (api, mut case) = cvm_case(&set, apiconform::spec::Method::Post);
        case.params.remove("InstanceIds");
        rt.block_on(send(api, &case, &client));
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        assert_eq!(status.code(), Some(want), "--fail-on {fail_on}: {rest}");
        assert!(rest.contains("instance-ids-required"), "{rest}");
        let summary: Summary =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(summary.findings_on(Some(Side::Client)), 1);
        assert_eq!(summary.judged, 1);
    }
    rt.block_on(emu.stop());
}

/// Many clients at once, each on its own keep-alive connection pool: generated traffic of
/// every API, valid and invalid, some of it changing the same instances at the same time. The
/// proxy judges each exchange against the state its own call met (it holds the instances a
/// request names while forwarding and observing), so a correct emulator still gets no
/// server-side finding, and every exchange is judged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_at_once_are_each_judged_with_no_server_finding() {
    let set = std::sync::Arc::new(set());
    let (emu, proxy, _) = proxied(&[], None).await;
    let base = format!("http://{}", proxy.addr());
    let world = World::default_world();
    let mut clients = tokio::task::JoinSet::new();
    for n in 0..16u64 {
        let set = std::sync::Arc::clone(&set);
        let base = base.clone();
        let world = world.clone();
        clients.spawn(async move {
            let client = Target::new(&base, Duration::from_secs(10)).unwrap();
            let api = &set.apis[n as usize % set.apis.len()];
            let mut sent = 0;
            for case in generate::corpus(&set, api, &world, 300 + n, 12, &GenOptions::default()) {
                let resp = send(api, &case, &client).await;
                assert_ne!(resp.status, 502, "{}", String::from_utf8_lossy(&resp.body));
                sent += 1 + usize::from(case.auth == AuthFault::ReusedNonce);
            }
            sent
        });
    }
    let mut sent = 0;
    while let Some(done) = clients.join_next().await {
        sent += done.expect("a client finished");
    }
    let summary = proxy.stop().await;
    emu.stop().await;
    let server = rules_on(&summary, Side::Server);
    assert!(
        server.is_empty(),
        "server-side findings: {server:?}\n{}",
        summary.table()
    );
    assert_eq!(summary.judged, sent, "{}", summary.table());
    assert_eq!(summary.unreachable, 0);
}

/// Bodies up to the largest these APIs document pass through unchanged both ways; one over it
/// is refused with 413 before it is read, and never reaches the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_up_to_the_documented_size_pass_and_larger_ones_get_413() {
    let set = set();
    let (emu, proxy, client) = proxied(&[], None).await;
    let (api, mut case) = cvm_case(&set, apiconform::spec::Method::Post);
    // A key id of a mebibyte: the client side breaks its pattern, the emulator answers with its
    // error, and the proxy passes the answer back.
    let long = format!("skey-{}", "a".repeat(1 << 20));
    case.params
        .insert("KeyIds".into(), serde_json::json!([long.clone()]));
    let req = sign(api, &case, &client);
    assert!(req.body.len() > 1 << 20);
    let resp = client.send(&req).await.expect("the proxy answers");
    assert_ne!(resp.status, 413);
    let body: serde_json::Value = serde_json::from_slice(&resp.body).expect("the target's JSON");
    assert!(body["Response"]["RequestId"].is_string(), "{body}");
    assert!(body["Response"]["Error"]["Code"].is_string(), "{body}");
    // Over the limit: refused, and not forwarded (only the first exchange was judged).
    let mut big = sign(api, &case, &client);
    big.body = vec![b' '; apiconform::proxy::forward::MAX_BODY + 1];
    let resp = client.send(&big).await.expect("the proxy answers");
    assert_eq!(resp.status, 413);
    let text = String::from_utf8_lossy(&resp.body);
    assert!(text.contains("exceeds"), "{text}");
    let summary = proxy.stop().await;
    emu.stop().await;
    assert_eq!(summary.judged, 1, "{}", summary.table());
}
