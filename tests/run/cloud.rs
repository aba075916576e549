//! A simulated cloud: one emulator per product, each on its own 127.0.0.x address, serving
//! HTTPS under the vendor's host name (`serve --only PRODUCT --tls`), reached as a real account
//! is (`run --cloud --endpoint ... --resolve ... --ca-cert ...`). The harness treats the vendors'
//! host names as off this machine: credentials, the world file, the journal and the restore all
//! apply. Also: where `--cloud` sends each API without overrides (a dry run), and what happens
//! without credentials or when a pre-change read is refused.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use super::run;

/// A product's emulator: the process, its port, its address and its certificate file.
struct Host {
    child: Child,
    addr: String,
    port: u16,
    cert: std::path::PathBuf,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// `--endpoint`, `--resolve` and `--ca-cert` that reach this host as `product` at `name`.
    fn reached_as(&self, product: &str, name: &str) -> Vec<String> {
        vec![
            "--endpoint".into(),
            format!("{product}=https://{name}:{}", self.port),
            "--resolve".into(),
            format!("{name}:{}:{}", self.port, self.addr),
            "--ca-cert".into(),
            self.cert.display().to_string(),
        ]
    }
}

/// `apiconform serve --only PRODUCT --tls` on `ip`, with a certificate for `name`.
fn host(dir: &Path, product: &str, ip: &str, name: &str) -> Host {
    let cert = dir.join(format!("{product}.pem"));
    let mut child = crate::bin()
        .args(["serve", "--only", product, "--tls", "--tls-name", name])
        .arg("--listen")
        .arg(format!("{ip}:0"))
        .arg("--cert-out")
        .arg(&cert)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("the banner names an https address: {banner}"));
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(banner.contains(&format!("(only {product})")), "{banner}");
    Host {
        child,
        addr: ip.to_string(),
        port,
        cert,
    }
}

/// Per instance of `product`: keys (sorted) and state, from the host's admin view over TLS.
async fn bindings(h: &Host, product: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let pem = std::fs::read(&h.cert).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let body = client
        .get(format!("https://{}:{}/__apiconform/world", h.addr, h.port))
        .send()
        .await
        .expect("the admin view answers over TLS")
        .bytes()
        .await
        .unwrap();
    super::restore::bindings_in(&body, product)
}

fn world_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("world.json");
    let world = apiconform::world::World::default_world();
    std::fs::write(&path, serde_json::to_string(&world).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_against_a_simulated_cloud_reaches_each_product_at_its_host_and_leaves_it_as_found() {
    let dir = tempfile::tempdir().unwrap();
    let cvm = host(
        dir.path(),
        "tencent-cvm",
        "127.0.0.2",
        "cvm.tencentcloudapi.com",
    );
    let ecm = host(
        dir.path(),
        "tencent-ecm",
        "127.0.0.3",
        "ecm.tencentcloudapi.com",
    );
    let ecs = host(dir.path(), "alibaba-ecs", "127.0.0.4", "ecs.aliyuncs.com");
    let before = (
        bindings(&cvm, "cvm").await,
        bindings(&ecm, "ecm").await,
        bindings(&ecs, "ecs").await,
    );
    let world = world_file(dir.path());
    let journal = dir.path().join("journal");
    let mut args: Vec<String> = vec!["--cloud".into()];
    for (product, name, h) in [
        ("tencent-cvm", "cvm.tencentcloudapi.com", &cvm),
        ("tencent-ecm", "ecm.tencentcloudapi.com", &ecm),
        ("alibaba-ecs", "ecs.aliyuncs.com", &ecs),
    ] {
        args.extend(h.reached_as(product, name));
    }
    for a in [
        "--world",
        world.to_str().unwrap(),
        "--cases",
        "30",
        "--rate",
        "0",
        "--allow-force-stop",
        "--journal",
        journal.to_str().unwrap(),
    ] {
        args.push(a.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, report) = run(&args, dir.path());
    assert_eq!(code, 0, "{out}");
    // Every API was judged, at its own host: each product's host serves only its product, so a
    // request sent to the wrong one would have met InvalidAction and failed its case.
    let apis = report["apis"].as_array().expect("apis");
    assert_eq!(apis.len(), crate::api_count(), "{out}");
    for api in apis {
        assert!(
            api["pass"].as_u64().unwrap_or(0) > 0,
            "{}: {out}",
            api["api"]
        );
    }
    assert!(
        report["target"].as_str().unwrap().starts_with("cloud "),
        "{}",
        report["target"]
    );
    // CVM was changed and put back; ECM and ECS, whose changes the specs cannot undo, kept off
    // the listed instances (no --allow-irreversible): every product's world is as found.
    let (changed, restored) = (
        report["restore"]["instances"].as_array().map_or(0, |i| {
            i.iter().filter(|x| x["status"] != "unchanged").count()
        }),
        report["restore"]["instances"].as_array().map_or(0, |i| {
            i.iter().filter(|x| x["status"] == "restored").count()
        }),
    );
    assert!(changed > 0, "the run changed CVM bindings: {out}");
    assert_eq!(restored, changed, "{out}");
    let after = (
        bindings(&cvm, "cvm").await,
        bindings(&ecm, "ecm").await,
        bindings(&ecs, "ecs").await,
    );
    assert_eq!(after, before, "{out}");
}

#[test]
fn cloud_sends_each_api_to_its_documented_host_for_the_requests_region() {
    let dir = tempfile::tempdir().unwrap();
    let world = world_file(dir.path());
    let out = crate::bin()
        .args(["run", "--cloud", "--dry-run", "--cases", "3", "--world"])
        .arg(&world)
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let hosts_of = |api: &str| -> Vec<String> {
        let mut hosts: Vec<String> = text
            .split("\n# ")
            .filter(|block| block.starts_with(api))
            .filter_map(|block| {
                let i = block.find("https://")?;
                let rest = &block[i + "https://".len()..];
                Some(rest[..rest.find(['/', '\'', '?']).unwrap_or(rest.len())].to_string())
            })
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    };
    let cvm = hosts_of("tencent-cvm/AssociateInstancesKeyPairs");
    assert!(!cvm.is_empty(), "{text}");
    for h in &cvm {
        assert!(
            h.starts_with("cvm.") && h.ends_with(".tencentcloudapi.com") && h.len() > 24,
            "CVM API 3.0 goes to its regional host: {h}"
        );
    }
    assert_eq!(
        hosts_of("tencent-cvm/UnBindInstanceKey"),
        ["cvm.api.qcloud.com"]
    );
    assert_eq!(
        hosts_of("tencent-ecm/DisassociateInstancesKeyPairs"),
        ["ecm.tencentcloudapi.com"]
    );
    for h in hosts_of("alibaba-ecs/DetachKeyPair") {
        assert!(
            h.starts_with("ecs.") && h.ends_with(".aliyuncs.com"),
            "ECS goes to its regional host: {h}"
        );
    }
}

#[test]
fn a_remote_run_without_credentials_is_a_usage_error_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let world = world_file(dir.path());
    // Nothing listens on port 1: a request sent would make the run exit 3, not 2.
    let out = crate::bin()
        .args([
            "run",
            "--target",
            "http://0.0.0.0:1",
            "--spec",
            "alibaba-ecs",
            "--world",
        ])
        .arg(&world)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{text}");
    assert!(text.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), "{text}");
    // Only the selected family's variables are asked for.
    assert!(!text.contains("TENCENTCLOUD"), "{text}");
    assert!(!dir.path().join("apiconform.journal").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_pre_change_read_is_refused_is_not_sent_and_nothing_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = super::emulator_behind(apiconform::emulator::Config::default(), |_, r| r).await;
    let remote = url.replace("127.0.0.1", "0.0.0.0");
    let world = world_file(dir.path());
    // Credentials the target does not know: every call, the reads included, is refused.
    let out = crate::bin()
        .args([
            "run",
            "--target",
            &remote,
            "--spec",
            "tencent-cvm/Associate",
            "--cases",
            "20",
        ])
        .args(["--rate", "0", "--allow-force-stop", "--report-json"])
        .arg(dir.path().join("report.json"))
        .arg("--world")
        .arg(&world)
        .env(
            "TENCENTCLOUD_SECRET_ID",
            "AKIDnotknownhere0000000000000000000",
        )
        .env(
            "TENCENTCLOUD_SECRET_KEY",
            "notknownhere00000000000000000000",
        )
        .env("CI", "true")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let not_sent = &report["apis"][0]["not_sent"];
    let refused = not_sent
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.contains("pre-change read was refused"))
        })
        .and_then(|(_, n)| n.as_u64())
        .unwrap_or(0);
    assert!(refused > 0, "changes held back: {not_sent} {text}");
    // Nothing journaled, so nothing to restore and no journal left behind.
    assert!(report["restore"].is_null(), "{text}");
    assert!(!text.contains("restored 0 of 0"), "{text}");
    assert!(!dir.path().join("apiconform.journal").exists(), "{text}");
}

/// `world discover --cloud` with two regions: CVM's reads at its host, ECS's at its own (each a
/// TLS emulator under the vendor's name), one world file for both.
#[test]
fn world_discover_reads_several_products_and_regions_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let cvm = host(
        dir.path(),
        "tencent-cvm",
        "127.0.0.5",
        "cvm.tencentcloudapi.com",
    );
    let ecs = host(dir.path(), "alibaba-ecs", "127.0.0.6", "ecs.aliyuncs.com");
    let world = apiconform::world::World::default_world();
    let pick = |prefix: &str, region: &str| {
        world
            .instances
            .iter()
            .find(|i| i.id.starts_with(prefix) && i.region == region)
            .unwrap_or_else(|| panic!("an instance {prefix}… in {region}"))
            .id
            .clone()
    };
    let (ins, i) = (pick("ins-", "ap-guangzhou"), pick("i-", "cn-hangzhou"));
    let out_file = dir.path().join("found.yaml");
    let mut cmd = crate::bin();
    cmd.args(["world", "discover", "--cloud"]);
    for (product, name, h) in [
        ("tencent-cvm", "cvm.tencentcloudapi.com", &cvm),
        ("alibaba-ecs", "ecs.aliyuncs.com", &ecs),
    ] {
        cmd.args(h.reached_as(product, name));
    }
    let out = cmd
        .args(["--region", "ap-guangzhou", "--region", "cn-hangzhou"])
        .args(["--instance", &ins, "--instance", &i, "--out"])
        .arg(&out_file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let written = std::fs::read_to_string(&out_file).unwrap();
    // The header names where the reads went.
    assert!(
        written.contains("target: cloud alibaba-ecs=https://ecs.aliyuncs.com:"),
        "{written}"
    );
    let found: apiconform::world::World = serde_yaml_ng::from_str(&written).unwrap();
    let ids: Vec<&str> = found.instances.iter().map(|x| x.id.as_str()).collect();
    assert!(
        ids.contains(&ins.as_str()) && ids.contains(&i.as_str()),
        "{ids:?} {text}"
    );
    assert_eq!(ids.len(), 2, "only what was selected: {ids:?}");
}
