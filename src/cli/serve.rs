//! `apiconform serve`: the emulator as a standalone HTTP server.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::{exit, finish, load_world, parse_fault, parse_variant, runtime, say, CredArgs, Failed};
use crate::emulator::{self, Emulator, Fault, Variant};
use crate::world::World;

/// Whether the emulator enforces the documented request rates.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RateLimits {
    /// No limit, unless the admin view switches one on (`POST /__apiconform/rate-limits`).
    Off,
    /// Always the documents' limits, per secret id and action: CVM Associate and Disassociate
    /// 10/s, ECM Disassociate 20/s.
    Documented,
}

#[derive(Args)]
pub(super) struct ServeArgs {
    /// Address to listen on (loopback unless you mean otherwise).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: String,
    /// World file (YAML or JSON) to start with; default: the built-in world.
    #[arg(long)]
    world: Option<PathBuf>,
    /// Inject a named bug (repeatable); see --list-faults.
    #[arg(long = "fault", value_name = "NAME", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// Take another defensible reading where the documents leave a choice (repeatable); see
    /// --list-variants. Unlike a fault, a variant is correct: `run` must pass it.
    #[arg(long = "variant", value_name = "NAME", value_parser = parse_variant)]
    variants: Vec<Variant>,
    /// Enforce documented rate limits (CVM Associate/Disassociate 10/s, ECM Disassociate 20/s,
    /// per secret id and action) always, or only while the admin view switches them on
    /// (`POST /__apiconform/rate-limits?enforce=on|off[&action=NAME[&version=V]]`, as `run`
    /// does for its rate-limit probe).
    #[arg(long, value_enum, default_value = "off")]
    rate_limits: RateLimits,
    /// Answer only this product's calls, as one of the vendor's hosts does (a spec folder:
    /// tencent-cvm, tencent-ecm, alibaba-ecs); any other call gets the family's answer to an
    /// action the host does not serve. One emulator per product on its own 127.0.0.x address is
    /// a simulated cloud for `run --cloud --endpoint PRODUCT=URL`.
    #[arg(long, value_name = "PRODUCT")]
    only: Option<String>,
    /// Serve HTTPS. Without --cert/--key a self-signed certificate is made at start for the
    /// --tls-name names (default: localhost, 127.0.0.1 and the listen address).
    #[arg(long)]
    tls: bool,
    /// A host name (or IP address) the made certificate is for, e.g. cvm.tencentcloudapi.com;
    /// repeatable.
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls")]
    tls_names: Vec<String>,
    /// The certificate (PEM) to present, with --key, instead of a made one.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["tls", "cert"])]
    key: Option<PathBuf>,
    /// Write the certificate presented (PEM) here, for clients' --ca-cert.
    #[arg(long = "cert-out", value_name = "FILE", requires = "tls")]
    cert_out: Option<PathBuf>,
    /// Print the built-in default world as YAML and exit.
    #[arg(long)]
    print_world: bool,
    /// List the injectable faults, one a line, and exit.
    #[arg(long)]
    list_faults: bool,
    /// List the variants (other readings of open points), one a line, and exit.
    #[arg(long)]
    list_variants: bool,
    #[command(flatten)]
    creds: CredArgs,
}

pub(super) fn serve(args: ServeArgs) -> u8 {
    finish(serve_inner(args))
}

fn serve_inner(args: ServeArgs) -> Result<u8, Failed> {
    if args.list_faults {
        for f in Fault::ALL {
            if !say(format!("{:<26} {}", f.name(), f.description())) {
                break;
            }
        }
        return Ok(exit::OK);
    }
    if args.list_variants {
        for v in Variant::ALL {
            if !say(format!("{:<30} {}", v.name(), v.description())) {
                break;
            }
        }
        return Ok(exit::OK);
    }
    if args.print_world {
        let yaml = serde_yaml_ng::to_string(&World::default_world()).unwrap_or_default();
        say(yaml.trim_end());
        return Ok(exit::OK);
    }
    let world = load_world(args.world.as_deref())?.unwrap_or_else(World::default_world);
    let faults: BTreeSet<Fault> = args.faults.iter().copied().collect();
    let rate_limits = matches!(args.rate_limits, RateLimits::Documented);
    let keys = args.creds.resolve();
    let world_name = args
        .world
        .as_ref()
        .map_or("built-in default world".to_string(), |p| {
            p.display().to_string()
        });
    let config = emulator::Config {
        world,
        faults,
        variants: args.variants.iter().copied().collect(),
        keys,
        rate_limits,
        only: args.only.clone(),
        specs: emulator::builtin_specs(),
    };
    if let Some(only) = &args.only {
        // The products are the spec folders of the built-in specs.
        let specs = emulator::builtin_specs();
        let mut known: Vec<&str> = specs.apis.iter().map(|a| a.product_dir()).collect();
        known.dedup();
        if !known.contains(&only.as_str()) {
            return Err(Failed::usage(format!(
                "error: --only {only}: not a product the emulator serves\n  = help: one of {}",
                known.join(", ")
            )));
        }
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen).await.map_err(|e| {
            Failed::target(format!(
                "error: cannot listen on {}: {e}\n  = help: pick a free port, e.g. --listen 127.0.0.1:0",
                args.listen
            ))
        })?;
        let local = listener.local_addr().ok();
        let addr = local.map(|a| a.to_string()).unwrap_or_default();
        let tls = match (&args.cert, &args.key) {
            _ if !args.tls => None,
            (Some(cert), Some(key)) => Some(emulator::tls::from_files(cert, key)),
            _ => {
                let mut names = args.tls_names.clone();
                names.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
                names.extend(local.map(|a| a.ip().to_string()));
                names.dedup();
                Some(emulator::tls::generate(&names))
            }
        }
        .transpose()
        .map_err(|e| Failed::usage(format!("error: --tls: {e}")))?;
        if let (Some(tls), Some(out)) = (&tls, &args.cert_out) {
            std::fs::write(out, &tls.cert_pem).map_err(|e| {
                Failed::usage(format!("error: cannot write --cert-out {}: {e}", out.display()))
            })?;
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let n = config.world.instances.len();
        let k = config.world.key_pairs.len();
        say(format!(
            "apiconform emulator on {scheme}://{addr}{} — accepts Tencent id {} and Alibaba id {}; world: {world_name} ({n} instances, {k} key pairs){}{}",
            match &config.only {
                Some(p) => format!(" (only {p})"),
                None => String::new(),
            },
            config.keys.tencent.id,
            config.keys.alibaba.id,
            if config.faults.is_empty() {
                String::new()
            } else {
                format!("; faults: {}", config.faults.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "))
            },
            if config.variants.is_empty() {
                String::new()
            } else {
                format!("; variants: {}", config.variants.iter().map(|v| v.name()).collect::<Vec<_>>().join(", "))
            }
        ));
        let emu = Arc::new(Emulator::new(config));
        // Ctrl-C or SIGTERM: stop accepting, finish what is in flight, exit 0.
        let shutdown = async {
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
                match term.as_mut() {
                    Ok(t) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = t.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
            eprintln!("apiconform emulator: shutting down");
        };
        emulator::server::serve_on(listener, emu, emulator::server::Limits::EMULATOR, tls, shutdown)
            .await
            .map_err(|e| Failed::target(format!("error: server failed: {e}")))?;
        Ok(exit::OK)
    })
}
