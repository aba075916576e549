//! `apiconform world discover` against the emulator on loopback: only what the selection asks
//! for reaches the file, even from a target that answers more; the file feeds `run --world`.

use std::collections::BTreeMap;
use std::path::Path;

use apiconform::emulator::Config;
use apiconform::protocol::{HttpRequest, HttpResponse};
use apiconform::spec::{InstanceState, Os, Product};
use apiconform::world::{Instance, KeyPair, World};

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn instance(id: &str, product: Product, region: &str, keys: &[&str], tagged: bool) -> Instance {
    Instance {
        id: id.into(),
        product,
        region: region.into(),
        os: Os::Linux,
        state: InstanceState::Stopped,
        keys: keys.iter().map(|k| k.to_string()).collect(),
        password_set: false,
        tags: if tagged {
            tags(&[("env", "nightly")])
        } else {
            BTreeMap::new()
        },
    }
}

fn key(id: &str, product: Product, region: &str) -> KeyPair {
    KeyPair {
        id: id.into(),
        product,
        region: region.into(),
        tags: BTreeMap::new(),
    }
}

/// Tagged and untagged instances of CVM (two regions) and ECS (two regions); 120 tagged CVM
/// instances in ap-guangzhou, more than one page of 100.
fn world() -> World {
    let mut w = World::default();
    for r in ["ap-guangzhou", "ap-shanghai"] {
        w.key_pairs.push(key("skey-kkkk0001", Product::Cvm, r));
        w.key_pairs.push(key("skey-kkkk0002", Product::Cvm, r));
    }
    for n in 0..120 {
        let keys: &[&str] = if n == 0 { &["skey-kkkk0001"] } else { &[] };
        w.instances.push(instance(
            &format!("ins-tg{n:06}"),
            Product::Cvm,
            "ap-guangzhou",
            keys,
            true,
        ));
    }
    w.instances.push(instance(
        "ins-un000001",
        Product::Cvm,
        "ap-guangzhou",
        &["skey-kkkk0002"],
        false,
    ));
    w.instances.push(instance(
        "ins-sh000001",
        Product::Cvm,
        "ap-shanghai",
        &[],
        true,
    ));
    let mut windows = instance("ins-win00001", Product::Cvm, "ap-guangzhou", &[], true);
    windows.os = Os::Windows;
    windows.state = InstanceState::Running;
    w.instances.push(windows);
    let mut pending = instance("ins-pend0001", Product::Cvm, "ap-guangzhou", &[], true);
    pending.state = InstanceState::Pending;
    w.instances.push(pending);
    for r in ["cn-hangzhou", "cn-beijing"] {
        w.key_pairs.push(key("kp-a", Product::Ecs, r));
    }
    w.instances.push(instance(
        "i-bp1tagged01",
        Product::Ecs,
        "cn-hangzhou",
        &["kp-a"],
        true,
    ));
    w.instances.push(instance(
        "i-bp1untag001",
        Product::Ecs,
        "cn-hangzhou",
        &[],
        false,
    ));
    w.instances.push(instance(
        "i-2zetagged01",
        Product::Ecs,
        "cn-beijing",
        &[],
        true,
    ));
    w
}

/// Runs `apiconform world discover ARGS --out DIR/world.yaml`; returns the code, the output
/// and the world file's text.
fn discover(args: &[&str], dir: &Path) -> (i32, String, String) {
    let file = dir.join("world.yaml");
    let _ = std::fs::remove_file(&file);
    let out = crate::bin()
        .args(["world", "discover"])
        .args(args)
        .arg("--out")
        .arg(&file)
        .env("CI", "true")
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&file).unwrap_or_default(),
    )
}

fn ids(text: &str) -> Vec<String> {
    let w = World::parse(Path::new("world.yaml"), text).expect("the file is a valid world");
    w.instances.into_iter().map(|i| i.id).collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// By tag: exactly the tagged instances of that region and product (120 of them, read over
/// two pages), the pending one left out with a note, the key bound to one of them listed; by
/// `--instance`: only those; ECS by tag in its region only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_exactly_the_selected_instances() {
    let (url, log) = super::emulator_behind(
        Config {
            world: world(),
            ..Config::default()
        },
        |_, resp| resp,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let u = url.clone();
    let (code, out, text) = blocking(move || {
        discover(
            &[
                "--target",
                &u,
                "--region",
                "ap-guangzhou",
                "--tag",
                "env=nightly",
            ],
            &d,
        )
    })
    .await;
    assert_eq!(code, 0, "{out}");
    let mut want: Vec<String> = (0..120).map(|n| format!("ins-tg{n:06}")).collect();
    want.push("ins-win00001".into());
    want.sort();
    assert_eq!(ids(&text), want, "{out}");
    assert!(
        text.contains("left out: cvm instance `ins-pend0001`"),
        "{text}"
    );
    let w = World::parse(Path::new("w.yaml"), &text).unwrap();
    let keys: Vec<&str> = w.key_pairs.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(
        keys,
        ["skey-kkkk0001"],
        "the bound key only, not the account's"
    );
    let pages = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("tag:env"))
        .count();
    assert!(
        pages >= 3,
        "two pages of instances and one of key pairs: {pages}"
    );

    let d = dir.path().to_path_buf();
    let u = url.clone();
    let (code, out, text) = blocking(move || {
        discover(
            &[
                "--target",
                &u,
                "--region",
                "ap-guangzhou",
                "--instance",
                "ins-un000001",
                "--instance",
                "ins-sh000001",
            ],
            &d,
        )
    })
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        ids(&text),
        ["ins-un000001"],
        "ap-shanghai's is not in the region: {out}"
    );
    assert!(
        out.contains("ins-sh000001") && out.contains("not found"),
        "{out}"
    );

    let d = dir.path().to_path_buf();
    let (code, out, text) = blocking(move || {
        discover(
            &[
                "--target",
                &url,
                "--region",
                "cn-hangzhou",
                "--tag",
                "env=nightly",
            ],
            &d,
        )
    })
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(ids(&text), ["i-bp1tagged01"], "{out}");
}

/// A target that answers every DescribeInstances with extra instances (untagged, of another
/// region, not asked for) gets none of them into the file; each is named on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_answers_more_than_asked_widens_nothing() {
    let widen = |req: &HttpRequest, resp: HttpResponse| {
        let body = String::from_utf8_lossy(&req.body);
        let describe = req
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-tc-action") && v == "DescribeInstances");
        if !describe || resp.status != 200 || body.contains("\"Offset\":100") {
            return resp;
        }
        let mut v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        let extra = serde_json::json!([
            {"InstanceId": "ins-extra001", "InstanceState": "STOPPED", "OsName": "TencentOS", "LoginSettings": {"KeyIds": []}, "Placement": {"Zone": "ap-guangzhou-1"}, "Tags": []},
            {"InstanceId": "ins-extra002", "InstanceState": "STOPPED", "OsName": "TencentOS", "LoginSettings": {"KeyIds": []}, "Placement": {"Zone": "ap-shanghai-1"}, "Tags": [{"Key": "env", "Value": "nightly"}]},
            {"InstanceId": "ins-extra003", "InstanceState": "STOPPED", "OsName": "TencentOS", "LoginSettings": {"KeyIds": []}, "Placement": {"Zone": "ap-guangzhou-1"}, "Tags": [{"Key": "env", "Value": "prod"}]}
        ]);
        if let Some(set) = v
            .pointer_mut("/Response/InstanceSet")
            .and_then(|s| s.as_array_mut())
        {
            set.extend(extra.as_array().unwrap().iter().cloned());
        }
        HttpResponse {
            body: serde_json::to_vec(&v).unwrap(),
            ..resp
        }
    };
    let (url, _) = super::emulator_behind(
        Config {
            world: world(),
            ..Config::default()
        },
        widen,
    )
    .await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    for args in [
        vec!["--tag", "env=nightly"],
        vec!["--instance", "ins-un000001"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let r = remote.clone();
        let (code, out, text) = blocking(move || {
            let mut all = vec!["--target", &r, "--region", "ap-guangzhou"];
            all.extend(args);
            discover(&all, &d)
        })
        .await;
        assert_eq!(code, 0, "{out}");
        let listed = ids(&text);
        assert!(!listed.is_empty(), "{out}");
        for extra in ["ins-extra001", "ins-extra002", "ins-extra003"] {
            assert!(
                !listed.contains(&extra.to_string()),
                "{extra} listed: {text}"
            );
            assert!(
                out.contains(&format!("dropped: cvm instance `{extra}`")),
                "{out}"
            );
        }
    }
}

/// The discovered file feeds `run --world` unchanged against the same emulator made to look
/// remote (only the listed resources are touched): the run passes.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discovered_world_feeds_a_remote_run_unchanged() {
    let (url, _) = super::emulator_behind(
        Config {
            world: world(),
            ..Config::default()
        },
        |_, resp| resp,
    )
    .await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (code, out) = blocking(move || {
        let (code, out, text) = discover(
            &[
                "--target",
                &remote,
                "--region",
                "ap-guangzhou",
                "--tag",
                "env=nightly",
            ],
            &d,
        );
        assert_eq!(code, 0, "{out}");
        assert!(!ids(&text).is_empty());
        let file = d.join("world.yaml").display().to_string();
        let (code, out, _) = crate::run(
            &[
                "--target",
                &remote,
                "--world",
                &file,
                "--spec",
                "tencent-cvm/Associate",
                "--cases",
                "50",
                "--rate",
                "0",
            ],
            &d,
        );
        (code, out)
    })
    .await;
    assert_eq!(code, 0, "{out}");
}

/// ECM: listed only as given, and the file says that its API shows no bindings; a tag cannot
/// select ECM instances (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecm_is_listed_as_given_and_the_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (code, out, text) = blocking(move || {
        discover(
            &[
                "--target",
                "http://127.0.0.1:9",
                "--region",
                "ap-guangzhou",
                "--product",
                "ecm",
                "--instance",
                "ein-ss23fw23",
                "--key-pair",
                "skey-3cvmq2vn",
            ],
            &d,
        )
    })
    .await;
    assert_eq!(code, 0, "nothing is read for ECM: {out}");
    assert!(text.starts_with("# "), "{text}");
    assert!(
        text.contains("ECM: its API shows no key bindings"),
        "{text}"
    );
    let w = World::parse(Path::new("w.yaml"), &text).unwrap();
    assert_eq!(w.instances.len(), 1);
    assert_eq!(w.instances[0].product, Product::Ecm);
    assert_eq!(w.instances[0].state, InstanceState::Running);
    let d = dir.path().to_path_buf();
    let (code, out, _) = blocking(move || {
        discover(
            &[
                "--target",
                "http://127.0.0.1:9",
                "--region",
                "ap-guangzhou",
                "--product",
                "ecm",
                "--tag",
                "env=nightly",
            ],
            &d,
        )
    })
    .await;
    assert_eq!(code, 2, "{out}");
}

/// A CVM `DescribeInstances` answer of `n` instances carrying `env=nightly`, each padded with a
/// tag of `pad` bytes, claiming `total` matches.
fn padded_page(n: usize, pad: usize, total: usize) -> HttpResponse {
    let padding = "x".repeat(pad);
    let set: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"InstanceId": format!("ins-pad{i:05}"), "InstanceState": "STOPPED",
                "OsName": "CentOS 7.9 64bit", "Placement": {"Zone": "ap-guangzhou-3"},
                "LoginSettings": {"KeyIds": []},
                "Tags": [{"Key": "env", "Value": "nightly"}, {"Key": "pad", "Value": padding}]})
        })
        .collect();
    let body = serde_json::json!({"Response": {"TotalCount": total, "InstanceSet": set,
        "RequestId": "11111111-2222-3333-4444-555555555555"}});
    HttpResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// A target that throttles every page, asking to wait a few seconds each time, ran discovery
/// for hours: `--max-duration` stops it (exit 4, nothing written), and meanwhile stderr says
/// how far it got at least every 10 s (issue 23, item 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_target_is_given_up_at_the_deadline_with_progress_meanwhile() {
    let (url, _) = super::emulator_behind(Config::default(), |_, _| {
        let body = serde_json::json!({"Response": {"Error": {"Code": "RequestLimitExceeded",
            "Message": "slow down"}, "RequestId": "11111111-2222-3333-4444-555555555555"}});
        HttpResponse {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Retry-After".into(), "4".into()),
            ],
            body: body.to_string().into_bytes(),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let started = std::time::Instant::now();
    let (code, out, text) = blocking(move || {
        discover(
            &[
                "--target",
                &url,
                "--region",
                "ap-guangzhou",
                "--tag",
                "env=nightly",
                "--max-duration",
                "12s",
            ],
            &d,
        )
    })
    .await;
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("--max-duration 12s spent"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("progress: ")),
        "a progress line within 10 s: {out}"
    );
    assert!(text.is_empty(), "nothing written: {text}");
    // Not a speed target: without a deadline the retries went on for minutes per page.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{out}"
    );
}

/// Pages of padding just under what a response is read up to, each claiming more to come,
/// took discovery to 1.76 GB: the answers of one discovery are bounded across pages, and it
/// stops with a sentence (exit 3) after a handful of such pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_padding_stop_discovery_at_the_bound_on_answers() {
    // 100 instances of ~80 KB: about 8 MB a page.
    let page = std::sync::Arc::new(padded_page(100, 80_000, 1_000_000));
    let (url, log) = super::emulator_behind(Config::default(), move |_, _| (*page).clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (code, out, text) = blocking(move || {
        discover(
            &[
                "--target",
                &url,
                "--region",
                "ap-guangzhou",
                "--tag",
                "env=nightly",
            ],
            &d,
        )
    })
    .await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("more than 64 MiB"), "{out}");
    assert!(text.is_empty(), "nothing written: {text}");
    let calls = log.lock().unwrap().len();
    assert!(calls <= 10, "{calls} pages read");
}
