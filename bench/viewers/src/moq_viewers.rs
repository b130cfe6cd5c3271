//! `sealcast-moq-viewers`: N emulated Media over QUIC viewers of one live stream (issue 48's
//! cost benchmark, bench/moq-cost.sh). Each viewer is what the player is on the wire: its
//! own QUIC connection to the relay (moq-tokio, the relay's project's client), a
//! subscription to the rendition's media track and to its statements track (`{track}.sig`),
//! every object of both read to the end. Viewers connect evenly over `--ramp` seconds and
//! stay `--duration` seconds after the last one connected. Prints one JSON object: how
//! many connected, objects and bytes per viewer, stalls (a viewer waiting more than
//! [`STALL`] for its next media object once it had one), and how late each viewer got each
//! media object after the first viewer that got it (percentiles; from each viewer's
//! second group, the first being partly what the relay held when it subscribed): what the
//! relay's fan-out costs a viewer in latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use moq_tokio::moq_net;
use serde_json::json;
use tokio::time::Instant;
use viewers::stats::Percentiles;

/// N MoQ viewers of one stream; objects, stalls and fan-out lateness as JSON.
#[derive(Debug, Parser)]
#[command(name = "sealcast-moq-viewers", version)]
struct Args {
    /// The relay (`https://localhost:4443/`).
    relay: url::Url,
    /// The broadcast to watch (the stream's name).
    broadcast: String,
    /// The relay certificate's SHA-256 in hex (what moq-relay serves at
    /// `/certificate.sha256`).
    #[arg(long)]
    fingerprint: String,
    /// The media track (the rendition); `{track}.sig` is read beside it.
    #[arg(long)]
    track: String,
    /// How many viewers.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Seconds over which the viewers connect, evenly spread.
    #[arg(long, default_value_t = 5.0)]
    ramp: f64,
    /// Seconds the run lasts once the last viewer connected.
    #[arg(long, default_value_t = 30)]
    duration: u64,
}

/// A viewer waiting longer than this for its next media object has stalled (parts come
/// every third of a second).
const STALL: Duration = Duration::from_secs(1);
/// How old a group the relay may still send (the player's `MAX_AGE_MS`).
const MAX_AGE: Duration = Duration::from_secs(2);
/// How long a viewer may take to find the broadcast and its first group.
const FIRST: Duration = Duration::from_secs(15);

/// When each viewer got each media object: (group, object) -> arrivals since the start.
type Arrivals = Arc<Mutex<HashMap<(u64, usize), Vec<Duration>>>>;

/// What one viewer saw.
#[derive(Debug, Default)]
struct Seen {
    objects: u64,
    statements: u64,
    bytes: u64,
    stalls: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let start = Instant::now();
    let spacing = Duration::from_secs_f64(args.ramp.max(0.0) / args.viewers.max(1) as f64);
    let end =
        start + Duration::from_secs_f64(args.ramp.max(0.0)) + Duration::from_secs(args.duration);
    let arrivals: Arrivals = Arc::default();
    let mut viewers = tokio::task::JoinSet::new();
    for n in 0..args.viewers {
        tokio::time::sleep_until(start + spacing * n as u32).await;
        let (args, arrivals) = (Arc::clone(&args), Arc::clone(&arrivals));
        viewers.spawn(async move { watch(&args, &arrivals, start, end).await });
    }
    let mut seen = Vec::new();
    let mut failures: HashMap<String, u64> = HashMap::new();
    while let Some(joined) = viewers.join_next().await {
        match joined.context("a viewer task")? {
            Ok(s) => seen.push(s),
            Err(e) => *failures.entry(format!("{e:#}")).or_default() += 1,
        }
    }
    let late = lateness(&arrivals.lock().unwrap_or_else(|e| e.into_inner()));
    let objects: Vec<u64> = seen.iter().map(|s| s.objects).collect();
    let report = json!({
        "viewers": args.viewers,
        "watched": seen.len(),
        "failed": failures,
        "seconds": args.duration,
        "objects": {
            "min": objects.iter().min(),
            "max": objects.iter().max(),
            "total": objects.iter().sum::<u64>(),
        },
        "statements": seen.iter().map(|s| s.statements).sum::<u64>(),
        "bytes": seen.iter().map(|s| s.bytes).sum::<u64>(),
        "stalls": seen.iter().map(|s| s.stalls).sum::<u64>(),
        "viewers_stalled": seen.iter().filter(|s| s.stalls > 0).count(),
        "late": Percentiles::of(late),
    });
    #[allow(clippy::print_stdout)] // the report is the program's output
    {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// One viewer: connect, subscribe the media and statements tracks, read both until `end`.
async fn watch(
    args: &Args,
    arrivals: &Arrivals,
    start: Instant,
    end: Instant,
) -> anyhow::Result<Seen> {
    let origin = moq_tokio::origin::spawn();
    let _connection = testkit::moq::pinned_client(&args.fingerprint)?
        .with_subscriber(origin.clone())
        .connect(args.relay.clone());
    let broadcast = tokio::time::timeout(FIRST, origin.consume().routed_broadcast(&args.broadcast))
        .await
        .context("the broadcast was not announced in time")??;
    // Groups up to 2 s old, as the player asks: a viewer a moment behind keeps its group.
    let lenient = || moq_net::track::Subscription::default().with_max_age(MAX_AGE);
    let media = broadcast.track(&args.track)?.subscribe(lenient()).await?;
    let statements = broadcast
        .track(&format!("{}.sig", args.track))?
        .subscribe(lenient())
        .await?;
    let (media, statements) = tokio::join!(
        read_media(media, arrivals, start, end),
        read_statements(statements, end)
    );
    let (mut seen, (count, bytes)) = (media?, statements?);
    seen.statements = count;
    seen.bytes += bytes;
    Ok(seen)
}

/// The media track until `end`: every object counted, its arrival noted, gaps counted as
/// stalls.
async fn read_media(
    mut track: moq_net::track::Subscriber,
    arrivals: &Arrivals,
    start: Instant,
    end: Instant,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    let mut last: Option<Instant> = None;
    // The first group a viewer gets is partly backfill (what the relay held when it
    // subscribed): its arrivals say nothing of the fan-out, so they are not noted.
    let mut first_group = true;
    loop {
        let wait = if last.is_some() {
            end
        } else {
            end.min(Instant::now() + FIRST)
        };
        let Ok(group) = tokio::time::timeout_at(wait, track.recv_group()).await else {
            break;
        };
        let Some(mut group) = group? else { break };
        let sequence = group.sequence;
        for index in 0.. {
            let Ok(frame) = tokio::time::timeout_at(end, group.read_frame()).await else {
                return Ok(seen);
            };
            let Some(frame) = frame? else { break };
            let now = Instant::now();
            if last.is_some_and(|at| now - at > STALL) {
                seen.stalls += 1;
            }
            last = Some(now);
            seen.objects += 1;
            seen.bytes += frame.payload.len() as u64;
            if !first_group {
                arrivals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry((sequence, index))
                    .or_default()
                    .push(now - start);
            }
        }
        first_group = false;
    }
    anyhow::ensure!(seen.objects > 0, "no media object");
    Ok(seen)
}

/// The statements track until `end`: objects and bytes.
async fn read_statements(
    mut track: moq_net::track::Subscriber,
    end: Instant,
) -> anyhow::Result<(u64, u64)> {
    let (mut count, mut bytes) = (0, 0);
    while let Ok(group) = tokio::time::timeout_at(end, track.recv_group()).await {
        let Some(mut group) = group? else { break };
        while let Ok(frame) = tokio::time::timeout_at(end, group.read_frame()).await {
            let Some(frame) = frame? else { break };
            count += 1;
            bytes += frame.payload.len() as u64;
        }
    }
    Ok((count, bytes))
}

/// For every object, each viewer's arrival after the first viewer's.
fn lateness(arrivals: &HashMap<(u64, usize), Vec<Duration>>) -> Vec<Duration> {
    let mut late = Vec::new();
    for times in arrivals.values() {
        let Some(first) = times.iter().min() else {
            continue;
        };
        late.extend(times.iter().map(|t| *t - *first));
    }
    late
}
