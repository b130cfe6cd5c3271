//! `sealcast-idle`: holds N idle keep-alive viewer connections, for memory benchmarks.
//! Each connection (its own client, so its own socket) makes one request for `URL`, reads
//! the answer whole, then stays open and idle. When every connection has its answer (or
//! failed), it prints one JSON line (`{"open": N, "failed": F, "bytes": B}`) and holds
//! the connections until its standard input closes (or `--hold` seconds pass), so that
//! the caller can read the servers' memory meanwhile.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use url::Url;

/// N idle keep-alive connections, one request each.
#[derive(Debug, Parser)]
#[command(name = "sealcast-idle", version)]
struct Args {
    /// What each connection asks for once.
    url: Url,
    /// How many connections.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// HTTP/1.1 only (over TLS, ALPN otherwise picks HTTP/2 when the server offers it).
    #[arg(long)]
    http1: bool,
    /// A PEM certificate authority to trust for `https://`.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Give up holding after this many seconds even if standard input stays open.
    #[arg(long, default_value_t = 600)]
    hold: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ca = args.ca.as_deref().map(viewers::read_ca).transpose()?;
    let opening = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(None)
            .pool_max_idle_per_host(1)
            .tls_built_in_root_certs(false);
        if let Some(ca) = &ca {
            builder = builder.add_root_certificate(ca.clone());
        }
        if args.http1 {
            builder = builder.http1_only();
        }
        let client = builder.build()?;
        let (url, opening) = (args.url.clone(), Arc::clone(&opening));
        tasks.spawn(async move {
            let answer = {
                let _turn = opening.acquire().await;
                fetch(&client, url).await
            };
            (client, answer)
        });
    }
    let (mut clients, mut failed, mut bytes, mut first_error) = (Vec::new(), 0usize, 0u64, None);
    while let Some(done) = tasks.join_next().await {
        let (client, answer) = done?;
        match answer {
            Ok(n) => {
                bytes += n;
                clients.push(client);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let report = serde_json::json!({
        "open": clients.len(),
        "failed": failed,
        "bytes": bytes,
        "first_error": first_error,
    });
    #[allow(clippy::print_stdout)] // the report is the program's output
    {
        println!("{report}");
    }
    // Hold every connection until told to stop.
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(args.hold), async {
        while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    drop(clients);
    Ok(())
}

/// One request, its body read whole: how many body bytes.
async fn fetch(client: &reqwest::Client, url: Url) -> anyhow::Result<u64> {
    let response = client.get(url).send().await?.error_for_status()?;
    Ok(response.bytes().await?.len() as u64)
}
