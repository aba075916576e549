//! Policy before the first request: where requests go (a URL, or the emulator started
//! in-process), what the target may be assumed to hold, and the guard that keeps the harness off
//! resources nobody listed. Every command that sends (`run`, `replay`, `snapshot`, `bench`)
//! starts here, so the rules are the same for all of them.

use std::collections::BTreeSet;
use std::time::Duration;

use super::embedded::Embedded;
use super::target::{Destination, Reach};
use super::{RunError, Target};
use crate::emulator::{self, Fault, Variant};
use crate::protocol::Keys;
use crate::spec::SpecSet;
use crate::world::World;

/// What a command asked for.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// `--target` or `--cloud`: where requests go, in [`Destination`]'s text form (a base URL,
    /// or `cloud` and the `--endpoint` overrides); `None` starts the emulator in-process.
    pub target: Option<String>,
    /// The specs, whose `api.endpoints` a `cloud` destination routes by.
    pub specs: Option<SpecSet>,
    /// `--ca-cert`, `--resolve`.
    pub reach: Reach,
    /// `--world`: what the target holds, as the user listed it.
    pub world: Option<World>,
    /// `--fault`: bugs to inject into the in-process emulator (only there).
    pub faults: BTreeSet<Fault>,
    /// `--variant`: other readings for the in-process emulator to take (only there).
    pub variants: BTreeSet<Variant>,
    /// The credentials, a pair per vendor.
    pub keys: Keys,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Whether to ask a loopback target without `--world` what it holds now (its admin view).
    /// A recording that resets the target to a fixed world does not.
    pub probe_world: bool,
}

/// A target ready for a command.
pub struct Setup {
    /// Where requests go.
    pub target: Target,
    /// Whether the target serves the emulator's admin view (loopback emulators only).
    pub admin: bool,
    /// The world the command starts from: `--world`, else what a separately started emulator
    /// reports it holds, else the built-in default world.
    pub world: World,
    embedded: Option<Embedded>,
}

impl Setup {
    /// Applies the rules: `--fault` only with the in-process emulator; a target that is not on
    /// this machine only with a `--world` listing what the harness may touch (state-changing
    /// requests name only those resources; invalid ones name ids that do not exist).
    pub async fn prepare(opts: SetupOptions) -> Result<Setup, RunError> {
        let Some(url) = opts.target.as_deref() else {
            let world = opts.world.unwrap_or_else(World::default_world);
            let config = emulator::Config {
                world: world.clone(),
                faults: opts.faults,
                variants: opts.variants,
                keys: opts.keys,
                rate_limits: false,
                only: None,
                specs: opts
                    .specs
                    .clone()
                    .map_or_else(emulator::builtin_specs, std::sync::Arc::new),
            };
            let embedded = Embedded::start(config, opts.timeout).await?;
            return Ok(Setup {
                target: embedded.target().clone(),
                admin: true,
                world,
                embedded: Some(embedded),
            });
        };
        if !opts.faults.is_empty() {
            return Err(RunError::FaultsNeedEmbedded);
        }
        if !opts.variants.is_empty() {
            return Err(RunError::VariantsNeedEmbedded);
        }
        let dest = Destination::parse(url)?;
        let target = Target::connect(&dest, opts.specs.as_ref(), opts.timeout, &opts.reach)?;
        if !target.is_loopback() && opts.world.is_none() {
            return Err(RunError::RemoteNeedsWorld {
                url: target.url().to_string(),
            });
        }
        // A loopback target that serves the emulator's admin view (a separately started
        // `apiconform serve`) lets effects be observed where the API itself offers no view,
        // and may have run cases before: start from the world it holds now.
        let reported = match opts.probe_world && target.is_loopback() {
            true => target.admin_world().await,
            false => None,
        };
        let admin = reported.is_some();
        let world = opts.world.or(reported).unwrap_or_else(World::default_world);
        Ok(Setup {
            target,
            admin,
            world,
            embedded: None,
        })
    }

    /// Stops the in-process emulator, if one was started.
    pub async fn finish(self) {
        if let Some(e) = self.embedded {
            e.stop().await;
        }
    }
}
