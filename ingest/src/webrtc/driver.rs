//! The one task that owns the WebRTC UDP socket, the ICE-TCP connections' ends
//! ([`super::tcp`]) and every session's `str0m::Rtc`: it reads a datagram (or a frame of a
//! TCP connection), finds its session ([`intake::webrtc::demux`], [`super::table`]), feeds
//! it in, sends what the session wants sent, and hands the session's media to its pipeline
//! ([`intake::webrtc::media`]); it wakes for the earliest of the sessions' own timers and the
//! table's setup and idle deadlines.
//!
//! Nothing here waits on anything but the socket, its command channel and its timer: media
//! goes to a pipeline with `try_send` (a full pipeline queue costs that stream a keyframe
//! interval of video, never the other streams their turn), datagrams go out with
//! `try_send_to` (a full socket buffer drops a datagram, which RTP and DTLS retransmission
//! and keyframe requests recover from), and a TCP connection's frames into its writer's
//! queue with `try_send` (a full queue drops a frame the same way). Every call into a session's `Rtc` runs under
//! `catch_unwind`: a panic in str0m for one peer's bytes (0.24 has two known ones,
//! `demux` keeps one away) ends that session, not the ingest.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::paths::WhipSessionId;
use domain::StreamName;
use intake::media::MediaInput;
use intake::webrtc::demux::{self, Datagram};
use intake::webrtc::media::{Converted, Converter, KeyframeRequest};
use intake::webrtc::MAX_DATAGRAM;
use parking_lot::Mutex;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaData, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::table::{Expiry, SessionTable};
use super::tcp::{Binding, TcpConns, TcpEvent, TcpLimits};
use crate::metrics::IngestMetrics;

/// Outputs drained from one session per turn at most, so that one session cannot hold the
/// task (it is polled again at its next timeout, which str0m sets to now when it has more).
const MAX_OUTPUTS_PER_TURN: usize = 4096;

/// What a session's owner and the driver share about one session.
#[derive(Debug, Clone)]
pub(crate) struct SessionHandle {
    /// The stream it publishes (a DELETE must name it).
    pub(crate) stream: StreamName,
    /// Cancelled by the driver when the session ended on its side (the peer went, a
    /// deadline passed, the pipeline stopped).
    pub(crate) dropped: CancellationToken,
    /// Cancelled by a DELETE.
    pub(crate) deleted: CancellationToken,
}

/// The sessions' table, shared with the WHIP handlers.
pub(crate) type Table = Arc<Mutex<SessionTable<WhipSessionId, SessionHandle>>>;

/// What the WHIP handlers and session owners tell the driver.
#[derive(Debug)]
pub(crate) enum Command {
    /// A session was answered: its `Rtc` is the driver's from now on.
    Add(Box<NewSession>),
    /// End a session (DELETE, takeover, an operator, shutdown): disconnect and forget it.
    Remove(WhipSessionId),
}

/// A session handed to the driver.
#[derive(Debug)]
pub(crate) struct NewSession {
    pub(crate) id: WhipSessionId,
    pub(crate) rtc: Rtc,
    pub(crate) stream: StreamName,
    /// The pipeline's input.
    pub(crate) input: mpsc::Sender<MediaInput>,
    /// The ladder's segment target, which keyframe requests aim at.
    pub(crate) segment_target: Duration,
}

/// A session the driver runs.
struct Session {
    rtc: Rtc,
    stream: StreamName,
    input: mpsc::Sender<MediaInput>,
    converter: Converter,
    /// The video's media id, once its first frame came.
    video: Option<Mid>,
    /// When str0m wants to be polled next.
    next: Instant,
}

/// Why the driver ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// The peer went away (DTLS closed, str0m gave up).
    Gone,
    /// The pipeline stopped taking media.
    PipelineStopped,
    /// str0m panicked on this session's input.
    Panicked,
    /// A table deadline.
    Expired(Expiry),
}

impl Close {
    /// The `sealcast_ingest_publishes{result}` it is counted as, if any.
    fn counted_as(self) -> Option<&'static str> {
        match self {
            Close::Expired(Expiry::Setup) => Some("whip_setup_timeout"),
            Close::Expired(Expiry::Idle) => Some("whip_idle_timeout"),
            Close::Panicked => Some("whip_protocol_error"),
            Close::Gone | Close::PipelineStopped => None,
        }
    }
}

/// The driver's state.
pub(crate) struct Driver {
    socket: UdpSocket,
    /// The address in the ICE candidates (UDP, and TCP when on): what str0m sees as every
    /// datagram's and frame's destination.
    advertised: SocketAddr,
    table: Table,
    sessions: HashMap<WhipSessionId, Session>,
    /// ICE-TCP connections by their peer's address.
    conns: TcpConns,
    metrics: IngestMetrics,
}

impl Driver {
    /// A driver for `socket`, whose sessions answered with a candidate at `advertised`.
    pub(crate) fn new(
        socket: UdpSocket,
        advertised: SocketAddr,
        table: Table,
        tcp_limits: TcpLimits,
        metrics: IngestMetrics,
    ) -> Self {
        Driver {
            socket,
            advertised,
            table,
            sessions: HashMap::new(),
            conns: TcpConns::new(tcp_limits),
            metrics,
        }
    }

    /// Runs until `stop` fires or every command sender is gone; then disconnects every
    /// session still there. `tcp` brings the ICE-TCP connections' events, if ICE-TCP is on.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut tcp: Option<mpsc::Receiver<TcpEvent>>,
        stop: CancellationToken,
    ) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let wake = self.next_wake();
            tokio::select! {
                () = stop.cancelled() => break,
                command = commands.recv() => match command {
                    Some(Command::Add(new)) => self.add(*new),
                    Some(Command::Remove(id)) => self.remove(id, None),
                    None => break,
                },
                event = next_tcp_event(&mut tcp) => match event {
                    Some(event) => {
                        let now = Instant::now();
                        if let Some((peer, frame)) = self.conns.event(event, now) {
                            self.frame(peer, &frame, now);
                        }
                    }
                    None => tcp = None,
                },
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, source)) => {
                        let datagram = buf.get(..len).unwrap_or_default();
                        self.datagram(datagram, source, Instant::now());
                    }
                    // ICMP port unreachable and the like, reported on the next read.
                    Err(e) => tracing::debug!(error = %e, "WebRTC socket read failed"),
                },
                () = sleep_until(wake) => self.timeouts(Instant::now()),
            }
        }
        let ids: Vec<WhipSessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.remove(id, None);
        }
        self.conns.close_all();
    }

    /// The earliest of the sessions' timers, the table's deadlines and the setup
    /// deadlines of TCP connections that named no session yet.
    fn next_wake(&self) -> Option<Instant> {
        let sessions = self.sessions.values().map(|s| s.next).min();
        let table = self.table.lock().next_deadline();
        let unbound = self.conns.next_deadline();
        [sessions, table, unbound].into_iter().flatten().min()
    }

    fn add(&mut self, new: NewSession) {
        let now = Instant::now();
        let session = Session {
            rtc: new.rtc,
            stream: new.stream,
            input: new.input,
            converter: Converter::new(new.segment_target),
            video: None,
            next: now,
        };
        self.sessions.insert(new.id, session);
        // Nothing arrives for it before its first poll: str0m's first timeout is now.
        self.drive(new.id, now);
    }

    /// One datagram from `source`.
    fn datagram(&mut self, datagram: &[u8], source: SocketAddr, now: Instant) {
        let id = match demux::classify(datagram) {
            Datagram::Stun(stun) => {
                if stun.integrity_first {
                    tracing::debug!(%source, "dropped a STUN message with MESSAGE-INTEGRITY first");
                    return;
                }
                let table = self.table.lock();
                stun.local_ufrag
                    .and_then(|ufrag| table.by_ufrag(ufrag))
                    .or_else(|| table.by_address(source))
            }
            Datagram::Dtls | Datagram::Rtp => self.table.lock().by_address(source),
            Datagram::Other => None,
        };
        let Some(id) = id else {
            // Strays and garbage: nothing of ours, nothing answered.
            return;
        };
        self.deliver(id, Protocol::Udp, source, datagram, now);
    }

    /// One frame of `peer`'s TCP connection: its first must be a STUN message naming a
    /// session's ufrag, which binds the connection to that session; every frame after it
    /// is that session's.
    fn frame(&mut self, peer: SocketAddr, frame: &[u8], now: Instant) {
        let bound = match self.conns.binding(peer) {
            Binding::Unknown => return,
            Binding::Bound(id) => Some(id),
            Binding::Unbound => None,
        };
        let stun = match demux::classify(frame) {
            Datagram::Stun(stun) => Some(stun),
            _ => None,
        };
        if stun.is_some_and(|s| s.integrity_first) {
            tracing::debug!(%peer, "dropped a STUN message with MESSAGE-INTEGRITY first");
            return;
        }
        let id = match bound {
            Some(id) => id,
            None => {
                let named = stun
                    .and_then(|s| s.local_ufrag)
                    .and_then(|ufrag| self.table.lock().by_ufrag(ufrag))
                    .filter(|id| self.sessions.contains_key(id));
                let Some(id) = named else {
                    tracing::debug!(%peer, "ICE-TCP connection closed: its first frame named no session");
                    self.conns.close(peer);
                    return;
                };
                self.conns.bind(peer, id);
                id
            }
        };
        self.deliver(id, Protocol::Tcp, peer, frame, now);
    }

    /// One datagram or frame from `source` for session `id`, into its `Rtc`.
    fn deliver(
        &mut self,
        id: WhipSessionId,
        proto: Protocol,
        source: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let input = match Receive::new(proto, source, self.advertised, datagram) {
            Ok(receive) => Input::Receive(now, receive),
            Err(_) => return,
        };
        let handled = catch_unwind(AssertUnwindSafe(|| session.rtc.handle_input(input)));
        match handled {
            Ok(Ok(())) => self.drive(id, now),
            Ok(Err(e)) => {
                tracing::debug!(stream = %session.stream, error = %e, "a WebRTC datagram was refused");
                self.drive(id, now);
            }
            Err(_) => self.remove(id, Some(Close::Panicked)),
        }
    }

    /// Timers: str0m's for the sessions due, then the table's deadlines.
    fn timeouts(&mut self, now: Instant) {
        let due: Vec<WhipSessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.next <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(session) = self.sessions.get_mut(&id) else {
                continue;
            };
            let handled = catch_unwind(AssertUnwindSafe(|| {
                session.rtc.handle_input(Input::Timeout(now))
            }));
            match handled {
                Ok(_) => self.drive(id, now),
                Err(_) => self.remove(id, Some(Close::Panicked)),
            }
        }
        let expired = self.table.lock().expired(now);
        for (id, expiry) in expired {
            self.remove(id, Some(Close::Expired(expiry)));
        }
        self.conns.expire(now);
    }

    /// Drains session `id`'s outputs: datagrams out, events handled, its next timer noted.
    fn drive(&mut self, id: WhipSessionId, now: Instant) {
        let mut close = None;
        for _ in 0..MAX_OUTPUTS_PER_TURN {
            let Some(session) = self.sessions.get_mut(&id) else {
                return;
            };
            if !session.rtc.is_alive() {
                close = Some(Close::Gone);
                break;
            }
            let output = match catch_unwind(AssertUnwindSafe(|| session.rtc.poll_output())) {
                Ok(Ok(output)) => output,
                Ok(Err(e)) => {
                    tracing::debug!(stream = %session.stream, error = %e, "a WebRTC session failed");
                    close = Some(Close::Gone);
                    break;
                }
                Err(_) => {
                    close = Some(Close::Panicked);
                    break;
                }
            };
            match output {
                Output::Timeout(at) => {
                    session.next = at.max(now);
                    break;
                }
                Output::Transmit(transmit) => self.transmit(id, &transmit),
                Output::Event(event) => {
                    if let Some(reason) = self.event(id, event, now) {
                        close = Some(reason);
                        break;
                    }
                }
            }
        }
        if let Some(reason) = close {
            self.remove(id, Some(reason));
        }
    }

    /// Sends what session `id` wants sent: a datagram from the UDP socket, or a frame into
    /// the TCP connection it goes to.
    fn transmit(&mut self, id: WhipSessionId, transmit: &Transmit) {
        match transmit.proto {
            Protocol::Udp => {
                // Sent to: so datagrams from there are this session's (str0m answers only
                // checks whose integrity verified).
                self.table.lock().learn(id, transmit.destination);
                if let Err(e) = self
                    .socket
                    .try_send_to(&transmit.contents, transmit.destination)
                {
                    tracing::debug!(error = %e, "a WebRTC datagram was not sent");
                }
            }
            _ => self
                .conns
                .send(id, transmit.destination, &transmit.contents),
        }
    }

    /// One event of session `id`; `Some` when it ends the session.
    fn event(&mut self, id: WhipSessionId, event: Event, now: Instant) -> Option<Close> {
        match event {
            Event::Connected => {
                self.table.lock().connected(id, now);
                if let Some(s) = self.sessions.get(&id) {
                    tracing::info!(stream = %s.stream, "WHIP session connected");
                }
                None
            }
            // Not an end: an ICE-lite agent calls a pair disconnected 15 s after the
            // peer's last check, and FFmpeg's muxer checks only while connecting. The
            // media's idle timeout ends a session whose peer went away.
            Event::IceConnectionStateChange(state) => {
                if let Some(s) = self.sessions.get(&id) {
                    tracing::debug!(stream = %s.stream, ?state, "WHIP session ICE state");
                }
                None
            }
            Event::MediaData(data) => self.media(id, data, now),
            _ => None,
        }
    }

    /// A depacketized frame of session `id`, into its pipeline.
    fn media(&mut self, id: WhipSessionId, data: MediaData, now: Instant) -> Option<Close> {
        let session = self.sessions.get_mut(&id)?;
        let converted = match data.params.spec().codec {
            Codec::H264 => {
                session.video = Some(data.mid);
                session.converter.video(
                    data.time.numer(),
                    data.network_time,
                    data.contiguous,
                    &data.data,
                )
            }
            Codec::Opus => session.converter.audio(
                data.time.numer(),
                data.time.denom(),
                data.network_time,
                &data.data,
            ),
            _ => return None,
        };
        let Converted {
            inputs,
            keyframe_request,
            dropped,
        } = converted;
        if let Some(why) = dropped {
            tracing::trace!(stream = %session.stream, ?why, "a WebRTC frame was dropped");
        }
        for input in inputs {
            match session.input.try_send(input) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(stream = %session.stream, "the stream's pipeline is behind; dropping video until the next keyframe");
                    session.converter.overflowed();
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Some(Close::PipelineStopped),
            }
        }
        if let (Some(kind), Some(mid)) = (keyframe_request, session.video) {
            request_keyframe(&mut session.rtc, mid, kind);
        }
        self.table.lock().touch(id, now);
        None
    }

    /// Disconnects and forgets session `id`, telling its owner why (`None`: the owner
    /// asked).
    fn remove(&mut self, id: WhipSessionId, reason: Option<Close>) {
        let handle = self.table.lock().remove(id);
        if let Some(mut session) = self.sessions.remove(&id) {
            // A DTLS close alert, if the session got that far; best effort.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                session.rtc.disconnect();
                for _ in 0..16 {
                    match session.rtc.poll_output() {
                        Ok(Output::Transmit(t)) if t.proto == Protocol::Udp => {
                            let _ = self.socket.try_send_to(&t.contents, t.destination);
                        }
                        Ok(Output::Transmit(t)) => self.conns.send(id, t.destination, &t.contents),
                        Ok(Output::Event(_)) => {}
                        _ => break,
                    }
                }
            }));
            // Its TCP connections close; the alert queued for them goes only if their task
            // writes it before it sees the close (best effort, as a datagram is).
            self.conns.close_session(id);
            if let Some(reason) = reason {
                tracing::info!(stream = %session.stream, ?reason, "WHIP session ended");
            }
        }
        if let Some(reason) = reason {
            if let Some(result) = reason.counted_as() {
                self.metrics.publish(result);
            }
            if let Some(handle) = handle {
                handle.dropped.cancel();
            }
        }
    }
}

/// Asks session `rtc`'s publisher for a keyframe on `mid`, the way it negotiated (a FIR
/// where it takes only PLIs is sent as a PLI, and the other way round).
fn request_keyframe(rtc: &mut Rtc, mid: Mid, kind: KeyframeRequest) {
    let Some(mut writer) = rtc.writer(mid) else {
        return;
    };
    let (wanted, other) = match kind {
        KeyframeRequest::Pli => (KeyframeRequestKind::Pli, KeyframeRequestKind::Fir),
        KeyframeRequest::Fir => (KeyframeRequestKind::Fir, KeyframeRequestKind::Pli),
    };
    let kind = if writer.is_request_keyframe_possible(wanted) {
        wanted
    } else if writer.is_request_keyframe_possible(other) {
        other
    } else {
        return;
    };
    let _ = catch_unwind(AssertUnwindSafe(|| writer.request_keyframe(None, kind)));
}

/// The next event of the ICE-TCP connections, or never when ICE-TCP is off.
async fn next_tcp_event(tcp: &mut Option<mpsc::Receiver<TcpEvent>>) -> Option<TcpEvent> {
    match tcp {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
