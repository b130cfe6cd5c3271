//! `sealcast-presence`: writes a broadcast node's presence, signed with the cluster's edge
//! key, to standard output, for benchmarks that put a load balancer in front of backends
//! that are not sealcast nodes (nginx). The load balancer believes only signed broadcast
//! presences, so a benchmark publishes this payload (retained) on the node's presence
//! topic, e.g. `sealcast-presence --keys-dir data/keys bench-b1 http://127.0.0.1:8081 |
//! mosquitto_pub -r -s -t sealcast/v1/nodes/bench-b1/presence`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use certs::keydir::KeyDir;
use certs::signing::PresenceSigner;
use clap::Parser;
use domain::presence::{Presence, PresenceState, Role};
use domain::NodeId;

/// A signed broadcast presence ("ready", at URL) on standard output.
#[derive(Debug, Parser)]
#[command(name = "sealcast-presence", version)]
struct Args {
    /// The key directory `sealcast keys init` made (its edge key signs).
    #[arg(long)]
    keys_dir: PathBuf,
    /// The node id (the presence topic's).
    node: String,
    /// The node's base URL (`http://127.0.0.1:8081`).
    url: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let node = NodeId::new(args.node).context("the node id")?;
    let (key, certificate) = KeyDir::new(&args.keys_dir)
        .edge()
        .context("reading the edge key (run `sealcast keys init`)")?;
    let signer = PresenceSigner::new(key, &certificate)?;
    let presence = Presence {
        role: Role::Broadcast,
        state: PresenceState::Ready,
        url: Some(args.url),
        direct_url: None,
    };
    let now_ms = domain::time::WallClock.unix_ms();
    std::io::stdout().write_all(&signer.sign(&node, &presence, now_ms))?;
    Ok(())
}
