//! The emulator: a stateful second implementation of the five documents.
//!
//! Requests enter as [`HttpRequest`] bytes (from the HTTP server in [`server`] or directly from
//! tests) and leave as [`HttpResponse`] bytes. It decodes and verifies requests with the protocol
//! module, then applies its own reading of the documents to a [`World`]. It deliberately does not
//! call the oracle: the two are independent implementations, so a shared mistake cannot pass
//! silently. For the five seeded APIs its codes, limits and patterns are written here from the
//! documents, not read from the spec files the oracle uses; any other API of a known family it
//! serves from its spec file, by its own reading of the rules and the effect ([`generic`]).

mod actions;
pub mod faults;
pub mod gate;
mod generic;
pub mod race;
pub mod server;
pub mod tls;
pub mod variants;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use faults::Fault;
pub use variants::Variant;

use crate::protocol::{
    self, Credentials, FamilyId, HttpRequest, HttpResponse, Keys, NonceStore, ParsedRequest,
    SecretStore,
};
use crate::spec::SpecSet;
use crate::world::World;

/// The documentation example credentials of Tencent Cloud API 3.0, accepted by default for
/// every Tencent family.
pub const TENCENT_DEFAULT: (&str, &str) = (
    "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
    "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
);
/// The documentation example credentials of Alibaba Cloud's signature page.
pub const ALIBABA_DEFAULT: (&str, &str) = ("testid", "testsecret");

/// The documentation example credentials of both vendors: what the emulator accepts and the
/// harness signs with by default (on loopback only: a remote target needs the user's own).
pub fn example_keys() -> Keys {
    Keys {
        tencent: Credentials::from_pair(TENCENT_DEFAULT),
        alibaba: Credentials::from_pair(ALIBABA_DEFAULT),
    }
}

/// Where test-only admin endpoints live; no vendor API uses this path.
pub use crate::protocol::describe::ADMIN_PREFIX;

/// How the emulator is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// The world it starts with (and returns to on reset).
    pub world: World,
    /// Bugs to inject.
    pub faults: BTreeSet<Fault>,
    /// Other defensible readings to take where the documents leave a choice.
    pub variants: BTreeSet<Variant>,
    /// The credentials, a pair per vendor.
    pub keys: Keys,
    /// Always enforce the documented request rates (CVM Associate and Disassociate 10/s, ECM
    /// Disassociate 20/s, per secret id and action). Off, the admin view can still switch
    /// enforcement on for a while (`POST /__apiconform/rate-limits?enforce=on`).
    pub rate_limits: bool,
    /// `serve --only PRODUCT`: answer only that product's calls (a spec folder: `tencent-cvm`,
    /// `tencent-ecm`, `alibaba-ecs`), as one of the vendor's hosts does; any other call gets
    /// what a host answers for an action it does not serve. `None`: every product.
    pub only: Option<String>,
    /// The specs whose APIs it serves from the spec file alone ([`generic`]): every API of
    /// these that the hand-written handlers do not serve. The built-in specs by default.
    pub specs: Arc<SpecSet>,
}

/// The built-in specs, read once per process ([`crate::spec::builtin`]).
pub fn builtin_specs() -> Arc<SpecSet> {
    crate::spec::builtin()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            world: World::default_world(),
            faults: BTreeSet::new(),
            variants: BTreeSet::new(),
            keys: crate::emulator::example_keys(),
            rate_limits: false,
            only: None,
            specs: builtin_specs(),
        }
    }
}

/// A running emulator's state. Cheap to share behind an `Arc`; one lock guards the world so a
/// Tencent batch is applied whole or not at all, whatever the concurrency.
pub struct Emulator {
    config: Config,
    world: Mutex<Held>,
    nonces: Nonces,
    /// Per (secret id, product, action): the second of the current window and the requests
    /// counted in it.
    rates: Mutex<HashMap<RateKey, (i64, u32)>>,
    /// What the admin view switched on at run time, besides `config.rate_limits`.
    enforced: Mutex<Enforced>,
    /// Whether anything is enforced at all (`config.rate_limits`, or the admin switch): the
    /// check every request makes without taking a lock.
    enforcing: AtomicBool,
    counter: AtomicU64,
}

/// What a documented rate is counted by: secret id, product, action.
type RateKey = (String, &'static str, String);

/// The documented rate limits switched on through the admin view.
#[derive(Debug, Default)]
struct Enforced {
    /// Every documented limit.
    all: bool,
    /// Only these `(version, action)` pairs (version `None`: any).
    only: BTreeSet<(Option<String>, String)>,
}

impl Enforced {
    fn covers(&self, version: Option<&str>, action: &str) -> bool {
        self.all
            || self
                .only
                .iter()
                .any(|(v, a)| a == action && v.as_deref().is_none_or(|v| Some(v) == version))
    }

    fn any(&self) -> bool {
        self.all || !self.only.is_empty()
    }
}

/// The documented limit of a request's action, and the product whose documents state it: CVM
/// 2017-03-12 `AssociateInstancesKeyPairs` and `DisassociateInstancesKeyPairs` 10 requests/s
/// (the current definitions: "CVM documents 10 requests/second for these actions"), ECM
/// 2019-07-19 `DisassociateInstancesKeyPairs` 20 requests/s (seed 001: "A maximum of 20
/// requests can be initiated per second for this API"). No document states a limit for the
/// read calls, for API 2.0 or for Alibaba.
fn documented_limit(parsed: &ParsedRequest) -> Option<(&'static str, u32)> {
    if parsed.family != FamilyId::TencentApi3 {
        return None;
    }
    match (parsed.version.as_deref()?, parsed.action.as_str()) {
        ("2017-03-12", "AssociateInstancesKeyPairs" | "DisassociateInstancesKeyPairs") => {
            Some(("cvm", 10))
        }
        ("2019-07-19", "DisassociateInstancesKeyPairs") => Some(("ecm", 20)),
        _ => None,
    }
}

impl Emulator {
    /// A new emulator.
    pub fn new(config: Config) -> Self {
        let world = Mutex::new(Held::new(config.world.clone()));
        let always = config.rate_limits;
        Emulator {
            config,
            world,
            nonces: Nonces::default(),
            rates: Mutex::new(HashMap::new()),
            enforced: Mutex::new(Enforced::default()),
            enforcing: AtomicBool::new(always),
            counter: AtomicU64::new(0),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A copy of the current world.
    pub fn world(&self) -> World {
        self.lock().world.clone()
    }

    /// Puts the world back to `world`, or to the one it started with.
    pub fn reset(&self, world: Option<World>) {
        *self.lock() = Held::new(world.unwrap_or_else(|| self.config.world.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // A panic while holding the lock would be a bug; the world is still usable data.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has(&self, fault: Fault) -> bool {
        self.config.faults.contains(&fault)
    }

    fn reads(&self, variant: Variant) -> bool {
        self.config.variants.contains(&variant)
    }

    /// A request id in the vendor's format: Tencent lower-case UUIDs, Alibaba upper-case.
    fn request_id(&self, family: FamilyId) -> String {
        let mut n = self.counter.fetch_add(1, Ordering::Relaxed);
        if self.has(Fault::RequestIdsRecycled) {
            n %= 64;
        }
        let id =
            uuid::Uuid::from_u64_pair(0x5a17_c0de_0000_4000 | (n >> 48), n | 0x8000_0000_0000_0000);
        match family {
            FamilyId::AliyunRpc => id.to_string().to_uppercase(),
            _ => id.to_string(),
        }
    }

    /// Answers one request at time `now` (Unix seconds).
    pub fn handle(&self, req: &HttpRequest, now: i64) -> HttpResponse {
        if req.path().starts_with(ADMIN_PREFIX) {
            return self.admin(req);
        }
        let parsed = match protocol::parse_request(req) {
            Ok(p) => p,
            Err(e) => {
                let rid = self.request_id(e.family);
                return protocol::request_error_response(&e, &rid);
            }
        };
        if let Err(e) = self.authenticate(req, &parsed, now) {
            let rid = self.request_id(e.family);
            return protocol::request_error_response(&e, &rid);
        }
        if let Some(only) = &self.config.only {
            if served_product(&parsed).is_some_and(|p| p != only) {
                return not_served(self, &parsed, only);
            }
        }
        if let Some(resp) = self.rate_limited(&parsed, now) {
            return resp;
        }
        actions::dispatch(self, &parsed)
    }

    fn authenticate(
        &self,
        req: &HttpRequest,
        parsed: &ParsedRequest,
        now: i64,
    ) -> Result<(), protocol::RequestError> {
        let secrets = Secrets {
            keys: &self.config.keys,
            any_signature: self.has(Fault::UncheckedSignature),
        };
        // The other reading of Alibaba's undocumented window: a day, not 15 minutes.
        let within_day = parsed.family == FamilyId::AliyunRpc
            && self.reads(Variant::AliyunTimestampWindowDay)
            && (now - parsed.timestamp).abs() <= 86_400;
        let ahead = self.has(Fault::FutureTimestampAccepted) && parsed.timestamp > now;
        let now = if self.has(Fault::StaleTimestampAccepted) || within_day || ahead {
            parsed.timestamp
        } else {
            now
        };
        let result = if self.has(Fault::NonceReplayAccepted) {
            protocol::verify(req, parsed, &secrets, now, &AcceptAllNonces)
        } else {
            protocol::verify(req, parsed, &secrets, now, &self.nonces)
        };
        match result {
            Err(e) if self.has(Fault::UncheckedSignature) && is_signature_error(&e.code) => Ok(()),
            other => other,
        }
    }

    /// The throttling answer to a request over its action's documented rate, counted per
    /// secret id and action in one-second windows, when enforcement is on for it.
    fn rate_limited(&self, parsed: &ParsedRequest, now: i64) -> Option<HttpResponse> {
        if !self.enforcing.load(Ordering::Relaxed) || self.has(Fault::NeverThrottles) {
            return None;
        }
        let (product, limit) = documented_limit(parsed)?;
        if !self.config.rate_limits
            && !self
                .enforced()
                .covers(parsed.version.as_deref(), &parsed.action)
        {
            return None;
        }
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let key = (parsed.secret_id.clone(), product, parsed.action.clone());
        let slot = rates.entry(key).or_insert((now, 0));
        if slot.0 != now {
            *slot = (now, 0);
        }
        slot.1 += 1;
        if slot.1 > limit {
            let rid = self.request_id(FamilyId::TencentApi3);
            return Some(protocol::tencent_api3::error(
                "RequestLimitExceeded",
                &format!(
                    "the documented limit of {} is {limit} requests per second",
                    parsed.action
                ),
                &rid,
            ));
        }
        None
    }

    fn enforced(&self) -> std::sync::MutexGuard<'_, Enforced> {
        self.enforced.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches enforcement of the documented rates on or off at run time, for every limited
    /// action or only `action` (of `version`, if given). Switching on starts the windows of
    /// what it covers afresh. `config.rate_limits` enforces whatever this says.
    pub fn enforce_rate_limits(&self, on: bool, action: Option<&str>, version: Option<&str>) {
        let mut enforced = self.enforced();
        match (on, action) {
            (true, None) => enforced.all = true,
            (true, Some(a)) => {
                enforced
                    .only
                    .insert((version.map(String::from), a.to_string()));
            }
            (false, None) => *enforced = Enforced::default(),
            (false, Some(a)) => enforced
                .only
                .retain(|(v, x)| !(x == a && (version.is_none() || v.as_deref() == version))),
        }
        if on {
            let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
            rates.retain(|(_, _, a), _| action.is_some_and(|x| x != a));
        }
        self.enforcing
            .store(self.config.rate_limits || enforced.any(), Ordering::Relaxed);
    }

    /// What the rate-limit switch says, as the admin view answers it.
    fn rate_limit_state(&self) -> serde_json::Value {
        let enforced = self.enforced();
        serde_json::json!({
            "always": self.config.rate_limits,
            "all": enforced.all,
            "only": enforced.only.iter().map(|(v, a)| serde_json::json!({"action": a, "version": v})).collect::<Vec<_>>(),
        })
    }

    fn admin(&self, req: &HttpRequest) -> HttpResponse {
        let json = |status: u16, body: String| HttpResponse {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
        };
        let path = req.path().strip_prefix(ADMIN_PREFIX).unwrap_or_default();
        match (req.method.as_str(), path) {
            ("GET", "/world") if !req.query().is_empty() => {
                // `?instances=ID,ID`: only those instances (compact JSON), for observing a few.
                let ids: Vec<String> = form_urlencoded::parse(req.query().as_bytes())
                    .filter(|(k, _)| k == "instances")
                    .flat_map(|(_, v)| {
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let part = World {
                    instances: self
                        .lock()
                        .instances
                        .iter()
                        .filter(|i| ids.contains(&i.id))
                        .cloned()
                        .collect(),
                    key_pairs: vec![],
                };
                json(200, serde_json::to_string(&part).unwrap_or_default())
            }
            ("GET", "/world") => json(
                200,
                serde_json::to_string_pretty(&self.world()).unwrap_or_default(),
            ),
            ("GET", "/rate-limits") => json(200, self.rate_limit_state().to_string()),
            ("POST", "/rate-limits") => {
                let query: Vec<(String, String)> = form_urlencoded::parse(req.query().as_bytes())
                    .into_owned()
                    .collect();
                let get = |k: &str| {
                    query
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.as_str())
                };
                let on = match get("enforce") {
                    Some("on") => true,
                    Some("off") => false,
                    _ => {
                        return json(
                            400,
                            "{\"error\":\"POST /__apiconform/rate-limits?enforce=on|off[&action=NAME[&version=V]]\"}"
                                .into(),
                        )
                    }
                };
                self.enforce_rate_limits(on, get("action"), get("version"));
                json(200, self.rate_limit_state().to_string())
            }
            ("POST", "/reset") => {
                if req.body.iter().all(u8::is_ascii_whitespace) {
                    self.reset(None);
                    return json(200, "{\"reset\":true}".into());
                }
                match serde_json::from_slice::<World>(&req.body) {
                    Ok(w) if w.check().is_ok() => {
                        self.reset(Some(w));
                        json(200, "{\"reset\":true}".into())
                    }
                    Ok(w) => json(
                        400,
                        serde_json::json!({"error": w.check().unwrap_err()}).to_string(),
                    ),
                    Err(e) => json(400, serde_json::json!({"error": e.to_string()}).to_string()),
                }
            }
            _ => json(
                404,
                "{\"error\":\"admin endpoints: GET /__apiconform/world[?instances=ID,ID], POST /__apiconform/reset, GET|POST /__apiconform/rate-limits[?enforce=on|off[&action=NAME[&version=V]]]\"}"
                    .into(),
            ),
        }
    }
}

/// The emulator's world with its instances' positions by id, kept together under one lock.
/// Requests only change the keys of instances, never add or remove any, so positions hold
/// until the world is replaced (and rebuilt with it).
struct Held {
    world: World,
    at: HashMap<String, Vec<usize>>,
    /// What the faults of stores and views keep beside the world (`race`).
    stores: race::Stores,
}

impl Held {
    fn new(world: World) -> Held {
        let mut at: HashMap<String, Vec<usize>> = HashMap::with_capacity(world.instances.len());
        for (n, i) in world.instances.iter().enumerate() {
            at.entry(i.id.clone()).or_default().push(n);
        }
        Held {
            world,
            at,
            stores: race::Stores::default(),
        }
    }

    /// The position of the first instance (in world order, as a scan would find it) with this
    /// id and product that `keep` accepts.
    fn position(
        &self,
        product: crate::spec::Product,
        id: &str,
        keep: impl Fn(&crate::world::Instance) -> bool,
    ) -> Option<usize> {
        self.at.get(id)?.iter().copied().find(|&n| {
            self.world
                .instances
                .get(n)
                .is_some_and(|i| i.product == product && i.id == id && keep(i))
        })
    }

    /// The instance `id` of `product` (what [`World::instance`] finds, by position).
    fn instance(&self, product: crate::spec::Product, id: &str) -> Option<&crate::world::Instance> {
        let n = self.position(product, id, |_| true)?;
        self.world.instances.get(n)
    }

    /// The first instance `id` of `product` that `keep` accepts, to change.
    fn instance_mut(
        &mut self,
        product: crate::spec::Product,
        id: &str,
        keep: impl Fn(&crate::world::Instance) -> bool,
    ) -> Option<&mut crate::world::Instance> {
        let n = self.position(product, id, keep)?;
        self.world.instances.get_mut(n)
    }
}

impl std::ops::Deref for Held {
    type Target = World;
    fn deref(&self) -> &World {
        &self.world
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.world
    }
}

fn is_signature_error(code: &str) -> bool {
    matches!(
        code,
        "AuthFailure.SignatureFailure" | "4100" | "SignatureDoesNotMatch"
    )
}

struct Secrets<'a> {
    keys: &'a Keys,
    any_signature: bool,
}

impl SecretStore for Secrets<'_> {
    fn secret(&self, family: FamilyId, id: &str) -> Option<String> {
        let _ = self.any_signature;
        let creds = self.keys.for_family(family);
        (creds.id == id).then(|| creds.secret.clone())
    }
}

/// Nonces seen within the replay window, pruned as time moves on.
#[derive(Default)]
struct Nonces {
    seen: Mutex<NonceMap>,
}

#[derive(Default)]
struct NonceMap {
    seen: HashMap<(FamilyId, String, String), i64>,
    /// Size above which the next insert prunes expired nonces; doubles with the live set, so
    /// pruning costs O(1) per request however many nonces are live.
    prune_at: usize,
}

/// Longest replay window of the families (API 2.0: two hours).
const NONCE_WINDOW: i64 = 7200;

impl NonceStore for Nonces {
    fn check_and_insert(&self, family: FamilyId, secret_id: &str, nonce: &str, now: i64) -> bool {
        let mut map = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if map.seen.len() > map.prune_at.max(100_000) {
            map.seen.retain(|_, t| now - *t < NONCE_WINDOW);
            map.prune_at = 2 * map.seen.len();
        }
        let seen = &mut map.seen;
        let key = (family, secret_id.to_string(), nonce.to_string());
        match seen.get(&key) {
            Some(t) if now - *t < NONCE_WINDOW => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

struct AcceptAllNonces;

impl NonceStore for AcceptAllNonces {
    fn check_and_insert(&self, _: FamilyId, _: &str, _: &str, _: i64) -> bool {
        true
    }
}

/// The product a request is for, as the spec folders name it: the legacy API 2.0 and CVM API 3.0
/// (2017-03-12) are CVM's, 2019-07-19 is ECM's, Alibaba RPC is ECS's. The emulator's own reading,
/// from the families' wire details.
/// `None` for an API 3.0 version neither product has: every API 3.0 host answers that itself
/// (`NoSuchVersion`), as the family's common codes have it.
fn served_product(parsed: &ParsedRequest) -> Option<&'static str> {
    match (parsed.family, parsed.version.as_deref()) {
        (FamilyId::TencentApi3, Some("2019-07-19")) => Some("tencent-ecm"),
        (FamilyId::TencentApi3, Some("2017-03-12")) => Some("tencent-cvm"),
        (FamilyId::TencentApi3, _) => None,
        (FamilyId::TencentV2, _) => Some("tencent-cvm"),
        (FamilyId::AliyunRpc, _) => Some("alibaba-ecs"),
    }
}

/// What a host of one product answers a call it does not serve: the family's unknown-action
/// answer (API 3.0 `InvalidAction` with HTTP 200, API 2.0 code 4000, Alibaba 404
/// `InvalidAction.NotFound`).
fn not_served(emu: &Emulator, parsed: &ParsedRequest, only: &str) -> HttpResponse {
    let rid = emu.request_id(parsed.family);
    let message = format!(
        "{} ({}) is not served by this host, which serves {only}",
        parsed.action,
        parsed.version.as_deref().unwrap_or("no version")
    );
    match parsed.family {
        FamilyId::TencentApi3 => protocol::tencent_api3::error("InvalidAction", &message, &rid),
        FamilyId::TencentV2 => protocol::tencent_v2::respond(4000, &message, Default::default()),
        FamilyId::AliyunRpc => protocol::aliyun_rpc::error(
            404,
            "InvalidAction.NotFound",
            &message,
            &rid,
            parsed.format,
        ),
    }
}

/// The items once each, in first-seen order.
fn dedup(items: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .filter(|i| seen.insert(i.as_str()))
        .cloned()
        .collect()
}
