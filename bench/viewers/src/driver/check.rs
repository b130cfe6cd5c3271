//! The driver's `check` family: a check a script makes of what it measured (a playlist's
//! window, the TLS the load balancers negotiated, a time-shift window), failing when it
//! does not hold. `ll-window` and `stream-window` exit 1 printing only what the Python
//! they replace printed (nothing; the reason).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

use super::common::read;
use crate::reports;

/// The checks `check` makes.
#[derive(Debug, Subcommand)]
pub(super) enum CheckCmd {
    /// The LL-HLS scripts' wait for a window to join: fails unless the media playlist
    /// (standard input) lists three `#EXTINF` and a part ([`viewers::live`]).
    LlWindow,
    /// bench/stream-memory.sh's: waits until every rung of STREAM lists a full window and
    /// has slid on by GRACE+1 segments; fails when it ended or after TIMEOUT
    /// ([`viewers::floor`]).
    StreamWindow {
        /// The node's base URL.
        node: String,
        /// The stream.
        stream: String,
        /// The rungs it must list.
        #[arg(long)]
        rungs: usize,
        /// The segments a full window lists.
        #[arg(long)]
        window: usize,
        /// The segments the node keeps after the window.
        #[arg(long)]
        grace: i64,
        /// Seconds to wait at most.
        #[arg(long)]
        timeout: f64,
    },
    /// bench/lb.sh's: both load balancers negotiated the same TLS (said on stderr).
    LbTls {
        /// The warm-up's loads, one JSON object a line.
        results: PathBuf,
    },
    /// bench/dvr-seek.sh's: the node's time-shift window of STREAM holds at least
    /// `--at-least` seconds (its `/api/v1/streams` on stdin).
    DvrWindow {
        /// The stream.
        stream: String,
        /// Seconds the window must hold.
        #[arg(long, allow_negative_numbers = true)]
        at_least: f64,
    },
    /// bench/dvr-seek.sh's: a media playlist lists at least `--at-least` seconds.
    PlaylistSeconds {
        /// The playlist.
        playlist: PathBuf,
        /// Seconds it must list.
        #[arg(long, allow_negative_numbers = true)]
        at_least: f64,
    },
}

/// Makes the check `which`: fails (or exits 1) when it does not hold.
pub(super) fn check(which: CheckCmd) -> anyhow::Result<()> {
    match which {
        CheckCmd::LbTls { results } => {
            let (line, same) = reports::lb::tls_check(&read(&results)?)?;
            eprintln!("{line}");
            if !same {
                bail!("the load balancers negotiated different TLS");
            }
        }
        CheckCmd::DvrWindow { stream, at_least } => {
            let listing = std::io::read_to_string(std::io::stdin()).context("reading stdin")?;
            let seconds = reports::dvr_seek::window_seconds(&listing, &stream)?;
            if !seconds.is_some_and(|s| s >= at_least) {
                bail!("the window of {stream} holds {seconds:?} s, not {at_least}");
            }
        }
        CheckCmd::PlaylistSeconds { playlist, at_least } => {
            let seconds = reports::dvr_seek::playlist_seconds(&read(&playlist)?)?;
            let enough = seconds >= at_least; // NaN is not enough, as in the Python
            if !enough {
                bail!("{} lists {seconds} s, not {at_least}", playlist.display());
            }
        }
        CheckCmd::LlWindow => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading the playlist")?;
            // Not listed: exit 1 saying nothing, as the Python did (scripts poll it).
            if !crate::live::window_listed(&text) {
                std::process::exit(1);
            }
        }
        CheckCmd::StreamWindow {
            node,
            stream,
            rungs,
            window,
            grace,
            timeout,
        } => {
            // Its reason alone on standard error, as the Python's `sys.exit(reason)`.
            if let Err(e) = crate::floor::wait(&node, &stream, rungs, window, grace, timeout) {
                eprintln!("{e:#}");
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
