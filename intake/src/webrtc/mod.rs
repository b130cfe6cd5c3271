//! WHIP's protocol level (the server, str0m's sessions on OpenSSL's DTLS, is
//! `ingest::webrtc`): what reaches the WebRTC side from outside, read without a session.
//!
//! - [`demux`]: what a datagram on the WebRTC port is, and the ICE ufrag of a STUN
//!   message (the one parser of datagrams there; fuzzed, `fuzzing::whip_demux`).
//! - [`framing`]: ICE over TCP's frames (RFC 4571), each a datagram's bytes, read out of a
//!   TCP connection's stream (the one parser of its bytes; fuzzed,
//!   `fuzzing::ice_tcp_framing`).
//! - [`sdp`]: what an offer asks for, before str0m reads it (bounded; fuzzed,
//!   `fuzzing::whip_offer`).
//! - [`media`]: the adapter, frames with RTP times into [`crate::media::MediaInput`], and
//!   when to ask for a keyframe (sans-IO, property tested).
//! - [`WebRtcLimits`]: what strangers may hold of the WebRTC side (`[ingest] webrtc_*`).

use std::time::Duration;

pub mod demux;
pub mod framing;
pub mod media;
pub mod sdp;

/// Largest datagram the WebRTC side reads, and so the longest ICE-TCP frame it takes: more
/// than any path's MTU.
pub const MAX_DATAGRAM: usize = 2048;

/// What strangers may hold of the WebRTC side, each with a default and a config key
/// (`[ingest] webrtc_*`), counted in `sealcast_ingest_publishes{result}` when it bites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebRtcLimits {
    /// Sessions at once, being set up or live (`whip_over_session_cap`).
    pub max_sessions: usize,
    /// Sessions at once from one client, an IPv4 address or an IPv6 /64
    /// (`whip_over_session_cap`).
    pub max_sessions_per_ip: usize,
    /// From the answer to ICE and DTLS connected (`whip_setup_timeout`).
    pub setup_timeout: Duration,
    /// Longest silence of a connected session (`whip_idle_timeout`).
    pub idle_timeout: Duration,
}

impl Default for WebRtcLimits {
    fn default() -> Self {
        WebRtcLimits {
            max_sessions: 64,
            max_sessions_per_ip: 4,
            setup_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        }
    }
}
