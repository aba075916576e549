//! The corpus: per API, a fixed set of cases drawn deterministically from a fixed seed and the
//! world — the valid paths, one case per breakable rule (one per offending state for state
//! rules), one per authentication fault the family has a rule for, one per listed unspecified
//! situation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use serde_json::Value;

use crate::case::analysis::auth_rule;
use crate::case::{AuthFault, Case};
use crate::generate::{self, GenOptions};
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

pub(super) fn state_name(s: InstanceState) -> String {
    s.name().to_ascii_lowercase()
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
    let plain = |c: &&Case| {
        c.situations.is_empty()
            && c.violates.is_empty()
            && !forced(c)
            && c.transport.forms.is_sdk()
            && c.transport.index_base == 0
    };
    let size = |c: &Case| c.instance_ids(api).len();
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

    // The documents' examples as printed, and each wire form they show on a valid request.
    for (i, case) in generate::example_cases(set, api, world)
        .into_iter()
        .filter_map(Result::ok)
        .enumerate()
    {
        let name = case.example.clone().unwrap_or_default();
        push(
            format!("example.{}", i + 1),
            format!("The document's example «{name}», as printed (its ids the world's)."),
            case,
        );
    }
    let form_of = |c: &Case| {
        !(c.transport.signature == crate::protocol::SignatureMethod::Tc3HmacSha256
            && c.transport.method == crate::protocol::Method::Post)
    };
    for w in &spec.wire {
        use crate::spec::Freedom;
        let fits = |c: &&Case| {
            plain(c)
                && match w.freedom {
                    Freedom::IndexBase => form_of(c) && size(c) >= 2,
                    Freedom::BooleanSpelling => {
                        form_of(c) && c.params.values().any(serde_json::Value::is_boolean)
                    }
                    Freedom::JsonListSpacing => size(c) >= 2,
                    Freedom::ActionSpelling => true,
                }
        };
        if let Some(c) = smallest(valid.iter().filter(fits)) {
            let mut c = c.clone();
            match w.freedom {
                Freedom::IndexBase => c.transport.index_base = 1,
                Freedom::BooleanSpelling => c.transport.forms.upper_booleans = true,
                Freedom::JsonListSpacing => c.transport.forms.spaced_json_lists = true,
                Freedom::ActionSpelling => c.transport.forms.action_spelling = true,
            }
            let name = serde_json::to_value(w.freedom)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            push(
                format!("valid.form-{}", name.replace('_', "-")),
                format!(
                    "A valid request in the documented wire form {name} = {}.",
                    w.form
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
                let states: BTreeSet<String> = c
                    .instance_ids(api)
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

    // The family's rule on parameters the table does not define, where it has one.
    if let Some(rule) = family
        .rules
        .iter()
        .find(|r| r.check == Check::KnownParameters)
    {
        if let Some(s) = generate::rule_strategy(set, api, world, &opts, &rule.id) {
            let cases = draw(&s, seed ^ 0x280, DRAWS);
            let only = |c: &&Case| c.violates == [rule.id.clone()] && c.situations.is_empty();
            if let Some(c) = smallest(cases.iter().filter(only)) {
                push(
                    format!("family.{}", rule.id),
                    format!("Breaks family rule `{}`: {}", rule.id, rule.description),
                    c.clone(),
                );
            }
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

/// Exchanges per API, in corpus order.
pub fn counts(entries: &[Entry]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in entries {
        *m.entry(e.api.clone()).or_insert(0) += 1;
    }
    m
}
