//! WHIP ingest (RFC 9725): a browser or an encoder publishes over WebRTC, and its H.264
//! and Opus enter the same pipeline as RTMP's, under the same stream keys, takeover and
//! numbering ([`crate::Registry`]).
//!
//! ```text
//!  load balancer ─ HTTPS /whip/… ─► WHIP HTTP (this ingest's own port)   whip, http
//!                                    │ offer → Rtc per session (str0m, ICE-lite,
//!                                    │ DTLS-SRTP by OpenSSL) → answer, Location
//!                                    ▼
//!  publisher ══ one UDP port ═══════► driver: one task, every session's Rtc   driver
//!            ╌╌ or TCP, same port ╌╌► (ICE-TCP: RFC 4571 frames, a task per connection)  tcp
//!                                    │ demultiplexed by ICE ufrag / remote address  demux, table
//!                                    │ H.264 AUs, Opus packets → MediaInput; PLIs   media
//!                                    ▼
//!                                  the stream's pipeline (as RTMP's)
//! ```
//!
//! - [`serve`]: the listeners (the WHIP HTTP port, the WebRTC UDP port and, unless
//!   turned off, ICE-TCP on the same port number) until the token fires;
//!   [`WebRtcServer::served`] waits for every session to end.
//! - `whip`: the HTTP resource (POST an offer, DELETE a session; RFC 9725's refusals).
//! - `http`: its listener (`plumbing`'s accept loop, hyper).
//! - `driver`: the UDP socket and the sessions' `Rtc`s, sans-IO cores driven by one task.
//! - `tcp`: ICE over TCP (RFC 6544, passive), for publishers whose networks let no UDP
//!   out: each connection's task moves frames between it and the driver, which binds the
//!   connection to the session its first STUN message names.
//! - `table`: which session a datagram belongs to; caps and deadlines (sans-IO, property
//!   tested).
//! - what needs no session is [`intake::webrtc`] (pure, so the fuzz harnesses reach it
//!   without OpenSSL): `demux`, what a datagram is and the ICE ufrag of a STUN message
//!   (the one parser of network bytes here; fuzzed); `sdp`, what an offer asks for,
//!   before str0m reads it (bounded; fuzzed); `media`, the adapter: frames with RTP times
//!   into [`intake::media::MediaInput`], and when to ask for a keyframe (sans-IO, property
//!   tested); the limits, [`WebRtcLimits`].
//!
//! str0m is 0.24.1, the last release that builds with the workspace's Rust 1.85 (0.25
//! needs 1.89); its two panics on outside input that 0.25 fixed are contained here (every
//! call into a session's `Rtc` under `catch_unwind`, one of them filtered out by `demux`).
//! Its DTLS 1.2 handshake is dimpl's (Rust, resending lost flights) over OpenSSL's
//! cryptography, its SRTP OpenSSL's (Debian's libssl), so either DTLS role works:
//! docs/architecture.md says why.

use std::net::SocketAddr;
use std::sync::Arc;

use domain::NodeId;
use intake::webrtc::WebRtcLimits;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::IngestError;
use crate::registry::Registry;

mod driver;
mod http;
mod table;
mod tcp;
mod whip;

/// Where WHIP is served.
#[derive(Debug)]
pub struct WebRtcListeners {
    /// The WHIP HTTP port (internal: the load balancer's upstream).
    pub http: TcpListener,
    /// The WebRTC media port: every session's ICE, DTLS and SRTP.
    pub udp: UdpSocket,
    /// ICE over TCP, on the media port's number: `None` turns it off (answers then list
    /// the UDP candidate only).
    pub tcp: Option<TcpListener>,
    /// The address publishers are told to send to (the ICE candidates): the UDP port's
    /// own, or the address it is reached at through NAT or a container's port mapping;
    /// the TCP candidate names the same address and port.
    pub advertised: SocketAddr,
}

/// The running WHIP side of an ingest.
#[derive(Debug)]
pub struct WebRtcServer {
    http_addr: SocketAddr,
    udp_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    task: Option<JoinHandle<()>>,
}

impl WebRtcServer {
    /// Where the WHIP HTTP port listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the WebRTC UDP port listens.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// Where ICE-TCP listens, if it is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Waits until the server stopped (after the token given to [`serve`] fired) and
    /// every session's publish ended.
    pub async fn served(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Serves WHIP for this ingest (`node`, named in every session's URL) on `listeners` until
/// `stop`, publishing through `registry`, within `limits`; its two listener tasks (`whip`,
/// the HTTP side, and `webrtc`, the UDP driver) hold guards of `liveness`.
pub fn serve(
    listeners: WebRtcListeners,
    node: NodeId,
    limits: WebRtcLimits,
    registry: Arc<Registry>,
    liveness: &plumbing::Liveness,
    stop: CancellationToken,
) -> Result<WebRtcServer, IngestError> {
    let WebRtcListeners {
        http,
        udp,
        tcp,
        advertised,
    } = listeners;
    let http_addr = http.local_addr()?;
    let udp_addr = udp.local_addr()?;
    let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
    let provider = Arc::new(str0m::crypto::from_feature_flags());
    let certificate = provider
        .dtls_provider
        .generate_certificate()
        .ok_or_else(|| {
            IngestError::Io(std::io::Error::other(
                "OpenSSL could not make the DTLS certificate",
            ))
        })?;
    let table: driver::Table = Arc::new(parking_lot::Mutex::new(table::SessionTable::new(
        table::Limits {
            max_sessions: limits.max_sessions.max(1),
            max_per_ip: limits.max_sessions_per_ip.max(1),
            setup_timeout: limits.setup_timeout,
            idle_timeout: limits.idle_timeout,
            max_addresses: 4,
        },
    )));
    let (commands, received) = mpsc::channel(256);
    let owners = TaskTracker::new();
    let metrics = registry.metrics().clone();
    let whip = Arc::new(whip::Whip {
        registry,
        table: Arc::clone(&table),
        driver: commands,
        node,
        advertised,
        provider,
        certificate,
        owners: owners.clone(),
        stop: stop.clone(),
        offering: whip::Offering::default(),
        ice_tcp: tcp.is_some(),
    });
    let app = whip::router(Arc::clone(&whip));
    drop(whip);
    // A publisher opens one connection, or one per network interface it has.
    let tcp_limits = tcp::TcpLimits {
        max_connections: limits.max_sessions.max(1) * 4,
        max_per_client: limits.max_sessions_per_ip.max(1) * 4,
        setup_timeout: limits.setup_timeout,
    };
    let driver = driver::Driver::new(udp, advertised, table, tcp_limits, metrics);
    // The driver outlives the HTTP side and the owners: they tell it to forget their
    // sessions on the way out. ICE-TCP's connections go with the driver.
    let driver_stop = CancellationToken::new();
    let driver_alive = liveness.guard("webrtc", &driver_stop);
    let http_alive = liveness.guard("whip", &stop);
    let (tcp_events, tcp_received) = match tcp {
        Some(listener) => {
            let (events, received) = mpsc::channel(1024);
            (Some((listener, events)), Some(received))
        }
        None => (None, None),
    };
    let tcp_stop = driver_stop.clone();
    let task = tokio::spawn(async move {
        let driving = driver.run(received, tcp_received, driver_stop.clone());
        let driver_task = tokio::spawn(async move {
            driver_alive.failpoint();
            driving.await;
            drop(driver_alive);
        });
        let tcp_task = tcp_events.map(|(listener, events)| {
            tokio::spawn(tcp::serve(
                listener,
                tcp_limits.max_connections,
                events,
                tcp_stop,
            ))
        });
        http_alive.failpoint();
        http::serve(http, app, stop).await;
        drop(http_alive);
        owners.close();
        owners.wait().await;
        driver_stop.cancel();
        let _ = driver_task.await;
        if let Some(tcp_task) = tcp_task {
            let _ = tcp_task.await;
        }
    });
    let ice_tcp = tcp_addr.map(|a| a.to_string());
    tracing::info!(%http_addr, %udp_addr, ?ice_tcp, %advertised, "WHIP listening");
    Ok(WebRtcServer {
        http_addr,
        udp_addr,
        tcp_addr,
        task: Some(task),
    })
}
