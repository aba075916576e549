//! The world: the instances and key pairs a target holds.
//!
//! One format serves both sides: it seeds the emulator and tells the harness what exists on a
//! real target (and which resources it may touch). See `docs/world.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::input;
use crate::spec::{InstanceState, Os, Product};

/// The resources of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Instances of every product.
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// Key pairs of every product.
    #[serde(default)]
    pub key_pairs: Vec<KeyPair>,
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// `ins-…` (CVM), `ein-…` (ECM), `i-…` (ECS).
    pub id: String,
    /// Owning product.
    pub product: Product,
    /// Region (`ap-guangzhou`, `cn-hangzhou`).
    pub region: String,
    /// Operating system.
    pub os: Os,
    /// Current state.
    pub state: InstanceState,
    /// Bound keys: key ids for Tencent, key pair names for Alibaba.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Whether a login password is set (unbinding the last key then leaves password login).
    #[serde(default)]
    pub password_set: bool,
    /// The instance's tags (key → value), as the read APIs show them: what `world discover
    /// --tag` selects by, and what the emulator filters on. Omitted when empty, so worlds
    /// without tags read and write as before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// One key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    /// `skey-…` for Tencent; the key pair name for Alibaba (which names keys by name).
    pub id: String,
    /// Owning product.
    pub product: Product,
    /// Region.
    pub region: String,
    /// The key pair's tags (key → value); omitted when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Errors reading a world file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// The file could not be read.
    #[error("cannot read world file {path}: {source}\n  = help: check the path given to --world")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid world.
    #[error("error: {message}\n  --> {path}:{line}:{column}\n  = help: {help}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
        /// What to change.
        help: String,
    },
}

/// A world file refused before parsing: unreadable, too large, or nested too deep.
fn bounded(e: input::InputError) -> WorldError {
    match e {
        input::InputError::Io { path, source } => WorldError::Io { path, source },
        e => {
            let (line, column) = e.location();
            WorldError::Invalid {
                path: e.path().to_path_buf(),
                line,
                column,
                message: e.reason(),
                help: "a world file lists instances and key pairs, each a few lines deep (docs/world.md); this one is not such a file".into(),
            }
        }
    }
}

impl World {
    /// Reads a YAML or JSON world file.
    pub fn load(path: &Path) -> Result<World, WorldError> {
        let text = input::read(path, input::Kind::World).map_err(bounded)?;
        Self::parse(path, &text)
    }

    /// Parses world text; `path` is only for messages. Text larger or nested deeper than a
    /// world needs is refused before it is parsed ([`crate::input`]).
    pub fn parse(path: &Path, text: &str) -> Result<World, WorldError> {
        input::check(path, text, input::Kind::World).map_err(bounded)?;
        let invalid = |line, column, message: String| {
            let help = if message.contains("unknown field") {
                "remove or rename the field; docs/world.md lists the fields".to_string()
            } else if message.contains("unknown variant") {
                "use one of the values listed in the message".to_string()
            } else {
                "see docs/world.md for the format and an example per product".to_string()
            };
            WorldError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
                help,
            }
        };
        let world: World = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text).map_err(|e| {
                let m = e.to_string();
                let m = m.split(" at line ").next().unwrap_or(&m).to_string();
                invalid(e.line(), e.column(), m)
            })?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                let (l, c) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                let m = e.to_string();
                let m = m.split(" at line ").next().unwrap_or(&m).to_string();
                invalid(l, c, m)
            })?
        };
        world.check().map_err(|m| invalid(0, 0, m))?;
        Ok(world)
    }

    /// Consistency: unique ids, bound keys that exist in the same product and region.
    pub fn check(&self) -> Result<(), String> {
        let mut ids = BTreeSet::new();
        for i in &self.instances {
            if !ids.insert((i.product, i.id.as_str())) {
                return Err(format!("instance `{}` is listed twice", i.id));
            }
        }
        let mut keys = BTreeSet::new();
        for k in &self.key_pairs {
            if !keys.insert((k.product, k.region.as_str(), k.id.as_str())) {
                return Err(format!("key pair `{}` is listed twice", k.id));
            }
        }
        for i in &self.instances {
            for k in &i.keys {
                if !keys.contains(&(i.product, i.region.as_str(), k.as_str())) {
                    return Err(format!(
                        "instance `{}` is bound to key `{k}`, which is not a {} key pair in {}",
                        i.id,
                        i.product.as_str(),
                        i.region
                    ));
                }
            }
        }
        Ok(())
    }

    /// The instance with this id in this product.
    pub fn instance(&self, product: Product, id: &str) -> Option<&Instance> {
        self.instances
            .iter()
            .find(|i| i.product == product && i.id == id)
    }

    /// The built-in default world: every product, Linux and Windows, STOPPED and RUNNING, bound
    /// and unbound keys, and enough of each that batches up to the documented limits (100 CVM
    /// instances, 100 keys, 50 ECS instances) can be formed from valid resources.
    pub fn default_world() -> World {
        let mut w = World::default();
        let tencent = |prefix: &str, product: Product, region: &str, w: &mut World| {
            for n in 0..100 {
                w.key_pairs.push(KeyPair {
                    id: format!("skey-{prefix}k{n:06}"),
                    product,
                    region: region.into(),
                    tags: BTreeMap::new(),
                });
            }
            let key = |n: usize| format!("skey-{prefix}k{n:06}");
            for n in 0..104 {
                w.instances.push(Instance {
                    id: format!("{}-{prefix}s{n:06}", id_prefix(product)),
                    product,
                    region: region.into(),
                    os: Os::Linux,
                    state: InstanceState::Stopped,
                    keys: if n % 3 == 0 { vec![key(n % 7)] } else { vec![] },
                    password_set: n % 2 == 0,
                    tags: BTreeMap::new(),
                });
            }
            for (n, state) in [
                InstanceState::Running,
                InstanceState::Running,
                InstanceState::Running,
                InstanceState::Pending,
                InstanceState::Stopping,
                InstanceState::Starting,
                InstanceState::Rebooting,
            ]
            .into_iter()
            .enumerate()
            {
                w.instances.push(Instance {
                    id: format!("{}-{prefix}r{n:06}", id_prefix(product)),
                    product,
                    region: region.into(),
                    os: Os::Linux,
                    state,
                    keys: if n == 0 { vec![key(1)] } else { vec![] },
                    password_set: true,
                    tags: BTreeMap::new(),
                });
            }
            for (n, state) in [InstanceState::Stopped, InstanceState::Running]
                .into_iter()
                .enumerate()
            {
                w.instances.push(Instance {
                    id: format!("{}-{prefix}w{n:06}", id_prefix(product)),
                    product,
                    region: region.into(),
                    os: Os::Windows,
                    state,
                    keys: vec![],
                    password_set: true,
                    tags: BTreeMap::new(),
                });
            }
        };
        tencent("c", Product::Cvm, "ap-guangzhou", &mut w);
        tencent("e", Product::Ecm, "ap-guangzhou", &mut w);
        for n in 0..10 {
            w.key_pairs.push(KeyPair {
                id: format!("kp-linux-{n}"),
                product: Product::Ecs,
                region: "cn-hangzhou".into(),
                tags: BTreeMap::new(),
            });
        }
        // Alibaba key pairs are regional: two that exist only in another region let a case
        // name one from cn-hangzhou (the `other_region` situation).
        for n in 0..2 {
            w.key_pairs.push(KeyPair {
                id: format!("kp-beijing-{n}"),
                product: Product::Ecs,
                region: "cn-beijing".into(),
                tags: BTreeMap::new(),
            });
        }
        for n in 0..54 {
            w.instances.push(Instance {
                id: format!("i-bp1s{n:016}"),
                product: Product::Ecs,
                region: "cn-hangzhou".into(),
                os: Os::Linux,
                state: if n % 4 == 3 {
                    InstanceState::Running
                } else {
                    InstanceState::Stopped
                },
                keys: if n % 2 == 0 {
                    vec![format!("kp-linux-{}", n % 10)]
                } else {
                    vec![]
                },
                password_set: true,
                tags: BTreeMap::new(),
            });
        }
        for n in 0..2 {
            w.instances.push(Instance {
                id: format!("i-bp1w{n:016}"),
                product: Product::Ecs,
                region: "cn-hangzhou".into(),
                os: Os::Windows,
                state: InstanceState::Stopped,
                keys: vec![],
                password_set: true,
                tags: BTreeMap::new(),
            });
        }
        w
    }
}

/// Instances and key pairs by id, for many lookups against one world: each lookup is a hash
/// probe instead of a scan, with the same answer as the scan (the first resource in world order
/// that has the id and passes the filter). An id held by several resources (possible across
/// products or regions) falls back to the scan.
pub struct Lookup<'a> {
    world: &'a World,
    instances: Positions<'a>,
    key_pairs: Positions<'a>,
}

/// A world's positions by id, built once for many [`Lookup`]s of a world whose resources do not
/// move (the generator analyses every case against the world it started from).
#[derive(Debug)]
pub struct IdIndex {
    instances: HashMap<String, usize>,
    key_pairs: HashMap<String, usize>,
}

impl IdIndex {
    /// Indexes `world`; use it only with that world ([`Lookup::with_index`]).
    pub fn new(world: &World) -> IdIndex {
        let owned =
            |m: HashMap<&str, usize>| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        IdIndex {
            instances: owned(positions(&world.instances, |i| i.id.as_str())),
            key_pairs: owned(positions(&world.key_pairs, |k| k.id.as_str())),
        }
    }
}

enum Positions<'a> {
    Own(HashMap<&'a str, usize>),
    Shared(&'a HashMap<String, usize>),
}

impl Positions<'_> {
    fn get(&self, id: &str) -> Option<usize> {
        match self {
            Positions::Own(m) => m.get(id).copied(),
            Positions::Shared(m) => m.get(id).copied(),
        }
    }
}

/// An id held by more than one resource.
const SEVERAL: usize = usize::MAX;

fn positions<'a, T>(items: &'a [T], id: impl Fn(&'a T) -> &'a str) -> HashMap<&'a str, usize> {
    let mut map = HashMap::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        map.entry(id(item))
            .and_modify(|p| *p = SEVERAL)
            .or_insert(n);
    }
    map
}

fn first<'a, T>(
    items: &'a [T],
    map: &Positions,
    id: &str,
    id_of: impl Fn(&T) -> &str,
    keep: impl Fn(&T) -> bool,
) -> Option<(usize, &'a T)> {
    match map.get(id)? {
        SEVERAL => items
            .iter()
            .enumerate()
            .find(|(_, x)| id_of(x) == id && keep(x)),
        n => Some((n, &items[n])).filter(|(_, x)| keep(x)),
    }
}

impl<'a> Lookup<'a> {
    /// Indexes `world` (one pass over its resources).
    pub fn new(world: &'a World) -> Lookup<'a> {
        Lookup {
            world,
            instances: Positions::Own(positions(&world.instances, |i| i.id.as_str())),
            key_pairs: Positions::Own(positions(&world.key_pairs, |k| k.id.as_str())),
        }
    }

    /// A lookup of `world` through an index built from it earlier (no pass over the world).
    pub fn with_index(world: &'a World, index: &'a IdIndex) -> Lookup<'a> {
        Lookup {
            world,
            instances: Positions::Shared(&index.instances),
            key_pairs: Positions::Shared(&index.key_pairs),
        }
    }

    /// The first instance with this id that `keep` accepts, with its position.
    pub fn instance(
        &self,
        id: &str,
        keep: impl Fn(&Instance) -> bool,
    ) -> Option<(usize, &'a Instance)> {
        first(&self.world.instances, &self.instances, id, |i| &i.id, keep)
    }

    /// The first key pair with this id that `keep` accepts, with its position.
    pub fn key_pair(
        &self,
        id: &str,
        keep: impl Fn(&KeyPair) -> bool,
    ) -> Option<(usize, &'a KeyPair)> {
        first(&self.world.key_pairs, &self.key_pairs, id, |k| &k.id, keep)
    }
}

/// The id prefix of a product's instances.
pub fn id_prefix(product: Product) -> &'static str {
    match product {
        Product::Cvm => "ins",
        Product::Ecm => "ein",
        Product::Ecs => "i",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_built_once_answers_like_a_fresh_lookup() {
        let mut w = World::default_world();
        // An id held twice (another region) takes the scan in both.
        let mut twin = w.instances[0].clone();
        twin.region = "ap-shanghai".into();
        w.instances.push(twin);
        let index = IdIndex::new(&w);
        let (fresh, indexed) = (Lookup::new(&w), Lookup::with_index(&w, &index));
        let ids = w
            .instances
            .iter()
            .map(|i| i.id.clone())
            .chain(w.key_pairs.iter().map(|k| k.id.clone()))
            .chain(["ins-nothere".to_string(), String::new()]);
        for id in ids {
            for region in ["ap-guangzhou", "ap-shanghai", "cn-hangzhou"] {
                let keep = |i: &Instance| i.region == region;
                assert_eq!(
                    fresh.instance(&id, keep).map(|(n, _)| n),
                    indexed.instance(&id, keep).map(|(n, _)| n),
                    "{id} in {region}"
                );
                let keep = |k: &KeyPair| k.region == region;
                assert_eq!(
                    fresh.key_pair(&id, keep).map(|(n, _)| n),
                    indexed.key_pair(&id, keep).map(|(n, _)| n),
                    "{id} in {region}"
                );
            }
        }
    }

    #[test]
    fn default_world_is_consistent_and_covers_every_product() {
        let w = World::default_world();
        w.check().unwrap();
        for p in [Product::Cvm, Product::Ecm, Product::Ecs] {
            assert!(w
                .instances
                .iter()
                .any(|i| i.product == p && i.os == Os::Windows));
            assert!(w
                .instances
                .iter()
                .any(|i| i.product == p && i.state == InstanceState::Running));
            assert!(w
                .instances
                .iter()
                .any(|i| i.product == p && !i.keys.is_empty()));
        }
        let cvm_ok = w
            .instances
            .iter()
            .filter(|i| {
                i.product == Product::Cvm && i.os == Os::Linux && i.state == InstanceState::Stopped
            })
            .count();
        assert!(cvm_ok > 100, "enough for a batch at the limit and one over");
    }

    #[test]
    fn world_file_errors_name_line_and_fix() {
        let text = "instances:\n  - id: ins-aaaa1111\n    product: cvm\n    region: ap-guangzhou\n    os: beos\n    state: STOPPED\n";
        let err = World::parse(Path::new("w.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("w.yaml:5:"), "{err}");
        assert!(err.contains("beos"), "{err}");
    }

    #[test]
    fn documented_examples_parse() {
        let doc = include_str!("../docs/world.md");
        let blocks: Vec<&str> = doc
            .split("```yaml\n")
            .skip(1)
            .map(|b| b.split("```").next().unwrap_or(""))
            .collect();
        assert_eq!(blocks.len(), 3, "one example per product");
        for block in blocks {
            let w = World::parse(Path::new("docs/world.md"), block).unwrap();
            assert!(!w.instances.is_empty() && !w.key_pairs.is_empty());
        }
    }

    #[test]
    fn a_key_bound_but_not_listed_is_rejected() {
        let text = "instances:\n  - {id: ins-aaaa1111, product: cvm, region: ap-guangzhou, os: linux, state: STOPPED, keys: [skey-zzzz9999]}\n";
        let err = World::parse(Path::new("w.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("skey-zzzz9999"), "{err}");
    }
}
