//! Recording: each exchange of the corpus sent through the runner's stages ([`Session`]: the
//! same signing, pacing and read calls as a run), rendered as YAML for a person — the abstract
//! request, the status, the decoded body normalised, and the change to the named instances.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::normalise::redact;
use super::Entry;
use crate::case::{AuthFault, Case};
use crate::emulator;
use crate::protocol::describe::{self, Seen};
use crate::protocol::Keys;
use crate::protocol::{HttpResponse, OutcomeResult};
use crate::run::{self, RunError, RunOptions, Sent, Session, Setup, SetupOptions, Target};
use crate::spec::{LoadedApi, SpecSet};
use crate::world::World;

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

fn find_api<'a>(set: &'a SpecSet, name: &str) -> &'a LoadedApi {
    set.apis
        .iter()
        .find(|a| a.name == name)
        .expect("corpus entries name APIs of the set")
}

/// How a recording against a URL went, besides the exchanges.
#[derive(Debug, Clone, Default)]
pub struct TargetRun {
    /// Whether the admin reset was available (each exchange then starts from the same world);
    /// otherwise the exchanges ran in corpus order, each seeing the effects of those before.
    pub reset: bool,
}

/// Records the corpus against the emulator started in-process with `config` (reset to its
/// world before every exchange, so exchanges are independent of order).
pub fn record_in_process(
    set: &SpecSet,
    config: &emulator::Config,
    entries: &[Entry],
) -> Result<Vec<Recorded>, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            RunError::Transport(run::TransportError::Unreachable {
                url: "127.0.0.1".into(),
                reason: format!("cannot start the runtime: {e}"),
            })
        })?;
    rt.block_on(async {
        let setup = Setup::prepare(SetupOptions {
            specs: None,
            reach: Default::default(),
            target: None,
            world: Some(config.world.clone()),
            faults: config.faults.clone(),
            variants: config.variants.clone(),
            keys: config.keys.clone(),
            timeout: Duration::from_secs(10),
            probe_world: false,
        })
        .await?;
        let recorded =
            record_target(set, &config.world, &setup.target, &config.keys, entries).await;
        setup.finish().await;
        recorded.map(|(r, _)| r)
    })
}

/// Sends the corpus to a target. When the target serves the emulator's admin endpoint it is
/// reset to `world` before every exchange and bindings are read from its admin view (every
/// instance named, in any region); otherwise exchanges run in corpus order and bindings are
/// observed with the read calls a run uses.
pub async fn record_target(
    set: &SpecSet,
    world: &World,
    target: &Target,
    creds: &Keys,
    entries: &[Entry],
) -> Result<(Vec<Recorded>, TargetRun), RunError> {
    let reset = describe::admin_reset_request(&target.authority(), world);
    let admin = target.is_loopback()
        && run::send_request(target, &reset)
            .await
            .is_ok_and(|r| r.status == 200);
    let opts = RunOptions {
        keys: creds.clone(),
        admin,
        ..Default::default()
    };
    let session = Session::new(set, world.clone(), target, &opts);
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let api = find_api(set, &e.api);
        if admin {
            run::send_request(target, &reset).await?;
        }
        let before = observe(&session, target, admin, api, &e.case).await?;
        let sent = match session.send(api, &e.case).await {
            Ok(sent) => Ok(sent),
            Err(RunError::Protocol { source, .. }) => Err(source.to_string()),
            Err(other) => return Err(other),
        };
        let after = observe(&session, target, admin, api, &e.case).await?;
        out.push(render(api, e, sent, before.zip(after)));
    }
    Ok((out, TargetRun { reset: admin }))
}

/// The named instances of the API's product: from the admin view when the target serves it,
/// else as a run observes them.
async fn observe(
    session: &Session,
    target: &Target,
    admin: bool,
    api: &LoadedApi,
    case: &Case,
) -> Result<Option<Vec<Seen>>, RunError> {
    if !admin {
        return session.observe(api, case).await;
    }
    let ids = case.instance_ids(api);
    let req = describe::admin_world_request(&target.authority(), Some(&ids));
    let resp: HttpResponse = run::send_request(target, &req).await?;
    Ok(describe::read_admin_world(
        &resp,
        api.spec.instance_product(),
        &ids,
    ))
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
    params: &'a crate::protocol::Params,
    transport: &'a crate::case::Transport,
    auth: AuthFault,
    breaks: &'a [String],
    situations: &'a [crate::spec::Situation],
    /// For a case that numbers form list items from other than 0: the list items' names as
    /// they went on the wire, read back from the signed request (the one transport choice the
    /// abstract request above does not show by itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    items_sent_as: Option<Vec<String>>,
}

fn render(
    api: &LoadedApi,
    e: &Entry,
    sent: Result<Sent, String>,
    seen: Option<(Vec<Seen>, Vec<Seen>)>,
) -> Recorded {
    let items_sent_as = match &sent {
        Ok(sent) if e.case.transport.index_base != 0 => {
            Some(crate::protocol::list_item_names(&sent.request))
        }
        _ => None,
    };
    let secrets = match &sent {
        Ok(sent) => crate::protocol::redact::secrets_in(&sent.request, &[]),
        Err(_) => Vec::new(),
    };
    let response = match sent.map(|s| s.response) {
        Ok(resp) => {
            let o = crate::protocol::decode(api.spec.api.family, &resp);
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
            items_sent_as,
        },
        response,
        world: world_change(seen),
    };
    Recorded {
        name: e.name(),
        file: e.file(),
        about: e.about.clone(),
        yaml: crate::protocol::redact::scrub(
            &serde_yaml_ng::to_string(&body).unwrap_or_default(),
            &secrets,
        ),
    }
}
