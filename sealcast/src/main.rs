//! The `sealcast` binary: parses the command line, starts logging, and hands over to the
//! role that was asked for. Nothing else happens here.
//!
//! - `cli`: the clap definitions.
//! - `config`: the TOML configuration, validated at load time.
//! - `plan`: what each role starts with, derived from its command line, variables,
//!   configuration file and key files, with every problem named; the one derivation both
//!   the role and `--check-config` use.
//! - `roles`: how `up`, `ingest`, `broadcast` and `lb` wire catalog, keys, broker, ingest,
//!   broadcast nodes and the load balancer together, from their plans.
//! - `commands`: the one-shot commands (`streams`, `api-keys`, `tokens`, `source`, `keys`,
//!   `certs`, `ladder`).
//! - `check`: `--check-config`, which checks a role's command line and variables, then
//!   derives its plan, without starting it.
//! - `trim`: lets the allocator return freed memory while a server idles.
//! - `verify`: `sealcast verify`, the player's checks on a live stream or a recording,
//!   outside a browser.

mod check;
mod cli;
mod commands;
mod config;
mod plan;
mod roles;
mod trim;
mod verify;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

/// mimalloc rather than glibc's allocator: a node's idle connections free hyper's buffers
/// when they park, and with glibc those holes stayed in the heap (about 10 KB per idle
/// viewer); size classes reuse them (`bench/memory.sh`). Its version 2 (the workspace's
/// `Cargo.toml` says why not 3). Servers also start [`trim`]. The `system-allocator`
/// feature leaves glibc's in place, for heap profilers (heaptrack, massif), which see only
/// its calls: a profiling build, never the product.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Before clap: clap stops at the first bad value, the check reports them all.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if check::requested(&args) {
        return check::run(&args);
    }
    let cli = Cli::parse();
    // One-shot commands print their answer on stdout; only problems belong on stderr.
    let default_level = match cli.command {
        Command::Streams(_)
        | Command::ApiKeys(_)
        | Command::Tokens(_)
        | Command::Keys(_)
        | Command::Certs(_)
        | Command::Verify(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SEALCAST_LOG")
                // rumqttd (the embedded broker) logs every connection, and every clean
                // disconnect as an error; SEALCAST_LOG=rumqttd=info brings it back.
                .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},rumqttd=off"))),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole cause chain on one line, never a backtrace: this is for operators.
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the chosen command to completion.
fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Ladder(args) = &cli.command {
        return commands::ladder(&args.input, &args.output, args.config.as_deref());
    }
    let server = matches!(
        cli.command,
        Command::Up(_) | Command::Ingest(_) | Command::Broadcast(_) | Command::Lb(_)
    );
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if server {
        builder.on_thread_park(trim::on_park);
    }
    let runtime = builder.build()?;
    if server {
        trim::start(runtime.handle().clone(), runtime.metrics().num_workers());
    }
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        match cli.command {
            Command::Up(args) => roles::up(*args, shutdown).await,
            Command::Ingest(args) => roles::ingest(*args, shutdown).await,
            Command::Broadcast(args) => roles::broadcast(args, shutdown).await,
            Command::Lb(args) => roles::lb(args, shutdown).await,
            Command::MoqGate(args) => roles::moq_gate(args, shutdown).await,
            Command::Certs(args) => commands::certs(args).await,
            Command::Keys(args) => commands::keys(args).await,
            Command::Source(args) => commands::source(args, shutdown).await,
            Command::Streams(args) => commands::streams(args).await,
            Command::ApiKeys(args) => commands::api_keys(args).await,
            Command::Tokens(args) => commands::tokens(args).await,
            Command::Ladder(_) => Ok(()),
            Command::Verify(args) => {
                // Every refusal is on stdout already, with the summary.
                anyhow::ensure!(
                    verify::run(args).await?,
                    "not everything verified (see the lines above)"
                );
                Ok(())
            }
        }
    })
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    shutdown.cancel();
}
