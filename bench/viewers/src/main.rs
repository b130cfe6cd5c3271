//! `sealcast-viewers`: runs N emulated HLS viewers against a master playlist and prints
//! request latency percentiles per kind as JSON (see the library's documentation).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use url::Url;
use viewers::plan::Pick;
use viewers::{run, Config};

/// N paced HLS viewers; latency per request kind, from the time each request was due.
#[derive(Debug, Parser)]
#[command(name = "sealcast-viewers", version)]
struct Args {
    /// The master playlist (`https://localhost:8443/live/demo/master.m3u8`).
    master: Url,
    /// How many viewers.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Seconds the run lasts.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds over which the viewers start, evenly spread.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// The rendition to watch (default: the master's first variant).
    #[arg(long)]
    rendition: Option<String>,
    /// HTTP/1.1 only (over TLS, ALPN otherwise picks HTTP/2 when the server offers it).
    #[arg(long, conflicts_with = "h2c")]
    http1: bool,
    /// HTTP/2 without TLS (prior knowledge), for `http://` URLs.
    #[arg(long)]
    h2c: bool,
    /// A PEM certificate authority to trust for `https://` (the cluster's `ca.pem`).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Also write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ca = args.ca.as_deref().map(viewers::read_ca).transpose()?;
    let config = Config {
        master: args.master.clone(),
        viewers: args.viewers,
        duration: Duration::from_secs(args.duration),
        ramp: Duration::from_secs_f64(args.ramp.max(0.0)),
        pick: args.rendition.clone().map_or(Pick::First, Pick::Named),
    };
    let client = || {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tls_built_in_root_certs(false);
        if let Some(ca) = &ca {
            builder = builder.add_root_certificate(ca.clone());
        }
        if args.http1 {
            builder = builder.http1_only();
        }
        if args.h2c {
            builder = builder.http2_prior_knowledge();
        }
        builder.build().unwrap_or_default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stats = runtime.block_on(run(&config, client));
    let report = serde_json::json!({
        "master": args.master.as_str(),
        "viewers": args.viewers,
        "duration_secs": args.duration,
        "http": if args.http1 { "1.1" } else if args.h2c { "h2c" } else { "auto" },
        "errors": stats.errors(),
        "kinds": stats.summaries(),
    });
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    #[allow(clippy::print_stdout)] // the report is the program's output
    {
        println!("{text}");
    }
    Ok(())
}
