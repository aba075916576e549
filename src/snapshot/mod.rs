//! Snapshots: a fixed corpus of exchanges per API, normalised for people, stored in insta's
//! `.snap` format so `cargo insta review` can accept changes.
//!
//! One source of truth serves both `cargo test` (`tests/snapshots/main.rs`) and the `apiconform
//! snapshot` command:
//! 1. [`corpus`] builds the cases, deterministically from a fixed seed and the world: per API the
//!    valid paths, one case per breakable rule (one per offending state for state rules), one per
//!    authentication fault the family has a rule for, one per listed unspecified situation.
//! 2. [`record_in_process`] (a fresh emulator per exchange, no network) or [`record_target`] (any
//!    URL; reset through the admin endpoint when the target has it, otherwise in order) sends them
//!    and renders each exchange as YAML ([`Recorded`]): the abstract request, the status, the
//!    decoded response body with volatile values redacted, and the change to the named instances.
//! 3. [`compare`] checks the YAML against `<dir>/<api>/<id>.snap`; a difference is shown as a
//!    unified diff naming the exchange and, by [`Mode`], written beside it as `.snap.new` (what
//!    `cargo insta review` accepts) or over it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use regex::Regex;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::emulator::{self, Emulator};
use crate::generate::{self, AuthFault, Case, GenOptions};
use crate::oracle::analyze::auth_rule;
use crate::protocol::{self, Credentials, HttpRequest, HttpResponse, OutcomeResult};
use crate::run::{self, RunError, RunOptions, Seen, Target};
use crate::spec::{Check, InstanceState, LoadedApi, SpecSet};
use crate::world::World;

/// The corpus seed: changing it changes every snapshot.
pub const SEED: u64 = 0x05ee_d5a9_0001;

/// Draws tried when looking for a case of a particular shape.
const DRAWS: usize = 96;

/// One exchange of the corpus.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `LoadedApi.name` (`tencent-cvm/AssociateInstancesKeyPairs`).
    pub api: String,
    /// Stable id within the API: `valid.single`, `rule.instance-ids-limit`,
    /// `family.signature-valid.wrong-secret`, `unspecified.duplicate-instance-ids`, ...
    pub id: String,
    /// What the exchange shows, for the reviewer.
    pub about: String,
    /// The case sent.
    pub case: Case,
}

impl Entry {
    /// `<api> <id>`: how diffs and reports name the exchange.
    pub fn name(&self) -> String {
        format!("{} {}", self.api, self.id)
    }

    /// The snapshot file below the snapshot folder: `<api>/<id>.snap`.
    pub fn file(&self) -> PathBuf {
        PathBuf::from(&self.api).join(format!("{}.snap", self.id))
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn draw(strategy: &BoxedStrategy<Case>, seed: u64, n: usize) -> Vec<Case> {
    let mut runner = generate::seeded_runner(seed);
    (0..n)
        .filter_map(|_| strategy.new_tree(&mut runner).ok().map(|t| t.current()))
        .collect()
}

fn kebab(fault: AuthFault) -> String {
    serde_json::to_value(fault)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', "-")))
        .unwrap_or_default()
}

fn state_name(s: InstanceState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// How big a case reads: smaller cases make shorter snapshots.
fn weight(c: &Case) -> usize {
    serde_json::to_string(&c.params).map_or(0, |s| s.len())
}

/// The first of the smallest cases.
fn smallest<'a>(cases: impl Iterator<Item = &'a Case>) -> Option<&'a Case> {
    cases.min_by_key(|c| weight(c))
}

/// The corpus of every API of `set`, in spec order.
pub fn corpus(set: &SpecSet, world: &World) -> Vec<Entry> {
    set.apis
        .iter()
        .flat_map(|api| api_corpus(set, api, world))
        .collect()
}

/// The corpus of one API.
pub fn api_corpus(set: &SpecSet, api: &LoadedApi, world: &World) -> Vec<Entry> {
    let opts = GenOptions::default();
    let seed = SEED ^ fnv(&api.name);
    let spec = &api.spec;
    let mut out: Vec<Entry> = Vec::new();
    let mut push = |id: String, about: String, case: Case| {
        out.push(Entry {
            api: api.name.clone(),
            id,
            about,
            case,
        })
    };
    let force = spec.rules.iter().find_map(|r| match &r.check {
        Check::InstanceState { unless, .. } => unless.clone(),
        _ => None,
    });
    let forced = |c: &Case| {
        force
            .as_ref()
            .is_some_and(|f| c.params.get(f) == Some(&Value::Bool(true)))
    };
    let limit = spec.rules.iter().find_map(|r| match &r.check {
        Check::MaxItems { param, limit } if *param == spec.batch.param => Some(*limit as usize),
        _ => None,
    });

    // Valid paths.
    let valid = draw(
        &generate::valid_strategy(set, api, world, &opts),
        seed,
        DRAWS * 2,
    );
    let plain = |c: &&Case| c.situations.is_empty() && c.violates.is_empty() && !forced(c);
    let size = |c: &Case| run::instance_ids(api, c).len();
    let single = smallest(valid.iter().filter(plain).filter(|c| size(c) == 1));
    if let Some(c) = single {
        push(
            "valid.single".into(),
            "A valid request naming one instance.".into(),
            c.clone(),
        );
    }
    // Each response format the family offers (Alibaba: default XML, JSON, XML asked for).
    let mut formats: Vec<_> = single.iter().map(|c| c.transport.format).collect();
    let mut singles: Vec<&Case> = valid
        .iter()
        .filter(plain)
        .filter(|c| size(c) == 1)
        .collect();
    singles.sort_by_key(|c| weight(c));
    for c in singles {
        let f = c.transport.format;
        if !formats.contains(&f) {
            formats.push(f);
            let name = serde_json::to_value(f)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            push(
                format!("valid.format-{name}"),
                format!("A valid request naming one instance, response format `{name}`."),
                c.clone(),
            );
        }
    }
    if let Some(c) = smallest(
        valid
            .iter()
            .filter(plain)
            .filter(|c| size(c) >= 2 && limit.is_none_or(|l| size(c) < l)),
    ) {
        push(
            "valid.batch".into(),
            "A valid request naming several instances.".into(),
            c.clone(),
        );
    }
    if let Some(s) = generate::limit_strategy(set, api, world, &opts) {
        if let Some(c) = draw(&s, seed ^ 1, 1).pop() {
            push(
                "valid.batch-limit".into(),
                format!(
                    "A batch of exactly the documented limit ({} instances).",
                    limit.unwrap_or_default()
                ),
                c,
            );
        }
    }
    if let Some(s) = generate::forced_running_strategy(set, api, world, &opts) {
        let cases = draw(&s, seed ^ 2, DRAWS);
        if let Some(c) = smallest(cases.iter().filter(|c| c.violates.is_empty())).cloned() {
            push(
                "valid.force-stop-running".into(),
                format!(
                    "A RUNNING instance with {}=true (the flag lifts the state restriction).",
                    force.clone().unwrap_or_default()
                ),
                c,
            );
        }
    }

    // One case per breakable rule; one per offending state for state rules.
    for (i, rule) in spec.rules.iter().enumerate() {
        let Some(s) = generate::rule_strategy(set, api, world, &opts, &rule.id) else {
            continue;
        };
        let cases = draw(&s, seed ^ (0x100 + i as u64), DRAWS);
        let about = format!("Breaks `{}`: {}", rule.id, rule.description);
        let only = |c: &&Case| c.violates == [rule.id.clone()];
        if let Check::InstanceState { allowed, .. } = &rule.check {
            let mut seen: BTreeSet<String> = BTreeSet::new();
            let mut sorted: Vec<&Case> = cases.iter().filter(only).collect();
            sorted.sort_by_key(|c| weight(c));
            for c in sorted {
                let states: BTreeSet<String> = run::instance_ids(api, c)
                    .iter()
                    .filter_map(|id| world.instances.iter().find(|i| &i.id == id))
                    .filter(|i| !allowed.contains(&i.state))
                    .map(|i| state_name(i.state))
                    .collect();
                if states.len() == 1 {
                    let st = states.iter().next().cloned().unwrap_or_default();
                    if seen.insert(st.clone()) {
                        push(
                            format!("rule.{}.{st}", rule.id),
                            format!("{about} (a {} instance)", st.to_uppercase()),
                            c.clone(),
                        );
                    }
                }
            }
            if !seen.is_empty() {
                continue;
            }
        }
        if let Some(c) = smallest(cases.iter().filter(only)).or(cases.first()) {
            push(format!("rule.{}", rule.id), about, c.clone());
        }
    }

    // One case per authentication fault the family has a rule for.
    let family = set.family(spec.api.family);
    for (i, fault) in AuthFault::ALL.into_iter().enumerate() {
        let (Some(rule), Some(s)) = (
            auth_rule(family, fault),
            generate::auth_strategy(set, api, world, &opts, fault),
        ) else {
            continue;
        };
        let cases = draw(&s, seed ^ (0x200 + i as u64), DRAWS);
        if let Some(c) = smallest(cases.iter().filter(|c| c.situations.is_empty())) {
            let c = c.clone();
            push(
                format!("family.{}.{}", rule.id, kebab(fault)),
                format!("Breaks family rule `{}`: {}", rule.id, rule.description),
                c,
            );
        }
    }

    // One case per unspecified situation the generator can produce.
    for (i, u) in spec.unspecified.iter().enumerate() {
        let Some(s) = generate::situation_strategy(set, api, world, &opts, u.situation) else {
            continue;
        };
        let cases = draw(&s, seed ^ (0x300 + i as u64), DRAWS);
        // The oracle may not recognise the situation where no rule concerns it (ECM has no
        // state rule): then the arm's case is kept as is.
        let hit = |c: &&Case| c.situations.contains(&u.situation);
        let pick = smallest(cases.iter().filter(hit).filter(|c| c.situations.len() == 1))
            .or_else(|| smallest(cases.iter().filter(hit)))
            .or_else(|| smallest(cases.iter()));
        if let Some(c) = pick {
            push(
                format!("unspecified.{}", u.id),
                format!(
                    "Unspecified `{}`: {} Pinned here; the oracle never fails it.",
                    u.id, u.description
                ),
                c.clone(),
            );
        }
    }
    out
}

/// Listed unspecified situations the corpus of `api` has no exchange for (the generator cannot
/// produce them in `world`), as `(id, situation)`.
pub fn missing_situations(api: &LoadedApi, entries: &[Entry]) -> Vec<String> {
    api.spec
        .unspecified
        .iter()
        .filter(|u| {
            !entries
                .iter()
                .any(|e| e.api == api.name && e.id == format!("unspecified.{}", u.id))
        })
        .map(|u| u.id.clone())
        .collect()
}

/// One exchange rendered for a snapshot.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `<api> <id>`.
    pub name: String,
    /// The snapshot file below the snapshot folder.
    pub file: PathBuf,
    /// What the exchange shows (the snapshot's `description`).
    pub about: String,
    /// The YAML body.
    pub yaml: String,
}

/// Credentials to sign with.
#[derive(Debug, Clone)]
pub struct Creds {
    /// Tencent (every Tencent family).
    pub tencent: Credentials,
    /// Alibaba.
    pub alibaba: Credentials,
}

impl Default for Creds {
    fn default() -> Self {
        let o = RunOptions::default();
        Creds {
            tencent: o.tencent,
            alibaba: o.alibaba,
        }
    }
}

/// The authority requests to the in-process emulator are signed for (redacted in snapshots).
const IN_PROCESS_HOST: &str = "127.0.0.1:9000";

fn find_api<'a>(set: &'a SpecSet, name: &str) -> &'a LoadedApi {
    set.apis
        .iter()
        .find(|a| a.name == name)
        .expect("corpus entries name APIs of the set")
}

fn seen_of(world: &World, api: &LoadedApi, case: &Case) -> Vec<Seen> {
    let ids = run::instance_ids(api, case);
    let product = api.spec.api.product;
    world
        .instances
        .iter()
        .filter(|i| i.product == product && ids.contains(&i.id))
        .map(|i| Seen {
            id: i.id.clone(),
            keys: i.keys.clone(),
            state: Some(state_name(i.state).to_uppercase()),
        })
        .collect()
}

/// Sends the corpus to a fresh in-process emulator per exchange (no network), so exchanges are
/// independent of order.
pub fn record_in_process(
    set: &SpecSet,
    config: &emulator::Config,
    entries: &[Entry],
) -> Vec<Recorded> {
    let creds = Creds {
        tencent: config.tencent.clone(),
        alibaba: config.alibaba.clone(),
    };
    entries
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let api = find_api(set, &e.api);
            let emu = Emulator::new(config.clone());
            let now = emulator::server::now();
            let before = seen_of(&emu.world(), api, &e.case);
            let resp = match sign(api, &e.case, IN_PROCESS_HOST, &creds, now, n as u64) {
                Ok(req) => {
                    if e.case.auth == AuthFault::ReusedNonce {
                        emu.handle(&req, now);
                    }
                    Ok(emu.handle(&req, now))
                }
                Err(err) => Err(err),
            };
            let after = seen_of(&emu.world(), api, &e.case);
            render(api, e, resp, Some((before, after)))
        })
        .collect()
}

fn sign(
    api: &LoadedApi,
    case: &Case,
    authority: &str,
    creds: &Creds,
    now: i64,
    nonce: u64,
) -> Result<HttpRequest, String> {
    run::sign_case(
        api,
        case,
        authority,
        &creds.tencent,
        &creds.alibaba,
        now,
        nonce,
    )
    .map_err(|e| e.to_string())
}

/// How a recording against a URL went, besides the exchanges.
#[derive(Debug, Clone, Default)]
pub struct TargetRun {
    /// Whether the admin reset was available (each exchange then starts from the same world);
    /// otherwise the exchanges ran in corpus order, each seeing the effects of those before.
    pub reset: bool,
}

/// Sends the corpus to a target. When the target serves the emulator's admin endpoint it is
/// reset before every exchange (to `world`); otherwise exchanges run in corpus order. Bindings
/// are observed with the Describe calls the runner uses (or the admin view).
pub async fn record_target(
    set: &SpecSet,
    world: &World,
    target: &Target,
    creds: &Creds,
    entries: &[Entry],
) -> Result<(Vec<Recorded>, TargetRun), RunError> {
    let reset_req = |body: Vec<u8>| HttpRequest {
        method: "POST".into(),
        target: format!("{}/reset", emulator::ADMIN_PREFIX),
        headers: vec![
            ("Host".into(), target.authority()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body,
    };
    let world_json = serde_json::to_vec(world).unwrap_or_default();
    let admin = target.is_loopback()
        && run::send_request(target, &reset_req(world_json.clone()))
            .await
            .is_ok_and(|r| r.status == 200);
    let opts = RunOptions {
        tencent: creds.tencent.clone(),
        alibaba: creds.alibaba.clone(),
        admin,
        ..Default::default()
    };
    let base = (emulator::server::now() as u64 % 100_000_000) * 1000;
    let mut out = Vec::with_capacity(entries.len());
    for (n, e) in entries.iter().enumerate() {
        let api = find_api(set, &e.api);
        if admin {
            run::send_request(target, &reset_req(world_json.clone())).await?;
        }
        let before = run::observe_instances(set, target, &opts, api, &e.case).await?;
        let now = emulator::server::now();
        let resp = match sign(
            api,
            &e.case,
            &target.authority(),
            creds,
            now,
            base + n as u64,
        ) {
            Ok(req) => {
                if e.case.auth == AuthFault::ReusedNonce {
                    run::send_request(target, &req).await?;
                }
                Ok(run::send_request(target, &req).await?)
            }
            Err(err) => Err(err),
        };
        let after = run::observe_instances(set, target, &opts, api, &e.case).await?;
        let seen = before.zip(after);
        out.push(render(api, e, resp, seen));
    }
    Ok((out, TargetRun { reset: admin }))
}

static VOLATILE: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "<request-id>",
        ),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}(?::|%3A|%253A)\d{2}(?::|%3A|%253A)\d{2}(?:\.\d+)?Z",
            "<timestamp>",
        ),
        (r"\b1\d{9}\b", "<timestamp>"),
        (r"(?i)((?:nonce)(?:=|%3D|%253D))[0-9a-z-]+", "${1}<nonce>"),
        (r"\b[0-9a-fA-F]{32}\b", "<nonce>"),
        (
            r"(?:127\.0\.0\.1|localhost|\[::1\])(?::|%3A|%253A)\d+",
            "<host>",
        ),
    ]
    .into_iter()
    .map(|(r, p)| (Regex::new(r).expect("valid regex"), p))
    .collect()
});

fn placeholder(key: &str) -> Option<&'static str> {
    match key.to_ascii_lowercase().as_str() {
        "requestid" | "request_id" => Some("<request-id>"),
        "hostid" => Some("<host-id>"),
        "timestamp" | "servertime" | "date" => Some("<timestamp>"),
        "nonce" | "signaturenonce" => Some("<nonce>"),
        "signature" => Some("<signature>"),
        _ => None,
    }
}

/// Replaces volatile values (request ids, timestamps, nonces, signatures, host ids, loopback
/// host:port) with placeholders, in place.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match placeholder(k) {
                    Some(p) if !v.is_object() && !v.is_array() && !v.is_null() => {
                        *v = Value::String(p.into())
                    }
                    _ => redact(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            for (re, p) in VOLATILE.iter() {
                if re.is_match(s) {
                    *s = re.replace_all(s, *p).into_owned();
                }
            }
        }
        _ => {}
    }
}

fn world_change(seen: Option<(Vec<Seen>, Vec<Seen>)>) -> Value {
    let Some((before, after)) = seen else {
        return Value::String("not observable".into());
    };
    let mut ids: BTreeSet<&String> = before.iter().map(|s| &s.id).collect();
    ids.extend(after.iter().map(|s| &s.id));
    let mut changed = Map::new();
    let mut unchanged = 0;
    for id in ids {
        let b = before.iter().find(|s| &s.id == id);
        let a = after.iter().find(|s| &s.id == id);
        if b == a {
            unchanged += 1;
            continue;
        }
        let mut c = Map::new();
        let keys = |s: Option<&Seen>| s.map_or(json!("absent"), |s| json!(s.keys));
        if b.map(|s| &s.keys) != a.map(|s| &s.keys) {
            c.insert("keys".into(), json!({"before": keys(b), "after": keys(a)}));
        }
        let state = |s: Option<&Seen>| s.and_then(|s| s.state.clone());
        if state(b) != state(a) {
            c.insert(
                "state".into(),
                json!({"before": state(b), "after": state(a)}),
            );
        }
        changed.insert(id.clone(), Value::Object(c));
    }
    json!({"unchanged": unchanged, "changed": changed})
}

#[derive(Serialize)]
struct Body<'a> {
    exchange: String,
    request: Request<'a>,
    response: Value,
    world: Value,
}

#[derive(Serialize)]
struct Request<'a> {
    region: &'a str,
    params: &'a protocol::Params,
    transport: &'a generate::Transport,
    auth: AuthFault,
    breaks: &'a [String],
    situations: &'a [crate::spec::Situation],
}

fn render(
    api: &LoadedApi,
    e: &Entry,
    resp: Result<HttpResponse, String>,
    seen: Option<(Vec<Seen>, Vec<Seen>)>,
) -> Recorded {
    let response = match resp {
        Ok(resp) => {
            let o = protocol::decode(api.spec.api.family, &resp);
            let result = match &o.result {
                OutcomeResult::Success => "success".to_string(),
                OutcomeResult::Error { code, .. } => format!("error {code}"),
                OutcomeResult::Malformed { reason } => format!("malformed: {reason}"),
            };
            let mut body = o.body.clone();
            redact(&mut body);
            let mut r = json!({
                "status": o.status,
                "outcome": result,
                "format": o.format,
                "body": body,
            });
            if !o.problems.is_empty() {
                r["problems"] = json!(o.problems);
            }
            redact(&mut r["outcome"]);
            r
        }
        Err(reason) => json!({"unsent": reason}),
    };
    let body = Body {
        exchange: e.name(),
        request: Request {
            region: &e.case.region,
            params: &e.case.params,
            transport: &e.case.transport,
            auth: e.case.auth,
            breaks: &e.case.violates,
            situations: &e.case.situations,
        },
        response,
        world: world_change(seen),
    };
    Recorded {
        name: e.name(),
        file: e.file(),
        about: e.about.clone(),
        yaml: serde_yaml_ng::to_string(&body).unwrap_or_default(),
    }
}

/// What to do with a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write `.snap` files (accept everything): `--update`, `INSTA_UPDATE=always`.
    Record,
    /// Write a pending `.snap.new` beside each differing snapshot, for `cargo insta review`.
    Pending,
    /// Write nothing: `INSTA_UPDATE=no`, and the default under CI.
    Check,
}

impl Mode {
    /// The mode insta would use, from `INSTA_UPDATE` (and `CI`).
    pub fn from_env() -> Mode {
        match std::env::var("INSTA_UPDATE").as_deref() {
            Ok("always") | Ok("1") => Mode::Record,
            Ok("no") | Ok("0") => Mode::Check,
            Ok("new") => Mode::Pending,
            _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") => {
                Mode::Check
            }
            _ => Mode::Pending,
        }
    }
}

/// The result of comparing one exchange with its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Same as stored.
    Same,
    /// Differs: the unified diff (stored → now), naming the exchange.
    Changed(String),
    /// No snapshot stored yet: the new contents.
    New(String),
    /// Written as the stored snapshot (record mode).
    Written,
}

/// A whole check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Per exchange: name, snapshot path, status.
    pub results: Vec<(String, PathBuf, Status)>,
    /// `.snap` files in the APIs' folders that no exchange of the corpus has.
    pub unreferenced: Vec<PathBuf>,
    /// `.snap.new` files written.
    pub pending: Vec<PathBuf>,
}

impl Report {
    /// Differences (changed, new, unreferenced).
    pub fn differences(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, _, s)| matches!(s, Status::Changed(_) | Status::New(_)))
            .count()
            + self.unreferenced.len()
    }

    /// Diffs and a summary, for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, path, status) in &self.results {
            match status {
                Status::Changed(diff) => {
                    let _ = writeln!(out, "changed: {name} ({})\n{diff}", path.display());
                }
                Status::New(text) => {
                    let _ = writeln!(out, "new: {name} ({}), no snapshot stored", path.display());
                    for l in text.lines() {
                        let _ = writeln!(out, "+{l}");
                    }
                }
                _ => {}
            }
        }
        for p in &self.unreferenced {
            let _ = writeln!(
                out,
                "unreferenced: {} (no exchange of the corpus has it)",
                p.display()
            );
        }
        let count = |f: fn(&Status) -> bool| self.results.iter().filter(|r| f(&r.2)).count();
        let _ = writeln!(
            out,
            "{} exchanges: {} same, {} changed, {} new, {} written, {} unreferenced",
            self.results.len(),
            count(|s| *s == Status::Same),
            count(|s| matches!(s, Status::Changed(_))),
            count(|s| matches!(s, Status::New(_))),
            count(|s| *s == Status::Written),
            self.unreferenced.len()
        );
        if !self.pending.is_empty() {
            let _ = writeln!(
                out,
                "{} pending .snap.new files written: review them with `cargo insta review`",
                self.pending.len()
            );
        }
        out
    }
}

#[derive(Serialize)]
struct Meta<'a> {
    source: &'a str,
    description: &'a str,
    expression: &'a str,
}

/// The file text insta writes for a snapshot: the metadata header, then the contents.
pub fn snap_file(r: &Recorded) -> String {
    let meta = serde_yaml_ng::to_string(&Meta {
        source: "src/snapshot/mod.rs",
        description: &r.about,
        expression: &r.name,
    })
    .unwrap_or_default();
    let contents =
        insta::internals::TextSnapshotContents::new(r.yaml.clone(), insta::TextSnapshotKind::File);
    format!("---\n{meta}---\n{contents}\n")
}

fn pending_path(path: &Path) -> PathBuf {
    path.with_extension("snap.new")
}

/// Compares recorded exchanges with the snapshots under `dir`, writing according to `mode`.
pub fn compare(dir: &Path, recorded: &[Recorded], mode: Mode) -> std::io::Result<Report> {
    let mut report = Report::default();
    let write = |path: &Path, text: String| -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)
    };
    for r in recorded {
        let path = dir.join(&r.file);
        let pending = pending_path(&path);
        let new = insta::internals::TextSnapshotContents::new(
            r.yaml.clone(),
            insta::TextSnapshotKind::File,
        );
        let old = if path.exists() {
            let snap = insta::Snapshot::from_file(&path).map_err(|e| {
                std::io::Error::other(format!("{}: not a snapshot: {e}", path.display()))
            })?;
            snap.as_text().map(|t| t.to_string())
        } else {
            None
        };
        let status = match &old {
            Some(old) if *old == new.to_string() => Status::Same,
            _ if mode == Mode::Record => Status::Written,
            Some(old) => {
                let new = new.to_string();
                let diff = similar::TextDiff::from_lines(old.as_str(), new.as_str())
                    .unified_diff()
                    .context_radius(3)
                    .header(
                        &format!("{} (stored)", r.name),
                        &format!("{} (now)", r.name),
                    )
                    .to_string();
                Status::Changed(diff)
            }
            None => Status::New(new.to_string()),
        };
        match (&status, mode) {
            (Status::Written, _) => {
                write(&path, snap_file(r))?;
                if pending.exists() {
                    std::fs::remove_file(&pending)?;
                }
            }
            (Status::Same, Mode::Record | Mode::Pending) if pending.exists() => {
                std::fs::remove_file(&pending)?;
            }
            (Status::Changed(_) | Status::New(_), Mode::Pending) => {
                write(&pending, snap_file(r))?;
                report.pending.push(pending.clone());
            }
            _ => {}
        }
        report.results.push((r.name.clone(), path, status));
    }
    // Snapshots of these APIs that the corpus no longer has.
    let known: BTreeSet<PathBuf> = recorded.iter().map(|r| dir.join(&r.file)).collect();
    let folders: BTreeSet<PathBuf> = known
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    for folder in folders {
        let Ok(rd) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut stale: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "snap") && !known.contains(p))
            .collect();
        stale.sort();
        for p in stale {
            if mode == Mode::Record {
                std::fs::remove_file(&p)?;
            } else {
                report.unreferenced.push(p);
            }
        }
    }
    Ok(report)
}

/// Exchanges per API, in corpus order.
pub fn counts(entries: &[Entry]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in entries {
        *m.entry(e.api.clone()).or_insert(0) += 1;
    }
    m
}
