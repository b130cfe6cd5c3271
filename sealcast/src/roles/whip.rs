//! The WHIP side of an ingest (issue 32), as `sealcast ingest` and `up` start it: the WHIP
//! HTTP port (the load balancer's upstream; its URL goes into the ingest's signed presence
//! before distribution starts) and the WebRTC media port (UDP, and TCP on the same number
//! for ICE-TCP), whose address goes into every ICE candidate.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use domain::NodeId;
use ingest::webrtc::WebRtcListeners;
use intake::webrtc::WebRtcLimits;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::common::{bind, default_url, url_host};
use crate::cli::WebRtcArgs;

/// The WHIP ports, bound, with what the ingest announces.
pub(super) struct Bound {
    listeners: WebRtcListeners,
    /// The WHIP base URL the presence announces.
    pub(super) url: String,
}

/// Binds the WHIP HTTP port (`default_http` unless `--whip-listen`) and the WebRTC media
/// port, and works out the candidate address publishers are told to send to.
pub(super) async fn bind_ports(
    args: &WebRtcArgs,
    default_http: SocketAddr,
) -> anyhow::Result<Bound> {
    let http: TcpListener = bind(args.whip_listen.unwrap_or(default_http), "WHIP").await?;
    let (udp, tcp) = bind_media(args.webrtc_listen, !args.no_webrtc_tcp).await?;
    let local = udp.local_addr()?;
    let advertised = advertised(args.webrtc_advertise.as_deref(), local)?;
    let url = match &args.whip_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => default_url(http.local_addr()?),
    };
    Ok(Bound {
        listeners: WebRtcListeners {
            http,
            udp,
            tcp,
            advertised,
        },
        url,
    })
}

/// Binds the media port at `listen` on UDP and, with `tcp`, the same address and port on
/// TCP (ICE-TCP's candidate names the one advertised address for both). With port 0, a
/// port the kernel gave UDP that TCP cannot have is given back and another taken.
async fn bind_media(
    listen: SocketAddr,
    tcp: bool,
) -> anyhow::Result<(UdpSocket, Option<TcpListener>)> {
    const TRIES: usize = 16;
    for _ in 0..TRIES {
        let udp = UdpSocket::bind(listen)
            .await
            .with_context(|| format!("binding the WebRTC (WHIP media) port on {listen}"))?;
        if !tcp {
            return Ok((udp, None));
        }
        let at = udp.local_addr()?;
        match TcpListener::bind(at).await {
            Ok(listener) => return Ok((udp, Some(listener))),
            Err(_) if listen.port() == 0 => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                    "binding ICE-TCP (WHIP media over TCP) on {at}; --no-webrtc-tcp turns it off"
                )
                })
            }
        }
    }
    anyhow::bail!("no port free for both UDP and TCP on {listen} in {TRIES} tries")
}

/// The ICE candidate's address: `--webrtc-advertise` (an IP, or IP:PORT when a port
/// mapping changes the port too), else the bound address, with the address this host
/// reaches the outside from in place of an unspecified one (no packet is sent: connecting
/// a UDP socket only picks a route).
fn advertised(given: Option<&str>, local: SocketAddr) -> anyhow::Result<SocketAddr> {
    if let Some(given) = given {
        if let Ok(addr) = given.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let ip: IpAddr = given
            .parse()
            .with_context(|| format!("--webrtc-advertise {given:?} is neither IP nor IP:PORT"))?;
        return Ok(SocketAddr::new(ip, local.port()));
    }
    if !local.ip().is_unspecified() {
        return Ok(local);
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")?;
    let ip = probe
        .connect("192.0.2.1:9")
        .and_then(|()| probe.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    Ok(SocketAddr::new(ip, local.port()))
}

/// Starts the WHIP side of `ingest` on `bound` until `stop`; the addresses it serves on.
pub(super) fn start(
    ingest: &mut ingest::Running,
    bound: Bound,
    node: NodeId,
    limits: WebRtcLimits,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    ingest.serve_webrtc(bound.listeners, node, limits, stop)?;
    Ok(())
}

/// The lines `ingest` and `up` print for WHIP: the media port (UDP, and TCP when ICE-TCP
/// is on) and where the WHIP HTTP port listens.
pub(super) fn ready_lines(ingest: &ingest::Running) -> String {
    match ingest.webrtc_addrs() {
        Some((http, udp, tcp)) => {
            let mut lines = format!(
                "whip-internal http://{}/whip/\nwebrtc udp://{}\n",
                url_host(http),
                url_host(udp)
            );
            if let Some(tcp) = tcp {
                lines.push_str(&format!("webrtc-tcp tcp://{}\n", url_host(tcp)));
            }
            lines
        }
        None => String::new(),
    }
}
