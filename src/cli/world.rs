//! `apiconform world discover`: a world file from the read APIs alone.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{exit, finish, runtime, say, tell, CredArgs, Failed, TargetArgs};
use crate::run::{self, DiscoverError, DiscoverOptions, Target};
use crate::spec::Product;

#[derive(Subcommand)]
pub(super) enum WorldCommand {
    /// Write a world file listing the selected instances and key pairs of one region, read
    /// through the vendors' read APIs (DescribeInstances, DescribeKeyPairs) alone.
    #[command(
        after_help = "Only what a --tag or --instance selects is listed: the selection is sent as the \
target's filter, and every instance the target answers is checked again against it (an instance \
without the tag, or not an asked id, is dropped and named on stderr). Key pairs listed: those bound \
to the selected instances, those carrying a selected tag, and those given with --key-pair; never \
the whole account's. Instances in a state other than STOPPED or RUNNING are left out with a note. \
ECM's API shows no bindings: ECM instances are listed only as given (--product ecm --instance \
ein-...), and the file's header says what is unknown about them.\n\n\
Examples:\n  apiconform world discover --target https://cvm.tencentcloudapi.com --region ap-guangzhou --tag apiconform=nightly --out world.yaml\n  apiconform world discover --target https://ecs.cn-hangzhou.aliyuncs.com --region cn-hangzhou --instance i-bp1... --out world.yaml\n  apiconform world discover --target http://127.0.0.1:9000 --region ap-guangzhou --product ecm --instance ein-ss23fw23 --key-pair skey-3cvmq2vn\n  apiconform run --target https://cvm.tencentcloudapi.com --world world.yaml --spec tencent-cvm\n\n\
Credentials: TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY and ALIBABA_CLOUD_ACCESS_KEY_ID / \
ALIBABA_CLOUD_ACCESS_KEY_SECRET (or the flags), as for `run`.\n\n\
Progress: a `progress:` line on stderr every 10 s (read calls, resources answered, bytes \
read, time spent). Discovery stops, writing nothing, once --max-duration (default 10m) is spent \
or the answers come to more than any selection needs (64 MiB, or 40,000 resources).\n\n\
Exit codes: 0 the file was written; 2 usage error (nothing selected, an id of a product not \
listed, a bad URL); 3 the target could not be reached or refused a read call (the code and \
message are printed), answered more than any selection needs, or the file could not be \
written; 4 --max-duration was spent."
    )]
    Discover(DiscoverArgs),
}

#[derive(Args)]
pub(super) struct DiscoverArgs {
    /// Where the read calls go: --target URL (one server), or --cloud (each product's calls to
    /// its vendor's host for the region, --endpoint PRODUCT=URL to override one).
    #[command(flatten)]
    to: TargetArgs,
    /// The region to list (`ap-guangzhou`, `cn-hangzhou`); repeatable: one world file for
    /// several regions (and, with --cloud, several products).
    #[arg(long = "region", required = true)]
    regions: Vec<String>,
    /// Select the instances (and key pairs) carrying this tag with this value; repeatable (a
    /// resource carrying any of them is selected).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Select this instance (`ins-…` CVM, `i-…` ECS, `ein-…` ECM); repeatable.
    #[arg(long = "instance", value_name = "ID")]
    instances: Vec<String>,
    /// List this key pair too (`skey-…` for CVM/ECM, the name for ECS); repeatable.
    #[arg(long = "key-pair", value_name = "ID")]
    key_pairs: Vec<String>,
    /// Products to list; repeatable. Default: the one the region's name (or the target's host)
    /// suggests, else cvm and ecs. ECM only when named, and only by --instance.
    #[arg(long = "product", value_enum, value_name = "PRODUCT")]
    products: Vec<ProductArg>,
    /// Write the world file here (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Stop discovery once this much time is spent (90s, 45m, 2h): nothing is written, exit 4.
    #[arg(long, value_name = "DURATION", value_parser = super::run::parse_duration, default_value = "10m")]
    max_duration: std::time::Duration,
    #[command(flatten)]
    creds: CredArgs,
}

/// A product, as `--product` names it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum ProductArg {
    /// Tencent CVM.
    Cvm,
    /// Tencent ECM (listed as given, nothing read).
    Ecm,
    /// Alibaba ECS.
    Ecs,
}

/// Discovery's progress: a `progress:` line on stderr every few seconds, terminal or not.
struct Lines;

impl run::Progress for Lines {
    fn update(&self, _: usize, _: usize, _: usize) {}

    fn note(&self, what: &str) {
        tell(what);
    }
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "--tag takes KEY=VALUE (e.g. env=nightly), not `{s}`"
        )),
    }
}

pub(super) fn world(cmd: WorldCommand) -> u8 {
    match cmd {
        WorldCommand::Discover(args) => finish(discover(args)),
    }
}

fn discover(args: DiscoverArgs) -> Result<u8, Failed> {
    let keys = args.creds.resolve();
    let Some(dest) = args.to.destination() else {
        return Err(Failed::usage(
            "error: world discover needs --target URL or --cloud\n  = help: e.g. --cloud --region ap-guangzhou --tag apiconform=nightly",
        ));
    };
    let specs = crate::spec::load_embedded().map_err(Failed::usage)?;
    let dest = run::Destination::parse(&dest).map_err(|e| Failed::usage(format!("error: {e}")))?;
    let target = Target::connect(
        &dest,
        Some(&specs),
        std::time::Duration::from_secs(args.timeout.max(1)),
        &args.to.reach()?,
    )
    .map_err(|e| Failed::usage(format!("error: {e}")))?;
    let chosen = |region: &str| -> BTreeSet<Product> {
        if args.products.is_empty() {
            // With --cloud each product has its own host: the region's name decides.
            let host = if target.is_cloud() { "" } else { target.url() };
            run::products_for(region, host)
        } else {
            args.products
                .iter()
                .map(|p| match p {
                    ProductArg::Cvm => Product::Cvm,
                    ProductArg::Ecm => Product::Ecm,
                    ProductArg::Ecs => Product::Ecs,
                })
                .collect()
        }
    };
    if !target.is_loopback() {
        let families = args
            .regions
            .iter()
            .flat_map(|r| chosen(r))
            .flat_map(|p| match p {
                Product::Ecs => vec![crate::spec::FamilyId::AliyunRpc],
                Product::Cvm | Product::Ecm => vec![crate::spec::FamilyId::TencentApi3],
            });
        args.creds.require(families, target.url())?;
    }
    let mut opts = DiscoverOptions {
        region: String::new(),
        products: BTreeSet::new(),
        tags: args.tags.clone(),
        instances: args.instances.clone(),
        key_pairs: args.key_pairs.clone(),
        keys,
        max_duration: Some(args.max_duration),
    };
    for id in &args.instances {
        if let Some(p) = run::product_of_instance(id) {
            if !args.regions.iter().any(|r| chosen(r).contains(&p)) {
                return Err(Failed::usage(format!(
                    "error: --instance {id} is a {} instance, but no --region is read for {}\n  = help: add --product {} (or a region of that product)",
                    p.as_str(),
                    p.as_str(),
                    p.as_str()
                )));
            }
        }
    }
    let rt = runtime()?;
    let started = std::time::Instant::now();
    let mut found = run::Discovered::default();
    let mut all_products = BTreeSet::new();
    for region in &args.regions {
        opts.region = region.clone();
        opts.products = chosen(region);
        // Each region reads the --instance ids of its products (an id of no listed product
        // stays, for discovery to refuse by name).
        opts.instances = args
            .instances
            .iter()
            .filter(|id| run::product_of_instance(id).is_none_or(|p| opts.products.contains(&p)))
            .cloned()
            .collect();
        if opts.instances.is_empty() && args.tags.is_empty() && !args.instances.is_empty() {
            continue;
        }
        all_products.extend(opts.products.iter().copied());
        // One deadline for the whole call, however many regions it reads: each region's
        // discovery gets what is left of it (and says the limit as given).
        let left = args.max_duration.saturating_sub(started.elapsed());
        let (requests, answered) = (
            found.requests,
            found.world.instances.len() + found.world.key_pairs.len(),
        );
        let part = rt
            .block_on(async {
                match tokio::time::timeout(left, run::discover(&target, &opts, &Lines)).await {
                    Ok(found) => found,
                    Err(_) => Err(DiscoverError::Deadline {
                        limit: args.max_duration,
                        requests,
                        answered,
                    }),
                }
            })
            .map_err(|e: DiscoverError| {
                let usage = e.is_usage();
                let message = match &e {
                    DiscoverError::Transport(_) => format!(
                        "error: {e}\n  = help: check that the target is up and the URL is right"
                    ),
                    _ => format!("error: {e}"),
                };
                match e {
                    _ if usage => Failed::usage(message),
                    DiscoverError::Deadline { .. } => Failed {
                        code: exit::BUDGET,
                        message,
                    },
                    _ => Failed::target(message),
                }
            })?;
        found.absorb(part);
    }
    // The header names every region and product read.
    opts.region = args.regions.join(", ");
    opts.products = all_products;
    for d in &found.dropped {
        tell(format!("dropped: {d}"));
    }
    for l in &found.left_out {
        tell(format!("left out: {l}"));
    }
    for n in &found.notes {
        tell(format!("note: {n}"));
    }
    let text = found.to_yaml(target.url(), &opts);
    match &args.out {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| Failed::target(format!("error: cannot write {}: {e}", path.display())))?,
        None => {
            say(text.trim_end());
        }
    }
    tell(format!(
        "discovered {} instance(s) and {} key pair(s) in {} ({} read calls); {} dropped, {} left out{}",
        found.world.instances.len(),
        found.world.key_pairs.len(),
        opts.region,
        found.requests,
        found.dropped.len(),
        found.left_out.len(),
        args.out
            .as_ref()
            .map(|p| format!("; written to {}", p.display()))
            .unwrap_or_default()
    ));
    Ok(exit::OK)
}
