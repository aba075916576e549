//! World discovery: a world file written from the vendors' read APIs alone
//! (`apiconform world discover`).
//!
//! The selection (tags, ids) is sent to the target as its filter, and every resource the
//! target answers is checked against it again here: a buggy or hostile target that answers
//! more than was asked cannot widen what a later run may touch. What the read APIs cannot
//! show (ECM's bindings, a login password) is said so in the file's header, and the state
//! written for it is the cautious one.
//!
//! Calls are built and read by [`crate::protocol::discover`]; this module sends them, pages
//! through the answers, keeps what the selection asked for, and assembles the [`World`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::send::send_request;
use super::{Target, TransportError};
use crate::input::text::{escape, Shown};
use crate::protocol::discover::{Answer, Listed, Listing, Select};
use crate::protocol::Keys;
use crate::protocol::{self, Clock, FamilyId};
use crate::spec::{InstanceState, Os, Product};
use crate::world::{Instance, KeyPair, World};

/// What to discover.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// The region to list.
    pub region: String,
    /// The products to list (ECM only from `instances`, read nothing).
    pub products: BTreeSet<Product>,
    /// `--tag KEY=VALUE`: instances and key pairs carrying the tag (any one of them).
    pub tags: Vec<(String, String)>,
    /// `--instance ID`: these instances, routed to a product by their id's prefix.
    pub instances: Vec<String>,
    /// `--key-pair ID`: these key pairs too (a `skey-` id for CVM/ECM, a name for ECS).
    pub key_pairs: Vec<String>,
    /// The credentials, a pair per vendor.
    pub keys: Keys,
    /// `--max-duration`: discovery stops with [`DiscoverError::Deadline`] once it is spent.
    pub max_duration: Option<Duration>,
}

/// A discovered world with what the file's header and stderr must say about it.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// The world: only the selected resources.
    pub world: World,
    /// Resources the target answered although the selection did not ask for them: dropped.
    pub dropped: Vec<String>,
    /// Selected instances the world format cannot hold as read (a transitional or final state,
    /// an unknown OS): left out.
    pub left_out: Vec<String>,
    /// Everything else worth knowing (ECM's unknowns, a key that could not be confirmed, ...).
    pub notes: Vec<String>,
    /// Read calls sent.
    pub requests: usize,
}

/// Why discovery could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The target could not be reached (or the URL is unusable).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The target answered an error code.
    #[error("{product} {action} was refused: {}: {}{}\n  = help: {help}", Shown(code), Shown(message), request_id.as_ref().map(|r| format!(" (RequestId {})", Shown(r))).unwrap_or_default())]
    Refused {
        /// `cvm` or `ecs`.
        product: &'static str,
        /// The action.
        action: &'static str,
        /// The code answered.
        code: String,
        /// The message answered.
        message: String,
        /// The request id, where answered.
        request_id: Option<String>,
        /// What to do about it.
        help: &'static str,
    },
    /// The answer is not of the documented shape.
    #[error("{product} {action} answered something that is not its documented answer: {why}\n  = help: check that --target is the {product} endpoint")]
    Unreadable {
        /// `cvm` or `ecs`.
        product: &'static str,
        /// The action.
        action: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The target kept answering full pages.
    #[error("{product} {action} was still answering full pages after {pages} pages\n  = help: select fewer resources (a narrower --tag), or check the target: it may ignore Offset/PageNumber")]
    EndlessPages {
        /// `cvm` or `ecs`.
        product: &'static str,
        /// The action.
        action: &'static str,
        /// Pages read.
        pages: usize,
    },
    /// The answers came to more than any selection needs.
    #[error("{product} {action}: the answers came to more than {limit} over {requests} read calls, more than any selection needs: discovery stopped, nothing written\n  = help: select fewer resources (a narrower --tag, fewer --instance), or check the target: it may ignore the filter or answer pages of padding")]
    TooMuch {
        /// `cvm` or `ecs`.
        product: &'static str,
        /// The action.
        action: &'static str,
        /// The bound crossed, in words.
        limit: String,
        /// Read calls sent.
        requests: usize,
    },
    /// `--max-duration` was spent before discovery finished.
    #[error("--max-duration {}s spent after {requests} read calls ({answered} resources answered): discovery stopped, nothing written\n  = help: give it more time (--max-duration 30m), select fewer resources, or try when the target throttles less", limit.as_secs())]
    Deadline {
        /// The duration given.
        limit: Duration,
        /// Read calls sent.
        requests: usize,
        /// Resources answered.
        answered: usize,
    },
    /// The selection cannot be served as asked.
    #[error("{what}\n  = help: {help}")]
    Usage {
        /// What is wrong.
        what: String,
        /// What to change.
        help: String,
    },
}

impl DiscoverError {
    /// Whether the fault is in what was asked (exit 2) rather than at the target (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DiscoverError::Usage { .. } | DiscoverError::Transport(TransportError::BadUrl { .. })
        )
    }
}

/// The most pages one selection is read over (20,000 instances at 100 a page): a target that
/// answers full pages for ever must not keep discovery running for ever.
const MAX_PAGES: usize = 200;

/// Between two read calls to a target off this machine: 10 requests/s, the pace the runner
/// keeps where no rate is documented.
const REMOTE_PACE: Duration = Duration::from_millis(100);

/// Throttled answers retried per call before discovery gives up.
const THROTTLE_RETRIES: usize = 4;

/// The most bytes of answers one discovery reads, across pages and calls: 20,000 instances
/// ([`MAX_PAGES`] full pages) as CVM describes them (2-3 KB each) come to about 50 MB, and
/// what is kept of them stays below this. Pages of padding just under the 8 MiB a response is
/// read up to took a discovery to 1.76 GB.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The most resources the answers of one discovery may list, across pages and calls: twice
/// the 20,000 instances [`MAX_PAGES`] pages hold, for the key pairs.
const MAX_ANSWERED: usize = 40_000;

/// How often a discovery says how far it got (`progress:` lines).
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What a discovery has read so far: what its progress lines, its bounds and its deadline
/// error count.
#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    answered: AtomicUsize,
    bytes: AtomicUsize,
}

impl Tally {
    fn get(n: &AtomicUsize) -> usize {
        n.load(Ordering::Relaxed)
    }

    fn line(&self, started: Instant, limit: Option<Duration>) -> String {
        format!(
            "progress: {} read calls, {} resources answered ({:.1} MiB), {} s{}",
            Self::get(&self.requests),
            Self::get(&self.answered),
            Self::get(&self.bytes) as f64 / f64::from(1 << 20),
            started.elapsed().as_secs(),
            limit.map_or(String::new(), |d| format!(
                " of --max-duration {}s",
                d.as_secs()
            ))
        )
    }
}

/// The products a region's name suggests: Alibaba names mainland regions `cn-…` and every
/// region with a trailing number (`ap-southeast-1`, `us-east-1`); Tencent names them by city
/// (`ap-guangzhou`, `na-siliconvalley`). A host of either vendor decides alone.
pub fn products_for(region: &str, target_url: &str) -> BTreeSet<Product> {
    let host = target_url.to_ascii_lowercase();
    if host.contains("tencentcloudapi.com") {
        return [Product::Cvm].into();
    }
    if host.contains("aliyuncs.com") {
        return [Product::Ecs].into();
    }
    let numbered = region
        .rsplit_once('-')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if region.starts_with("cn-") || numbered {
        [Product::Ecs].into()
    } else if region.contains('-') {
        [Product::Cvm].into()
    } else {
        [Product::Cvm, Product::Ecs].into()
    }
}

/// The product an instance id belongs to, by its prefix.
pub fn product_of_instance(id: &str) -> Option<Product> {
    if id.starts_with("ins-") {
        Some(Product::Cvm)
    } else if id.starts_with("ein-") {
        Some(Product::Ecm)
    } else if id.starts_with("i-") {
        Some(Product::Ecs)
    } else {
        None
    }
}

/// Sends the calls and keeps what was selected.
struct Reader<'a> {
    target: &'a Target,
    opts: &'a DiscoverOptions,
    tally: &'a Tally,
    nonce: u64,
}

impl Reader<'_> {
    /// Every page of `listing` for `select`, each item as answered.
    async fn all(
        &mut self,
        listing: Listing,
        select: Select<'_>,
    ) -> Result<Vec<Listed>, DiscoverError> {
        let product = match listing {
            Listing::CvmInstances | Listing::CvmKeyPairs => "cvm",
            Listing::EcsInstances | Listing::EcsKeyPairs => "ecs",
        };
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let got = self.page(listing, select, page, product).await?;
            let full = got.items.len() >= listing.page_size();
            let seen = (page + 1) * listing.page_size();
            let answered = self
                .tally
                .answered
                .fetch_add(got.items.len(), Ordering::Relaxed)
                + got.items.len();
            if answered > MAX_ANSWERED {
                return Err(DiscoverError::TooMuch {
                    product,
                    action: listing.action(),
                    limit: format!("{MAX_ANSWERED} resources"),
                    requests: Tally::get(&self.tally.requests),
                });
            }
            out.extend(got.items);
            let more = full && got.total.is_none_or(|t| (seen as u64) < t);
            if !more {
                return Ok(out);
            }
        }
        Err(DiscoverError::EndlessPages {
            product,
            action: listing.action(),
            pages: MAX_PAGES,
        })
    }

    async fn page(
        &mut self,
        listing: Listing,
        select: Select<'_>,
        page: usize,
        product: &'static str,
    ) -> Result<protocol::discover::Page, DiscoverError> {
        let (served_by, family) = listing.served_by();
        let host = self
            .target
            .host_for(served_by, family, Some(&self.opts.region))?;
        let call = listing.call(select, &self.opts.region, &host, page);
        let creds = self.opts.keys.for_family(call.family);
        let mut wait = Duration::from_secs(1);
        for attempt in 0..=THROTTLE_RETRIES {
            if !self.target.is_loopback() && Tally::get(&self.tally.requests) > 0 {
                tokio::time::sleep(REMOTE_PACE).await;
            }
            self.nonce += 1;
            let now = crate::emulator::server::now();
            let clock = Clock {
                timestamp: now,
                nonce: format!("{now:x}{:08x}{}", std::process::id(), self.nonce),
            };
            let req = protocol::encode(&call, creds, &clock).map_err(|e| DiscoverError::Usage {
                what: format!("cannot sign {product} {}: {e}", listing.action()),
                help: "report this: the read calls are fixed".into(),
            })?;
            self.tally.requests.fetch_add(1, Ordering::Relaxed);
            let resp = send_request(self.target, &req).await?;
            let bytes = self
                .tally
                .bytes
                .fetch_add(resp.body.len(), Ordering::Relaxed)
                + resp.body.len();
            if bytes > MAX_ANSWER_BYTES {
                return Err(DiscoverError::TooMuch {
                    product,
                    action: listing.action(),
                    limit: format!("{} MiB", MAX_ANSWER_BYTES >> 20),
                    requests: Tally::get(&self.tally.requests),
                });
            }
            let answer = listing.read(&resp);
            let throttled = resp.status == 429
                || matches!(&answer, Answer::Refused { code, .. } if throttling(call.family, code));
            if throttled && attempt < THROTTLE_RETRIES {
                tokio::time::sleep(super::send::retry_after(&resp).unwrap_or(wait)).await;
                wait *= 2;
                continue;
            }
            match answer {
                Answer::Page(p) => return Ok(p),
                Answer::Refused {
                    code,
                    message,
                    request_id,
                } => {
                    let help = help_for(&code, call.family);
                    return Err(DiscoverError::Refused {
                        product,
                        action: listing.action(),
                        code,
                        message,
                        request_id,
                        help,
                    });
                }
                Answer::Unreadable(why) => {
                    return Err(DiscoverError::Unreadable {
                        product,
                        action: listing.action(),
                        why: format!("HTTP {}: {why}", resp.status),
                    })
                }
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// The family's throttling code or a refinement of it, as the built-in family specs name it
/// (discovery reads no API spec of its own).
fn throttling(family: FamilyId, code: &str) -> bool {
    crate::spec::builtin()
        .families
        .values()
        .any(|(_, f)| f.family == family && f.is_throttling(code))
}

/// What to do about a refusal: credentials for an authentication code, the region for a
/// region code, else the code's documentation.
fn help_for(code: &str, family: FamilyId) -> &'static str {
    let auth = code.starts_with("AuthFailure")
        || code.starts_with("InvalidAccessKey")
        || code.starts_with("SignatureDoesNotMatch")
        || code.contains("Forbidden")
        || code.starts_with("UnauthorizedOperation");
    if auth {
        match family {
            FamilyId::AliyunRpc => "check the credentials (ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET, or --alibaba-access-key-id / --alibaba-access-key-secret) and that they may call the read APIs",
            _ => "check the credentials (TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY, or --tencent-secret-id / --tencent-secret-key) and that they may call the read APIs",
        }
    } else if code.to_ascii_lowercase().contains("region") {
        "check --region: it must be a region of this product"
    } else if throttling(family, code) {
        "the target kept throttling: try again later"
    } else {
        "see the vendor's documentation of this code"
    }
}

/// The world state a read state maps to; `None` for states the world format does not list
/// (transitional: they will have changed before a run starts; final: nothing to test).
fn state_of(product: Product, raw: &str) -> Option<InstanceState> {
    match (product, raw) {
        (Product::Cvm, "RUNNING") => Some(InstanceState::Running),
        (Product::Cvm, "STOPPED") => Some(InstanceState::Stopped),
        (Product::Ecs, "Running") => Some(InstanceState::Running),
        (Product::Ecs, "Stopped") => Some(InstanceState::Stopped),
        _ => None,
    }
}

/// The OS from CVM's `OsName` (a Windows image names itself so) or ECS's `OSType`.
fn os_of(product: Product, raw: Option<&str>) -> Option<Os> {
    let raw = raw?.trim();
    match product {
        Product::Ecs => match raw.to_ascii_lowercase().as_str() {
            "linux" => Some(Os::Linux),
            "windows" => Some(Os::Windows),
            _ => None,
        },
        _ if raw.is_empty() => None,
        _ if raw.to_ascii_lowercase().contains("windows") => Some(Os::Windows),
        _ => Some(Os::Linux),
    }
}

/// Whether an answered place is the asked region: ECS's `RegionId` is the region; CVM's zone
/// is the region and a zone suffix (`ap-guangzhou-3`).
fn in_region(product: Product, place: Option<&str>, region: &str) -> bool {
    match (product, place) {
        (Product::Ecs, Some(p)) => p == region,
        (_, Some(zone)) => zone
            .strip_prefix(region)
            .is_some_and(|rest| rest.starts_with('-') && !rest[1..].contains('-')),
        (_, None) => false,
    }
}

/// Checks the options before anything is sent.
fn check(opts: &DiscoverOptions) -> Result<(), DiscoverError> {
    let usage = |what: String, help: &str| DiscoverError::Usage {
        what,
        help: help.into(),
    };
    if opts.region.trim().is_empty() {
        return Err(usage(
            "--region is empty".into(),
            "give the region to list, e.g. --region ap-guangzhou",
        ));
    }
    if opts.tags.is_empty() && opts.instances.is_empty() {
        return Err(usage(
            "nothing selected: discovery lists only what a --tag or --instance selects".into(),
            "add --tag KEY=VALUE or --instance ID (repeatable)",
        ));
    }
    for id in &opts.instances {
        match product_of_instance(id) {
            None => {
                return Err(usage(
                    format!("--instance `{id}` is not an instance id of CVM (ins-…), ECM (ein-…) or ECS (i-…)"),
                    "give the instance's id as the console shows it",
                ))
            }
            Some(p) if !opts.products.contains(&p) => {
                return Err(usage(
                    format!(
                        "--instance `{id}` is a {} instance, and {} is not among the products to list",
                        p.as_str(),
                        p.as_str()
                    ),
                    &format!("add --product {}", p.as_str()),
                ))
            }
            Some(_) => {}
        }
    }
    if opts.products.contains(&Product::Ecm) && !opts.tags.is_empty() && opts.products.len() == 1 {
        return Err(usage(
            "--tag cannot select ECM instances: ECM's API shows no key bindings, so ECM instances are listed only by --instance".into(),
            "give the ECM instances with --instance ein-… (and their key pairs with --key-pair)",
        ));
    }
    for k in &opts.key_pairs {
        let tencent = k.starts_with("skey-");
        let ok = if tencent {
            opts.products.contains(&Product::Cvm) || opts.products.contains(&Product::Ecm)
        } else {
            opts.products.contains(&Product::Ecs)
        };
        if !ok {
            return Err(usage(
                format!(
                    "--key-pair `{k}` is {} key pair, and no such product is listed",
                    if tencent {
                        "a Tencent (skey-…)"
                    } else {
                        "an ECS (named)"
                    }
                ),
                "add --product cvm, ecm or ecs to match it",
            ));
        }
        if !tencent && k.contains('*') {
            return Err(usage(
                format!(
                    "--key-pair `{k}` contains `*`, which ECS DescribeKeyPairs reads as a pattern"
                ),
                "name one key pair exactly",
            ));
        }
    }
    Ok(())
}

/// Lists the selected resources of `opts.region` on `target` from the read APIs alone, saying
/// how far it got every [`PROGRESS_EVERY`] (`progress:` lines, through `progress.note`), and
/// stopping once `opts.max_duration` is spent or the answers come to more than any selection
/// needs ([`MAX_ANSWER_BYTES`], [`MAX_ANSWERED`]).
pub async fn discover(
    target: &Target,
    opts: &DiscoverOptions,
    progress: &dyn super::Progress,
) -> Result<Discovered, DiscoverError> {
    check(opts)?;
    let tally = Tally::default();
    let started = Instant::now();
    let ticks = async {
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            progress.note(&tally.line(started, opts.max_duration));
        }
    };
    let deadline = async {
        match opts.max_duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        found = read_all(target, opts, &tally) => found,
        never = ticks => never,
        () = deadline => Err(DiscoverError::Deadline {
            limit: opts.max_duration.unwrap_or_default(),
            requests: Tally::get(&tally.requests),
            answered: Tally::get(&tally.answered),
        }),
    }
}

/// Every product's selected resources.
async fn read_all(
    target: &Target,
    opts: &DiscoverOptions,
    tally: &Tally,
) -> Result<Discovered, DiscoverError> {
    let mut reader = Reader {
        target,
        opts,
        tally,
        nonce: 0,
    };
    let mut out = Discovered::default();
    for &product in &opts.products {
        match product {
            Product::Cvm => read_product(&mut reader, Product::Cvm, &mut out).await?,
            Product::Ecs => read_product(&mut reader, Product::Ecs, &mut out).await?,
            Product::Ecm => ecm(opts, &mut out),
        }
    }
    out.requests = Tally::get(&tally.requests);
    out.world
        .instances
        .sort_by(|a, b| (a.product, &a.id).cmp(&(b.product, &b.id)));
    out.world
        .key_pairs
        .sort_by(|a, b| (a.product, &a.id).cmp(&(b.product, &b.id)));
    Ok(out)
}

/// The ECM instances and key pairs as given: ECM's API shows no bindings (no read call says
/// which keys an ECM instance holds), so nothing is read, and the state written is RUNNING:
/// the state under which a run treats the instance most carefully (a forced case would stop
/// it, so it is planned and guarded as such; no case assumes it may be stopped freely).
fn ecm(opts: &DiscoverOptions, out: &mut Discovered) {
    let ids: Vec<&String> = opts
        .instances
        .iter()
        .filter(|i| product_of_instance(i) == Some(Product::Ecm))
        .collect();
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id.clone()) {
            continue;
        }
        out.world.instances.push(Instance {
            id: id.clone(),
            product: Product::Ecm,
            region: opts.region.clone(),
            os: Os::Linux,
            state: InstanceState::Running,
            keys: vec![],
            password_set: false,
            tags: BTreeMap::new(),
        });
    }
    for k in opts.key_pairs.iter().filter(|k| k.starts_with("skey-")) {
        if seen.insert(k.clone()) {
            out.world.key_pairs.push(KeyPair {
                id: k.clone(),
                product: Product::Ecm,
                region: opts.region.clone(),
                tags: BTreeMap::new(),
            });
        }
    }
    if !seen.is_empty() {
        out.notes.push(
            "ECM: its API shows no key bindings, so nothing was read: the ecm instances and key pairs below are listed as given (--instance, --key-pair); their state is written RUNNING (unknown: the state under which a run is most careful), their OS linux (unknown; ECM states no OS restriction) and their keys empty (unknown)".into(),
        );
    }
}

/// The instances selected so far, and those left out, of one product.
struct Picking<'a> {
    product: Product,
    region: &'a str,
    action: &'static str,
    picked: BTreeMap<String, Instance>,
    left_out: BTreeSet<String>,
}

impl Picking<'_> {
    /// Keeps an answered instance if the selection asked for it (`selected`), it is of the
    /// product and in the region, and the world format can hold its state and OS; says why not
    /// otherwise.
    fn keep(&mut self, listed: Listed, selected: bool, out: &mut Discovered) {
        let (product, region) = (self.product, self.region);
        let prefix = crate::world::id_prefix(product);
        if !selected {
            out.dropped.push(format!(
                "{} instance `{}`: answered by {} but not selected",
                product.as_str(),
                listed.id,
                self.action
            ));
            return;
        }
        let own_id = listed.id.starts_with(&format!("{prefix}-"));
        if !own_id || !in_region(product, listed.place.as_deref(), region) {
            out.dropped.push(format!(
                "{} instance `{}`: answered for region {region} but {}",
                product.as_str(),
                listed.id,
                match &listed.place {
                    _ if !own_id => format!("not a {} id", product.as_str()),
                    Some(p) => format!("placed in `{p}`"),
                    None => "with no placement".to_string(),
                }
            ));
            return;
        }
        if self.picked.contains_key(&listed.id) || self.left_out.contains(&listed.id) {
            return;
        }
        let state = listed.state.as_deref().and_then(|s| state_of(product, s));
        let os = os_of(product, listed.os.as_deref());
        let (Some(state), Some(os)) = (state, os) else {
            out.left_out.push(format!(
                "{} instance `{}`: {}",
                product.as_str(),
                listed.id,
                match (state, listed.state.as_deref()) {
                    (None, Some(s)) => format!("state {s} (only STOPPED and RUNNING are listed: a transitional state will have changed when a run starts; discover again once it settles)"),
                    (None, None) => "no state answered".to_string(),
                    _ => format!("OS not shown ({:?})", listed.os.as_deref().unwrap_or("")),
                }
            ));
            self.left_out.insert(listed.id);
            return;
        };
        self.picked.insert(
            listed.id.clone(),
            Instance {
                id: listed.id,
                product,
                region: region.to_string(),
                os,
                state,
                keys: listed.keys,
                password_set: false,
                tags: listed.tags.into_iter().collect(),
            },
        );
    }
}

/// One product's selected instances and key pairs.
async fn read_product(
    reader: &mut Reader<'_>,
    product: Product,
    out: &mut Discovered,
) -> Result<(), DiscoverError> {
    let opts = reader.opts;
    let (instances, key_pairs) = match product {
        Product::Cvm => (Listing::CvmInstances, Listing::CvmKeyPairs),
        _ => (Listing::EcsInstances, Listing::EcsKeyPairs),
    };
    let region = opts.region.as_str();
    let mut picking = Picking {
        product,
        region,
        action: instances.action(),
        picked: BTreeMap::new(),
        left_out: BTreeSet::new(),
    };
    for (key, value) in &opts.tags {
        let select = Select::Tag { key, value };
        for listed in reader.all(instances, select).await? {
            let selected = listed.carries(key, value);
            picking.keep(listed, selected, out);
        }
    }
    let mut ids: Vec<String> = Vec::new();
    for id in opts
        .instances
        .iter()
        .filter(|i| product_of_instance(i) == Some(product))
    {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    for chunk in ids.chunks(instances.ids_per_call()) {
        for listed in reader.all(instances, Select::Ids(chunk)).await? {
            let selected = chunk.contains(&listed.id);
            picking.keep(listed, selected, out);
        }
        for id in chunk {
            if !picking.picked.contains_key(id) && !picking.left_out.contains(id) {
                out.notes.push(format!(
                    "{} instance `{id}` (--instance): not found in {region}, not listed",
                    product.as_str()
                ));
            }
        }
    }
    // Key pairs: those bound to the selected instances, those carrying a selected tag, and
    // those given; never the whole account's.
    let mut wanted: Vec<String> = Vec::new();
    let mut picked = picking.picked;
    for i in picked.values() {
        for k in &i.keys {
            if !wanted.contains(k) {
                wanted.push(k.clone());
            }
        }
    }
    let given: Vec<String> = opts
        .key_pairs
        .iter()
        .filter(|k| k.starts_with("skey-") == (product == Product::Cvm))
        .cloned()
        .collect();
    for k in &given {
        if !wanted.contains(k) {
            wanted.push(k.clone());
        }
    }
    let mut keys: BTreeMap<String, KeyPair> = BTreeMap::new();
    let mut associated: Vec<(String, String)> = Vec::new();
    let mut take_key = |listed: Listed, selected: bool, out: &mut Discovered| {
        if !selected {
            out.dropped.push(format!(
                "{} key pair `{}`: answered by {} but not selected",
                product.as_str(),
                listed.id,
                key_pairs.action()
            ));
            return;
        }
        for i in &listed.associated {
            associated.push((listed.id.clone(), i.clone()));
        }
        keys.entry(listed.id.clone()).or_insert(KeyPair {
            id: listed.id,
            product,
            region: region.to_string(),
            tags: listed.tags.into_iter().collect(),
        });
    };
    for (key, value) in &opts.tags {
        let select = Select::Tag { key, value };
        for listed in reader.all(key_pairs, select).await? {
            let selected = listed.carries(key, value);
            take_key(listed, selected, out);
        }
    }
    for chunk in wanted.chunks(key_pairs.ids_per_call()) {
        for listed in reader.all(key_pairs, Select::Ids(chunk)).await? {
            let selected = chunk.contains(&listed.id);
            take_key(listed, selected, out);
        }
    }
    // CVM's DescribeKeyPairs shows bindings from the key's side too: a selected instance a key
    // names as bound holds it even where its LoginSettings.KeyIds came back null.
    for (key, id) in associated {
        if let Some(i) = picked.get_mut(&id) {
            if !i.keys.contains(&key) {
                out.notes.push(format!(
                    "{} instance `{id}`: key `{key}` is bound by DescribeKeyPairs (AssociatedInstanceIds) though DescribeInstances did not show it",
                    product.as_str()
                ));
                i.keys.push(key);
            }
        }
    }
    for i in picked.values() {
        for k in &i.keys {
            if !keys.contains_key(k) {
                out.notes.push(format!(
                    "{} key pair `{k}`: bound to `{}` but not answered by DescribeKeyPairs; listed as bound",
                    product.as_str(),
                    i.id
                ));
                keys.insert(
                    k.clone(),
                    KeyPair {
                        id: k.clone(),
                        product,
                        region: region.to_string(),
                        tags: BTreeMap::new(),
                    },
                );
            }
        }
    }
    for k in &given {
        if !keys.contains_key(k) {
            out.notes.push(format!(
                "{} key pair `{k}` (--key-pair): not found in {region}, not listed",
                product.as_str()
            ));
        }
    }
    out.world.instances.extend(picked.into_values());
    out.world.key_pairs.extend(keys.into_values());
    Ok(())
}

impl Discovered {
    /// Adds what another region's (or product's) discovery found: one world file for all.
    /// A resource found twice (the same product, region and id) is listed once.
    pub fn absorb(&mut self, other: Discovered) {
        for i in other.world.instances {
            let twice = self
                .world
                .instances
                .iter()
                .any(|j| j.product == i.product && j.region == i.region && j.id == i.id);
            if !twice {
                self.world.instances.push(i);
            }
        }
        for k in other.world.key_pairs {
            let twice = self
                .world
                .key_pairs
                .iter()
                .any(|j| j.product == k.product && j.region == k.region && j.id == k.id);
            if !twice {
                self.world.key_pairs.push(k);
            }
        }
        self.dropped.extend(other.dropped);
        self.left_out.extend(other.left_out);
        self.notes.extend(other.notes);
        self.requests += other.requests;
    }

    /// The world file: header comment lines (what was selected, what the read APIs could not
    /// show, what was dropped or left out), then the world as YAML.
    pub fn to_yaml(&self, target: &str, opts: &DiscoverOptions) -> String {
        let mut head = vec![
            "World file written by `apiconform world discover` from the read APIs alone."
                .to_string(),
            format!("target: {target}  region: {}", opts.region),
        ];
        let mut selected: Vec<String> = opts
            .tags
            .iter()
            .map(|(k, v)| format!("--tag {k}={v}"))
            .collect();
        selected.extend(opts.instances.iter().map(|i| format!("--instance {i}")));
        selected.extend(opts.key_pairs.iter().map(|k| format!("--key-pair {k}")));
        head.push(format!("selected by: {}", selected.join(", ")));
        let products: Vec<&str> = opts.products.iter().map(|p| p.as_str()).collect();
        head.push(format!(
            "products: {}; {} instance(s), {} key pair(s)",
            products.join(", "),
            self.world.instances.len(),
            self.world.key_pairs.len()
        ));
        head.push(
            "password_set: no read API shows whether a login password is set: false throughout"
                .into(),
        );
        head.extend(self.notes.iter().cloned());
        head.extend(self.left_out.iter().map(|l| format!("left out: {l}")));
        head.extend(self.dropped.iter().map(|d| format!("dropped: {d}")));
        let mut text = String::new();
        for line in head {
            // Ids and notes may quote what the target answered: a newline in them must not end
            // the comment (and add lines to the world), nor a control reach a terminal.
            for (n, part) in wrap(&escape(&line), 96).into_iter().enumerate() {
                text.push_str(if n == 0 { "# " } else { "#   " });
                text.push_str(&part);
                text.push('\n');
            }
        }
        text.push_str(&serde_yaml_ng::to_string(&self.world).unwrap_or_default());
        text
    }
}

/// Splits a line at spaces into parts of at most about `width` characters.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    for word in line.split(' ') {
        let last = out.last_mut().expect("never empty");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            out.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_suggests_its_vendor() {
        let cvm: BTreeSet<Product> = [Product::Cvm].into();
        let ecs: BTreeSet<Product> = [Product::Ecs].into();
        assert_eq!(products_for("ap-guangzhou", "http://127.0.0.1:1"), cvm);
        assert_eq!(products_for("na-siliconvalley", "http://x"), cvm);
        assert_eq!(products_for("cn-hangzhou", "http://x"), ecs);
        assert_eq!(products_for("ap-southeast-1", "http://x"), ecs);
        assert_eq!(
            products_for("ap-southeast-1", "https://cvm.tencentcloudapi.com"),
            cvm
        );
        assert_eq!(products_for("local", "http://x").len(), 2);
    }

    #[test]
    fn zones_belong_to_their_region_only() {
        assert!(in_region(
            Product::Cvm,
            Some("ap-guangzhou-3"),
            "ap-guangzhou"
        ));
        assert!(!in_region(
            Product::Cvm,
            Some("ap-guangzhou-open-1"),
            "ap-guangzhou"
        ));
        assert!(!in_region(
            Product::Cvm,
            Some("ap-guangzhou"),
            "ap-guangzhou"
        ));
        assert!(!in_region(Product::Cvm, None, "ap-guangzhou"));
        assert!(in_region(Product::Ecs, Some("cn-hangzhou"), "cn-hangzhou"));
        assert!(!in_region(Product::Ecs, Some("cn-beijing"), "cn-hangzhou"));
    }

    #[test]
    fn only_settled_states_and_known_oses_are_listed() {
        assert_eq!(
            state_of(Product::Cvm, "STOPPED"),
            Some(InstanceState::Stopped)
        );
        assert_eq!(
            state_of(Product::Ecs, "Running"),
            Some(InstanceState::Running)
        );
        for s in [
            "PENDING",
            "STOPPING",
            "LAUNCH_FAILED",
            "SHUTDOWN",
            "TERMINATING",
        ] {
            assert_eq!(state_of(Product::Cvm, s), None, "{s}");
        }
        assert_eq!(
            os_of(Product::Cvm, Some("Windows Server 2019")),
            Some(Os::Windows)
        );
        assert_eq!(
            os_of(Product::Cvm, Some("TencentOS Server 3.1")),
            Some(Os::Linux)
        );
        assert_eq!(os_of(Product::Cvm, Some("")), None);
        assert_eq!(os_of(Product::Ecs, Some("freebsd")), None);
    }
}
