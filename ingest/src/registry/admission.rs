//! What every protocol's server asks before a publish: [`Admit`] in,
//! [`Registry::admit`](super::Registry::admit) decides, [`Admission`] or [`NotAdmitted`]
//! out. The servers answer a refusal each in their protocol's terms.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::StreamName;

use crate::authority::AuthorityError;

/// The server a publisher came in through, named in the registry's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RTMP, legacy or Enhanced (`crate::rtmp`).
    Rtmp,
    /// SRT (`crate::srt`).
    Srt,
    /// WHIP (`crate::webrtc`).
    Whip,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Rtmp => "RTMP",
            Protocol::Srt => "SRT",
            Protocol::Whip => "WHIP",
        })
    }
}

/// A stream key as a publisher presented it: a secret, so its `Debug` shows none of it
/// and nothing here logs it.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey(pub(super) String);

impl StreamKey {
    /// The key as presented (RTMP's publish name, SRT's `streamid`, WHIP's bearer token).
    pub fn new(presented: impl Into<String>) -> Self {
        Self(presented.into())
    }
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamKey(..)")
    }
}

/// A publisher asking to publish, whatever its protocol: what
/// [`Registry::admit`](super::Registry::admit) decides on.
#[derive(Debug, Clone, Copy)]
pub struct Admit<'a> {
    /// The server it came in through.
    pub protocol: Protocol,
    /// The key it presented.
    pub key: &'a StreamKey,
    /// Its address: wrong keys are counted per client (an IPv4 address or an IPv6 /64,
    /// `domain::ClientGroup`), over every protocol.
    pub client: IpAddr,
    /// The stream it named beside the key (WHIP's URL), which the key must publish;
    /// `None`: whichever stream the key publishes (RTMP, SRT).
    pub stream: Option<&'a StreamName>,
}

/// A publish [`Registry::admit`](super::Registry::admit) let in: the stream the key
/// publishes. Made only there, so
/// [`Registry::start_publish`](super::Registry::start_publish) starts nothing that was not
/// admitted.
#[derive(Debug)]
pub struct Admission {
    pub(super) stream: StreamName,
    pub(super) protocol: Protocol,
    /// Its place under the ingest's stream cap until the publish is live (or not started).
    pub(super) seat: Seat,
}

/// A place under [`IngestSettings::max_streams`](super::IngestSettings::max_streams) held
/// by an admitted publish that has not started yet, so that publishers admitted at once
/// cannot together pass the cap; given back when dropped. Empty for a takeover (the stream
/// is live here already) or without a cap.
#[derive(Debug)]
pub(super) struct Seat(Option<Arc<AtomicUsize>>);

impl Seat {
    /// No place taken.
    pub(super) fn none() -> Self {
        Seat(None)
    }

    /// Takes one of `taken`'s places (the caller checked there is room, under the lock
    /// that orders every taking).
    pub(super) fn take(taken: &Arc<AtomicUsize>) -> Self {
        taken.fetch_add(1, Ordering::AcqRel);
        Seat(Some(Arc::clone(taken)))
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(taken) = self.0.take() {
            taken.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Admission {
    /// The stream it may publish.
    pub fn stream(&self) -> &StreamName {
        &self.stream
    }
}

/// Why [`Registry::admit`](super::Registry::admit) did not let a publisher in. Each but
/// [`NotAdmitted::Catalog`] is counted there in `sealcast_ingest_publishes{result}`
/// (`held_back`, `bad_key`, `full`, `hook_refused`); each server answers it in its own
/// terms.
#[derive(Debug, thiserror::Error)]
pub enum NotAdmitted {
    /// Too many wrong keys from this client lately: the key was not even looked at.
    #[error("too many wrong stream keys from this client lately; {wait:?} to wait")]
    HeldBack {
        /// How long the client must still wait.
        wait: Duration,
    },
    /// The catalog knows no such key, or the key publishes another stream than the one
    /// named. Counted against the client.
    #[error("wrong stream key")]
    WrongKey,
    /// The key is right, but this ingest already publishes as many streams as it may
    /// ([`IngestSettings::max_streams`](super::IngestSettings::max_streams)): another
    /// ingest may take it. Not counted against the client.
    #[error("this ingest publishes its maximum of {max} streams; publish to another ingest or retry later")]
    Full {
        /// The cap.
        max: usize,
    },
    /// The key is right, and the operator's `on_publish` hook refused the publish.
    #[error("the publish of {0} was refused by the on_publish hook")]
    HookRefused(StreamName),
    /// The catalog (or the hook) could not be asked: nothing is known of the key.
    #[error("catalog: {0}")]
    Catalog(#[source] AuthorityError),
}
