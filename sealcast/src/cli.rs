//! The command line: one subcommand per role, parsed with clap derive.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// sealcast: an HLS origin/edge streaming cluster.
#[derive(Debug, Parser)]
#[command(name = "sealcast", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run everything on one machine: ingest, broadcast nodes, catalog.
    Up(UpArgs),
    /// Run an ingest node (RTMP in; serves its own HLS output until edges take over).
    Ingest(IngestArgs),
    /// Publish a test pattern (bars, 1 kHz tone, wall clock burnt in) like OBS would.
    Source(SourceArgs),
    /// Manage streams and their keys in the catalog.
    Streams(StreamsArgs),
    /// Transcode an FLV file into the HLS ladder on disk, as fast as possible.
    Ladder(LadderArgs),
}

/// Where the catalog lives.
#[derive(Debug, Clone, Args)]
pub(crate) struct CatalogArgs {
    /// Data directory (the SQLite catalog lives here).
    #[arg(long, global = true, env = "SEALCAST_DATA_DIR", default_value = "data")]
    pub(crate) data_dir: PathBuf,
    /// A database URL (`postgres://…` or `sqlite://…`) instead of the data directory's SQLite file.
    #[arg(long, global = true, env = "SEALCAST_DATABASE_URL")]
    pub(crate) database_url: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    /// Configuration file (TOML); see `sealcast.example.toml`.
    #[arg(long, env = "SEALCAST_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// How many broadcast nodes to run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) broadcast: u16,
    /// Also publish a test pattern so something plays at once.
    #[arg(long)]
    pub(crate) demo: bool,
    /// RTMP listen address.
    #[arg(long, env = "SEALCAST_RTMP_LISTEN", default_value = "0.0.0.0:1935")]
    pub(crate) rtmp_listen: SocketAddr,
    /// Listen address of the first broadcast node; node N listens on the next ports
    /// (port 0: every node gets a free port).
    #[arg(
        long,
        env = "SEALCAST_BROADCAST_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub(crate) broadcast_listen: SocketAddr,
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    /// Configuration file (TOML).
    #[arg(long, env = "SEALCAST_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// RTMP listen address.
    #[arg(long, env = "SEALCAST_RTMP_LISTEN", default_value = "0.0.0.0:1935")]
    pub(crate) rtmp_listen: SocketAddr,
    /// HTTP listen address for the node's own HLS output.
    #[arg(long, env = "SEALCAST_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub(crate) http_listen: SocketAddr,
    /// This node's id (in `x-sealcast-node`).
    #[arg(long, env = "SEALCAST_NODE_ID", default_value = "ingest1")]
    pub(crate) node_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct SourceArgs {
    /// Where to publish: `rtmp://HOST:PORT/live/KEY`.
    #[arg(long, env = "SEALCAST_SOURCE_URL", required_unless_present = "output")]
    pub(crate) url: Option<String>,
    /// Write an FLV file instead of publishing.
    #[arg(long, conflicts_with = "url")]
    pub(crate) output: Option<PathBuf>,
    /// Picture size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    pub(crate) size: String,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    pub(crate) fps: u32,
    /// Video bitrate in kb/s.
    #[arg(long, default_value_t = 2500)]
    pub(crate) bitrate: u32,
    /// Keyframe interval in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) gop: f64,
    /// Stop after this many seconds (default: run until stopped).
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// Produce as fast as possible instead of at real-time pace (for files).
    #[arg(long)]
    pub(crate) fast: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StreamsArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    #[command(subcommand)]
    pub(crate) command: StreamsCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StreamsCommand {
    /// Create a stream; prints its key alone on stdout.
    Add {
        /// Public name of the stream (letters, digits, `_`, `-`).
        name: String,
        /// Print a JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// List the catalog.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a stream a new key; the old one stops working at once.
    RotateKey {
        /// The stream.
        name: String,
        /// Print a JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Delete a stream and its key.
    Remove {
        /// The stream.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LadderArgs {
    /// FLV file with H.264 (and AAC) to transcode.
    #[arg(long)]
    pub(crate) input: PathBuf,
    /// Directory to write `master.m3u8` and `{rendition}/` into.
    #[arg(long)]
    pub(crate) output: PathBuf,
    /// Configuration file (TOML) with the ladder.
    #[arg(long, env = "SEALCAST_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}
