//! The plan of a run: which APIs run, in which lanes, and which cases each sends — decided
//! before anything is sent and the same whatever the target answers. `run` executes it;
//! `--dry-run` prints it ([`dry_run`]), so the two cannot drift apart.
//!
//! APIs acting on different products share no resource, so each product's APIs form one lane
//! and the lanes run at once. Within a lane the APIs run in spec order, each drawing its cases
//! from the world the APIs before it are predicted to leave ([`Model::predict`]): CVM
//! Disassociate unbinds what Associate bound. Against a real cloud this also keeps each API
//! within its own rate limit while the others proceed.

use serde::Serialize;

use super::ctx::Ctx;
use super::model::Model;
use super::send::sign;
use super::shrink::Tree;
use super::{RunError, RunOptions, Target};
use crate::case::{AuthFault, Case};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};

use crate::generate::{self, GenOptions};
use crate::protocol::HttpRequest;
use crate::spec::{FamilyId, LoadedApi, Product, SpecSet};
use crate::world::World;

/// Selects the APIs whose names match any pattern (all when none given).
pub fn select<'a>(set: &'a SpecSet, patterns: &[String]) -> Vec<&'a LoadedApi> {
    set.apis
        .iter()
        .filter(|a| patterns.is_empty() || patterns.iter().any(|p| matches(p, &a.name)))
        .collect()
}

/// The families a run of the selected APIs signs requests in: each API's own and those of the
/// read calls that observe its effect (the legacy API 2.0's effect is read through API 3.0).
pub fn families_sent(set: &SpecSet, patterns: &[String]) -> std::collections::BTreeSet<FamilyId> {
    select(set, patterns)
        .into_iter()
        .flat_map(|a| {
            std::iter::once(a.spec.api.family).chain(
                a.spec
                    .effect
                    .observe
                    .iter()
                    .filter_map(|&how| crate::protocol::describe::served_by(how).map(|(_, f)| f)),
            )
        })
        .collect()
}

fn matches(pattern: &str, name: &str) -> bool {
    if let Some((pre, post)) = pattern.split_once('*') {
        return name.starts_with(pre) && name[pre.len()..].contains(post.trim_end_matches('*'));
    }
    name.contains(pattern) || name.eq_ignore_ascii_case(pattern)
}

/// One API of a lane: its place among the selected APIs (which seeds its cases) and its index
/// in the spec set.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub(super) position: usize,
    pub(super) api: usize,
    /// The lane's place among the lanes: under `--shard`, the shard that sends the lane's
    /// cases naming a listed instance (see [`Cases`]).
    pub(super) lane: usize,
}

/// The lanes of a run: the selected APIs grouped by product, each lane in spec order.
pub(super) fn lanes(set: &SpecSet, patterns: &[String]) -> Result<Vec<Vec<Step>>, RunError> {
    let apis: Vec<usize> = select(set, patterns)
        .into_iter()
        .filter_map(|a| set.apis.iter().position(|b| std::ptr::eq(a, b)))
        .collect();
    if apis.is_empty() {
        return Err(RunError::NoSpecs {
            patterns: patterns.to_vec(),
        });
    }
    let mut lanes: Vec<Vec<Step>> = Vec::new();
    for (position, &api) in apis.iter().enumerate() {
        let product = set.apis[api].spec.api.product;
        match lanes
            .iter_mut()
            .find(|l| set.apis[l[0].api].spec.api.product == product)
        {
            Some(lane) => {
                let lane_index = lane[0].lane;
                lane.push(Step {
                    position,
                    api,
                    lane: lane_index,
                })
            }
            None => {
                let lane = lanes.len();
                lanes.push(vec![Step {
                    position,
                    api,
                    lane,
                }])
            }
        }
    }
    Ok(lanes)
}

/// The cases of one API: value trees drawn in order from one runner seeded by the run's seed
/// and the API's position (the same seed gives the same cases), the first `opts.cases` that the
/// [`Share`] keeps, kept by the shard. Each case drawn moves the planned world forward, and every
/// [`CHUNK`] cases the generator is rebuilt from it: a case drawn late in a run names the keys
/// the earlier cases are predicted to have left bound, not those bound at the start (an unbind
/// of a key already unbound can never fail). The APIs after it in the lane draw from the world
/// it leaves.
///
/// Under `--shard K/N` the shards are a partition of the one unsharded plan, and each shard
/// judges its cases against a target that saw only its own: a case whose verdict depends on
/// what the earlier cases did (every case naming an instance the world lists: its bindings and
/// state move) would be judged against another world than in the unsharded run. So all of a
/// lane's cases naming a listed instance go to one shard (lane L to shard L mod N), in plan
/// order as ever, and only the cases naming no listed instance (absent ids, whose verdict no
/// earlier case can change) are dealt round-robin by position. Merged, the shards' verdicts are
/// then the unsharded run's.
pub(super) struct Cases<'a> {
    set: &'a SpecSet,
    api: &'a LoadedApi,
    gen: GenOptions,
    runner: proptest::test_runner::TestRunner,
    strategy: BoxedStrategy<Case>,
    planned: Model,
    /// Drawn since the generator was last rebuilt.
    in_chunk: usize,
    share: Share,
    /// Positions kept so far (before the shard), and how many to keep.
    kept: usize,
    cases: usize,
    shard: Option<(usize, usize)>,
    /// The lane's place among the lanes (which shard sends its stateful cases).
    lane: usize,
    strict: bool,
    /// Judgement rules a kept case breaks (see [`Model::leaves_open`]).
    judged: std::collections::BTreeSet<String>,
    /// The documents' examples, sent first (see [`generate::example_cases`]).
    examples: std::collections::VecDeque<Case>,
    /// After the examples, one case per breakable rule and per authentication fault the family
    /// has a rule for, each drawn from the world planned at that point (see [`Isolate`]).
    isolate: std::collections::VecDeque<Isolate>,
}

/// A case class every plan holds once before it draws at random: a rule broken alone, or an
/// authentication fault on an otherwise valid request. Random draws alone leave a rule whose
/// arm is one of many unbroken in a short run now and then, and a rule no case breaks is a
/// rule nothing judged.
#[derive(Debug, Clone)]
enum Isolate {
    Rule(String),
    Auth(AuthFault),
}

/// The isolated classes of one API, in spec order, then the faults in [`AuthFault::ALL`]'s.
fn isolated_classes(
    set: &SpecSet,
    api: &LoadedApi,
    world: &World,
    gen: &GenOptions,
) -> Vec<Isolate> {
    let family = set.family(api.spec.api.family);
    generate::breakable_rules(set, api, world, gen)
        .into_iter()
        .map(Isolate::Rule)
        .chain(
            AuthFault::ALL
                .into_iter()
                .filter(|f| crate::case::analysis::auth_rule(family, *f).is_some())
                .map(Isolate::Auth),
        )
        .collect()
}

/// Cases drawn from one generator before it is rebuilt from the planned world.
const CHUNK: usize = 128;

impl<'a> Cases<'a> {
    pub(super) fn new(set: &'a SpecSet, step: Step, world: &World, opts: &RunOptions) -> Cases<'a> {
        let api = &set.apis[step.api];
        let gen = GenOptions {
            violations: opts.violations,
            ..GenOptions::default()
        };
        let seed = opts.seed ^ (step.position as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Cases {
            set,
            api,
            strategy: generate::case_strategy(set, api, world, &gen),
            runner: generate::seeded_runner(seed),
            planned: Model::new(world.clone()),
            in_chunk: 0,
            share: Share::new(opts.unspecified_share, opts.cases),
            kept: 0,
            cases: opts.cases,
            shard: opts.shard,
            lane: step.lane,
            strict: opts.strict,
            judged: Default::default(),
            // An example the world cannot make valid is left out (the dry run says why).
            examples: generate::example_cases(set, api, world)
                .into_iter()
                .filter_map(Result::ok)
                .collect(),
            isolate: isolated_classes(set, api, world, &gen).into(),
            gen,
        }
    }

    /// The world the later APIs of the lane draw from: the one this API started from, moved
    /// forward by every case drawn.
    pub(super) fn planned_world(self) -> World {
        self.planned.world
    }

    /// Whether the case names an instance of the world (of the API's product): its verdict may
    /// depend on what the cases before it did.
    fn names_listed_instance(&self, case: &Case) -> bool {
        let product = self.api.spec.instance_product();
        let ids = case.instance_ids(self.api);
        self.planned
            .world
            .instances
            .iter()
            .any(|i| i.product == product && ids.binary_search(&i.id).is_ok())
    }

    /// The next isolated class's case, drawn from the world planned now; `None` once every
    /// class is drawn (a class the world cannot give a case is passed over).
    fn draw_isolated(&mut self) -> Option<(Tree, Case)> {
        while let Some(class) = self.isolate.pop_front() {
            let world = &self.planned.world;
            let strategy = match &class {
                Isolate::Rule(rule) => {
                    generate::rule_strategy(self.set, self.api, world, &self.gen, rule)
                }
                Isolate::Auth(fault) => {
                    generate::auth_strategy(self.set, self.api, world, &self.gen, *fault)
                }
            };
            let Some(strategy) = strategy else { continue };
            let tree = strategy
                .new_tree(&mut self.runner)
                .expect("case strategies never reject");
            let case = tree.current();
            return Some((tree, case));
        }
        None
    }

    fn draw(&mut self) -> (Tree, Case) {
        if self.in_chunk == CHUNK {
            self.strategy =
                generate::case_strategy(self.set, self.api, &self.planned.world, &self.gen);
            self.in_chunk = 0;
        }
        self.in_chunk += 1;
        let tree = self
            .strategy
            .new_tree(&mut self.runner)
            .expect("case strategies never reject");
        let case = tree.current();
        (tree, case)
    }
}

impl Iterator for Cases<'_> {
    /// The case's position in the stream, its value tree (kept to shrink a failure), and the
    /// case itself (drawn from the tree once).
    type Item = (usize, Tree, Case);

    fn next(&mut self) -> Option<(usize, Tree, Case)> {
        while self.kept < self.cases {
            let isolated = self.examples.is_empty() && !self.isolate.is_empty();
            let drawn = match isolated {
                true => self.draw_isolated(),
                false => None,
            };
            let isolated = drawn.is_some();
            let (tree, case) = match drawn {
                Some(drawn) => drawn,
                None => match self.examples.pop_front() {
                    // An example is sent as printed: nothing to shrink.
                    Some(case) => (
                        proptest::strategy::Just(case.clone())
                            .new_tree(&mut self.runner)
                            .map(|t| Box::new(t) as Tree)
                            .expect("Just never rejects"),
                        case,
                    ),
                    None => self.draw(),
                },
            };
            // Judged in the world the plan holds now, not the one the generator was built
            // from: an unbind drawn late names keys that earlier cases may have unbound.
            let open = self
                .planned
                .leaves_open(self.set, self.api, &case, self.strict);
            // The first case of each judgement rule is kept whatever the budget: the rule is
            // exercised (and `--strict` would judge it), as in a run without the budget.
            let novel = open
                .as_ref()
                .is_some_and(|rules| rules.iter().any(|r| !self.judged.contains(r)));
            // An isolated class is kept like a novel one: the plan holds each class once.
            let novel = novel || (isolated && open.is_some());
            if !novel && !self.share.keep(open.is_some()) {
                continue;
            }
            if novel {
                self.share.count_open();
            }
            self.judged.extend(open.into_iter().flatten());
            let i = self.kept;
            self.kept += 1;
            // Every case of the plan moves the planned world, whichever shard sends it: the
            // shards of a run are then a partition of the one unsharded plan.
            let stateful = self.names_listed_instance(&case);
            self.planned.predict(self.set, self.api, &case);
            if let Some((k, n)) = self.shard {
                let owner = match stateful {
                    true => self.lane % n,
                    false => i % n,
                };
                if owner != k {
                    continue;
                }
            }
            return Some((i, tree, case));
        }
        None
    }
}

/// The budget of cases that hit a situation the documents leave open: such a case can never
/// fail, so at most `share` of an API's cases are spent on them, spread through the stream (at
/// the default 10%, one in every ten cases kept at most). The rest are drawn again.
/// Deterministic, so the plan stays the same for the same seed.
struct Share {
    share: f64,
    kept: usize,
    open: usize,
    /// Drawn and passed over in a row: a generator that only makes open cases is not starved.
    skipped: usize,
    most_skipped: usize,
}

impl Share {
    fn new(share: f64, cases: usize) -> Share {
        Share {
            share: share.clamp(0.0, 1.0),
            kept: 0,
            open: 0,
            skipped: 0,
            most_skipped: 100 + 10 * cases,
        }
    }

    /// Counts an open case kept outside the budget's choice (the first of its rule).
    fn count_open(&mut self) {
        self.skipped = 0;
        self.kept += 1;
        self.open += 1;
    }

    fn keep(&mut self, open: bool) -> bool {
        let over = (self.open + 1) as f64 > self.share * (self.kept + 1) as f64;
        if open && over && self.skipped < self.most_skipped {
            self.skipped += 1;
            return false;
        }
        self.skipped = 0;
        self.kept += 1;
        self.open += usize::from(open);
        true
    }
}

/// One request of the plan, signed as the run would sign it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// API name.
    pub api: String,
    /// The case's position in the API's stream.
    pub index: usize,
    /// The case.
    pub case: Case,
    /// The signed request (secrets in it: redact before showing it).
    pub request: HttpRequest,
    /// How many times the run sends it: twice for a replayed nonce; for a rate-limit probe,
    /// the burst's size (a second burst follows when the first meets no throttling), 0 when the
    /// burst is not sent.
    pub sends: usize,
    /// For the rate-limit probe after an API's cases (`index` is then the API's case count):
    /// the limit, and why the burst is not sent if it is not.
    pub probe: Option<super::PlannedProbe>,
}

/// What a run would change, per API, before anything is sent (`run --plan`).
#[derive(Debug, Clone, Serialize)]
pub struct ApiPlan {
    /// API name.
    pub api: String,
    /// Listed instances a case that may succeed names: the ones whose bindings may change.
    pub instances: Vec<String>,
    /// Listed key pairs such a case names.
    pub key_pairs: Vec<String>,
    /// Instances a forced case (`ForceStop=true` on a RUNNING instance) would stop and start.
    pub force_stopped: Vec<String>,
    /// Whether the specs hold the calls that undo every binding change this API makes, and
    /// which; else why not.
    pub reversible: Result<String, String>,
    /// Requests the cases send (a replayed nonce twice), and the rate-limit bursts'.
    pub requests: usize,
    /// Of them, the bursts' requests (0 where the bursts are not sent).
    pub burst_requests: usize,
    /// Read calls sent with the cases, paced with them (see [`super::estimate`]): confirming
    /// that unlisted ids are absent, journaling an instance before its first change, observing
    /// an effect.
    pub reads: usize,
    /// Requests the restore may send at the end for the instances this product's cases
    /// journal (on the product's last API; 0 on the others).
    pub restore_requests: usize,
    /// Seconds the paced requests and reads (and the bursts' back-offs) take at the documented
    /// rate (the pace against a remote target).
    pub seconds_at_documented_rate: f64,
    /// The pace this run keeps, requests per second (`--rate`, else the documented rate
    /// against a remote target); `None`: not paced (a loopback target).
    pub run_rate: Option<f64>,
    /// Seconds the same take at `run_rate`; `None` when not paced.
    pub seconds_at_run_rate: Option<f64>,
    /// What a person should know before the run: no instance in the world for a valid case.
    pub warnings: Vec<String>,
    /// The rate used, requests per second: the documented one, else the pace the harness
    /// keeps against remote targets for an API that documents none.
    pub documented_rate: f64,
    /// Whether a document states the rate.
    pub rate_documented: bool,
}

/// The plan of a run, summarised per API: what may change, whether the specs can undo it, how
/// many requests and how long at the documented rates. Sends nothing.
pub fn plan_summary(
    set: &SpecSet,
    world: &World,
    target: &Target,
    opts: &RunOptions,
) -> Result<Vec<ApiPlan>, RunError> {
    use std::collections::BTreeSet;
    let mut plans: Vec<ApiPlan> = Vec::new();
    /// What an API's cases that may succeed name: instances, key pairs, forced instances.
    #[derive(Default)]
    struct Touched {
        instances: BTreeSet<String>,
        keys: BTreeSet<String>,
        forced: BTreeSet<String>,
        bursts: usize,
    }
    let mut seen: std::collections::BTreeMap<String, Touched> = Default::default();
    let (guarded, _) = guard(set, world, target, opts)?;
    let journal = opts.journal.is_some() || !target.is_loopback();
    let mut reads =
        super::estimate::Reads::new(&guarded, target.is_loopback(), journal, opts.admin);
    dry_run(set, world, target, opts, |p| {
        let Some(api) = set.apis.iter().find(|a| a.name == p.api) else {
            return true;
        };
        if !plans.iter().any(|a| a.api == p.api) {
            let rate = super::pace::documented_rate(api);
            plans.push(ApiPlan {
                api: p.api.clone(),
                instances: vec![],
                key_pairs: vec![],
                force_stopped: vec![],
                reversible: reversible(set, api),
                requests: 0,
                burst_requests: 0,
                reads: 0,
                restore_requests: 0,
                seconds_at_documented_rate: 0.0,
                run_rate: super::pace::rate_for(api, target.is_loopback(), opts.rate),
                seconds_at_run_rate: None,
                documented_rate: rate,
                rate_documented: !api.spec.api.rate_limits.is_empty(),
                warnings: super::coverage::no_instance(
                    api.spec.instance_product(),
                    count(world, api),
                    count(&guarded, api),
                )
                .map(|w| vec![format!("{}: a run exercises none of its rules that only a valid case can (success shape, effect)", w.detail)])
                .unwrap_or_default(),
            });
            seen.insert(p.api.clone(), Touched::default());
        }
        let plan = plans.iter_mut().find(|a| a.api == p.api).expect("pushed");
        let touched = seen.get_mut(&p.api).expect("inserted");
        plan.requests += p.sends;
        if p.probe.is_some() {
            plan.burst_requests += p.sends;
            touched.bursts += usize::from(p.sends > 0);
            return true;
        }
        plan.reads += reads.case(api, &p.case);
        if p.case.must_fail_whole(api) {
            return true;
        }
        let product = api.spec.instance_product();
        let listed = |id: &String| {
            world
                .instances
                .iter()
                .find(|i| i.product == product && &i.id == id)
        };
        let force = api.spec.force_flag().and_then(|f| p.case.params.get(f))
            == Some(&serde_json::Value::Bool(true));
        for id in p.case.instance_ids(api) {
            if let Some(i) = listed(&id) {
                touched.instances.insert(id.clone());
                if force && i.state == crate::spec::InstanceState::Running {
                    touched.forced.insert(id);
                }
            }
        }
        for k in crate::case::analysis::param_items(&api.spec, &p.case, &api.spec.effect.keys) {
            if world.key_pairs.iter().any(|kp| kp.id == k) {
                touched.keys.insert(k);
            }
        }
        true
    })?;
    // The restore's requests go with the last API of each product.
    for product in [Product::Cvm, Product::Ecm, Product::Ecs] {
        let last = plans.iter_mut().rev().find(|p| {
            set.find(&p.api)
                .is_some_and(|a| a.spec.instance_product() == product)
        });
        if let Some(last) = last {
            last.restore_requests = reads.restore_requests(product);
        }
    }
    for plan in plans.iter_mut() {
        let bursts = seen.get(&plan.api).map_or(0, |t| t.bursts);
        if let Some(t) = seen.remove(&plan.api) {
            plan.instances = t.instances.into_iter().collect();
            plan.key_pairs = t.keys.into_iter().collect();
            plan.force_stopped = t.forced.into_iter().collect();
        }
        let paced = plan.requests - plan.burst_requests + plan.reads;
        plan.seconds_at_documented_rate =
            super::estimate::seconds(paced, bursts, plan.documented_rate);
        plan.seconds_at_run_rate = plan
            .run_rate
            .map(|r| super::estimate::seconds(paced, bursts, r));
    }
    Ok(plans)
}

/// Instances of `api`'s product in `world`.
fn count(world: &World, api: &LoadedApi) -> usize {
    let product = api.spec.instance_product();
    world
        .instances
        .iter()
        .filter(|i| i.product == product)
        .count()
}

/// How long the run of these plans takes at its pace: each product's lane runs its APIs one
/// after the other while the lanes run at once, then the restore puts back what changed.
/// `None` when nothing is paced (a loopback target without `--rate`): as fast as the target
/// answers.
pub fn estimated_seconds(set: &SpecSet, plans: &[ApiPlan]) -> Option<f64> {
    let mut lanes: std::collections::BTreeMap<Product, f64> = Default::default();
    let mut restore = 0.0;
    let mut paced = false;
    for p in plans {
        let (Some(secs), Some(rate)) = (p.seconds_at_run_rate, p.run_rate) else {
            continue;
        };
        paced = true;
        let product = set.find(&p.api).map(|a| a.spec.api.product);
        *lanes.entry(product.unwrap_or(Product::Cvm)).or_default() += secs;
        restore += p.restore_requests as f64 / rate;
    }
    paced.then(|| lanes.values().copied().fold(0.0, f64::max) + restore)
}

/// Whether the specs hold the calls that put back what this API changes. A binding replaced
/// (CVM Associate) is put back by binding the old keys again, or, where there were none, by
/// unbinding the new ones: both calls of the product must be specced. An unbind is put back by
/// binding the key again: a bind-and-replace call of the product must be specced (ECM has none
/// in the specs: its detach cannot be undone by the harness). An add is put back by unbinding
/// what it added.
pub(super) fn reversible(set: &SpecSet, api: &LoadedApi) -> Result<String, String> {
    use crate::spec::EffectKind;
    let product = api.spec.instance_product();
    let name = format!("{product:?}").to_lowercase();
    let of = |kind: EffectKind| {
        set.apis
            .iter()
            .find(|a| a.spec.instance_product() == product && a.spec.effect.kind == kind)
            .map(|a| a.name.clone())
    };
    match api.spec.effect.kind {
        // Bound again with the old keys, or the new ones removed where there were none.
        EffectKind::BindReplace => match of(EffectKind::Unbind) {
            Some(unbind) => Ok(format!("{} (the old keys) and {unbind}", api.name)),
            None => Err(format!("no unbind call for {name} is specced")),
        },
        // The added keys removed again.
        EffectKind::Add => match of(EffectKind::Unbind) {
            Some(unbind) => Ok(unbind),
            None => Err(format!(
                "no unbind call for {name} is specced: what {} adds stays bound",
                api.spec.api.action
            )),
        },
        EffectKind::Unbind => match of(EffectKind::BindReplace) {
            Some(bind) => Ok(bind),
            None => Err(format!(
                "no bind call for {name} instances is specced: what {} unbinds stays unbound",
                api.spec.api.action
            )),
        },
    }
}

/// The plan of a run, request by request, in spec order, without sending anything: what `run`
/// with the same options sends to `target` (timestamps, nonces and signatures aside), except
/// the read calls that observe effects and the re-runs that shrink a failure. After each API's
/// cases come its rate-limit probes, sent or not.
pub fn dry_run(
    set: &SpecSet,
    world: &World,
    target: &Target,
    opts: &RunOptions,
    mut each: impl FnMut(Planned) -> bool,
) -> Result<(), RunError> {
    // The plan of the run that would go: with the same listed instances kept off.
    let (world, _) = guard(set, world, target, opts)?;
    let world = &world;
    let ctx = Ctx::new(set, World::default(), target, opts);
    ctx.counting_nonces_from_zero();
    let mut steps: Vec<(Step, bool)> = Vec::new();
    for lane in lanes(set, &opts.patterns)? {
        let last = lane.len() - 1;
        steps.extend(lane.into_iter().enumerate().map(|(n, s)| (s, n < last)));
    }
    steps.sort_by_key(|(s, _)| s.position);
    // Each product's world as its lane's earlier APIs leave it.
    let mut worlds: Vec<(crate::spec::Product, World)> = Vec::new();
    for (step, more) in steps {
        let api = &set.apis[step.api];
        let product = api.spec.api.product;
        let start = worlds
            .iter()
            .find(|(p, _)| *p == product)
            .map_or_else(|| world.clone(), |(_, w)| w.clone());
        let mut cases = Cases::new(set, step, &start, opts);
        let mut count = 0;
        for (index, _, case) in cases.by_ref() {
            count = index + 1;
            let planned = Planned {
                api: api.name.clone(),
                index,
                request: sign(&ctx, api, &case)?,
                sends: if case.auth == AuthFault::ReusedNonce {
                    2
                } else {
                    1
                },
                case,
                probe: None,
            };
            if !each(planned) {
                return Ok(());
            }
        }
        for probe in super::probe::plan(&ctx, api, &start, step.position) {
            let planned = Planned {
                api: api.name.clone(),
                index: count,
                request: sign(&ctx, api, &probe.case)?,
                sends: match probe.not_sent {
                    None => probe.burst,
                    Some(_) => 0,
                },
                case: probe.case.clone(),
                probe: Some(probe),
            };
            if !each(planned) {
                return Ok(());
            }
        }
        if more {
            worlds.retain(|(p, _)| *p != product);
            worlds.push((product, cases.planned_world()));
        }
    }
    Ok(())
}

/// What a run may do to a target that is not on this machine, beyond the world file's list:
/// an API whose changes the specs cannot undo (ECM `DisassociateInstancesKeyPairs`, ECS
/// `DetachKeyPair`: no bind call for their instances is specced, see [`reversible`]) keeps its
/// cases off the listed instances unless `--allow-irreversible` — its invalid cases still run,
/// naming ids that do not exist. (Cases that could stop a RUNNING instance are held back one by
/// one, in the exchange, unless `--allow-force-stop`.)
///
/// The world the run plans with, and a sentence for each product whose listed instances were
/// taken out of it.
pub(super) fn guard(
    set: &SpecSet,
    world: &World,
    target: &Target,
    opts: &RunOptions,
) -> Result<(World, Vec<String>), RunError> {
    if target.is_loopback() || opts.allow_irreversible {
        return Ok((world.clone(), vec![]));
    }
    let mut world = world.clone();
    let mut notes = Vec::new();
    for step in lanes(set, &opts.patterns)?.into_iter().flatten() {
        let api = &set.apis[step.api];
        let Err(why) = reversible(set, api) else {
            continue;
        };
        let product = api.spec.instance_product();
        let listed = world
            .instances
            .iter()
            .filter(|i| i.product == product)
            .count();
        if listed == 0 {
            continue;
        }
        world.instances.retain(|i| i.product != product);
        notes.push(format!(
            "{}: its changes cannot be undone ({why}); its cases name none of the {listed} listed {} instance(s) — --allow-irreversible lets them",
            api.name,
            product.as_str().to_uppercase()
        ));
    }
    Ok((world, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The share of open cases kept stays within the budget however many the generator offers,
    /// and a generator offering nothing else is not starved.
    #[test]
    fn open_cases_are_kept_within_their_share() {
        for offered in [0.05, 0.3, 0.9] {
            let mut share = Share::new(0.10, 1000);
            let (mut kept, mut open) = (0, 0);
            let mut i = 0u64;
            while kept < 1000 {
                // A fixed pseudo-random sequence of open and plain draws.
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let is_open = ((i >> 33) % 1000) as f64 / 1000.0 < offered;
                if share.keep(is_open) {
                    kept += 1;
                    open += usize::from(is_open);
                }
            }
            assert!(open <= 101, "offered {offered}: {open} open of 1000");
            if offered < 0.1 {
                assert!(open > 20, "a small offer is all kept: {open}");
            }
        }
        let mut only_open = Share::new(0.10, 10);
        assert!((0..1000).filter(|_| only_open.keep(true)).count() > 0);
    }
}
