mod input;
mod session;
mod statistics;

use std::{collections::HashMap, fmt::Debug, net::SocketAddr, time::Duration, time::Instant};

use crate::{
    packet::*,
    protocol::{
        pending_connection::{
            cookie::CookieKey,
            listen::{induction_response, rejection_packet, Listen},
        },
        time::Timer,
    },
    settings::ConnInitSettings,
};

use session::*;

pub use input::*;
pub use statistics::*;

/// sealcast: how long a caller may take from a conclusion with a valid cookie to its
/// connection (access control included) before the listener gives up on it (FORK.md).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(5);

/// sealcast: callers in their handshake at once; more are rejected (`SRT_REJ_RESOURCE`)
/// without state (FORK.md).
pub const MAX_PENDING: usize = 1024;

#[derive(Clone, Debug)]
pub struct ListenerSettings {}

/// sealcast: a session and when it began, to give up on it (FORK.md).
#[derive(Debug)]
struct Session {
    state: SessionState,
    since: Instant,
}

/// The listener of many callers on one socket.
///
/// sealcast: an address:port the listener does not know gets no state until its
/// conclusion carries a cookie this listener's secret made for it; inductions are
/// answered statelessly, anything else from an unknown address is dropped. Upstream kept a
/// session per address:port that sent anything and never removed it (FORK.md).
#[derive(Debug)]
pub struct MultiplexListener {
    start_time: Instant,
    local_address: SocketAddr,
    settings: ConnInitSettings,
    cookies: CookieKey,
    sessions: HashMap<SessionId, Session>,
    stats: ListenerStatistics,
    stats_timer: Timer,
}

impl MultiplexListener {
    pub fn new(now: Instant, local_address: SocketAddr, settings: ConnInitSettings) -> Self {
        Self::with_cookies(now, local_address, settings, CookieKey::random(now))
    }

    /// sealcast: a listener whose cookies are made with `cookies` (FORK.md).
    pub fn with_cookies(
        now: Instant,
        local_address: SocketAddr,
        settings: ConnInitSettings,
        cookies: CookieKey,
    ) -> Self {
        Self {
            start_time: now,
            local_address,
            settings,
            cookies,
            sessions: Default::default(),
            stats: Default::default(),
            stats_timer: Timer::new(now, Duration::from_secs(1)),
        }
    }

    /// sealcast: sessions still in their handshake (bounded by [`MAX_PENDING`]).
    pub fn pending_sessions(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| !s.state.is_open())
            .count()
    }

    /// sealcast: every session the listener holds, open ones included.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) -> Action {
        match input {
            Input::Packet(packet) => self.handle_input_packet(now, packet),
            Input::AccessResponse(response) => self.handle_input_access_response(now, response),
            Input::Timer => self.handle_timer(now),
            Input::Success(result_of) => self.handle_success(now, result_of),
            Input::Failure(result_of) => self.handle_failure(now, result_of),
        }
    }

    fn handle_input_packet(&mut self, now: Instant, packet: ReceivePacketResult) -> Action {
        match packet {
            Ok(packet) => self.handle_packet(now, packet),
            Err(error) => self.handle_packet_receive_error(now, error),
        }
    }

    fn handle_input_access_response(
        &mut self,
        now: Instant,
        response: Option<(SessionId, AccessControlResponse)>,
    ) -> Action {
        match response {
            Some((session_id, response)) => {
                self.handle_access_control_response(now, session_id, response)
            }
            None => self.handle_close(),
        }
    }

    fn handle_packet(&mut self, now: Instant, packet: (Packet, SocketAddr)) -> Action {
        self.stats.rx_packets += 1;
        //self.stats.rx_bytes += packet
        let session_id = SessionId(packet.1);
        if let Some(session) = self.sessions.get_mut(&session_id) {
            return session.state.handle_packet(now, session_id, packet);
        }
        self.handle_unknown_peer(now, packet)
    }

    /// sealcast: a datagram from an address:port without a session (FORK.md).
    fn handle_unknown_peer(
        &mut self,
        now: Instant,
        (packet, from): (Packet, SocketAddr),
    ) -> Action {
        let Packet::Control(ControlPacket {
            timestamp,
            control_type: ControlTypes::Handshake(shake),
            ..
        }) = &packet
        else {
            return Action::WaitForInput;
        };
        match shake.shake_type {
            ShakeType::Induction => {
                let cookie = self.cookies.cookie(&from, now);
                let response =
                    induction_response(&self.settings, *timestamp, shake.clone(), cookie);
                Action::SendPacket((response, from))
            }
            ShakeType::Conclusion if self.cookies.verify(&from, now, shake.syn_cookie) => {
                if self.pending_sessions() >= MAX_PENDING {
                    let reason = CoreRejectReason::Resource.into();
                    let rejection = rejection_packet(&self.settings, shake, *timestamp, reason);
                    return Action::SendPacket((rejection, from));
                }
                let session_id = SessionId(from);
                let listen = Listen::after_cookie(
                    self.settings.clone(),
                    true,
                    self.cookies.clone(),
                    now,
                    from,
                    *timestamp,
                    shake,
                );
                let session = self.sessions.entry(session_id).or_insert(Session {
                    state: SessionState::after_cookie(listen),
                    since: now,
                });
                session.state.handle_packet(now, session_id, (packet, from))
            }
            _ => Action::WaitForInput,
        }
    }

    fn handle_packet_receive_error(&mut self, now: Instant, error: ReceivePacketError) -> Action {
        // sealcast: anyone can send a datagram that does not parse; one warning each is a
        // log anyone can fill, so it is a debug line, counted in the statistics (FORK.md).
        log::debug!(
            "{:?}|listen:{}|packet - {:?}",
            TimeSpan::from_interval(self.start_time, now),
            self.local_address.port(),
            error
        );

        use ReceivePacketError::*;
        match error {
            Parse(_) => self.stats.rx_parse_errors += 1,
            Io(_) => self.stats.rx_io_errors += 1,
        }

        Action::WaitForInput
    }

    fn handle_access_control_response(
        &mut self,
        now: Instant,
        session_id: SessionId,
        response: AccessControlResponse,
    ) -> Action {
        match self.sessions.get_mut(&session_id) {
            Some(session) => session
                .state
                .handle_access_control_response(now, session_id, response),
            None => Action::DropConnection(session_id),
        }
    }

    fn handle_timer(&mut self, now: Instant) -> Action {
        if let Some(action) = self.expire_one(now) {
            return action;
        }
        if self.stats_timer.check_expired(now).is_some() {
            Action::UpdateStatistics(&self.stats)
        } else {
            // TODO: create an action that returns an action with an Iterator that ticks time forward
            //  for all the sessions, yielding the results to the I/O loop
            Action::WaitForInput
        }
    }

    /// sealcast: gives up on one session past [`PENDING_TIMEOUT`] in its handshake, if
    /// any; the I/O loop's answer to its action brings the next one (FORK.md).
    fn expire_one(&mut self, now: Instant) -> Option<Action<'static>> {
        let (session_id, session) = self.sessions.iter_mut().find(|(_, s)| {
            !s.state.is_open() && now.saturating_duration_since(s.since) >= PENDING_TIMEOUT
        })?;
        let session_id = *session_id;
        // Once given up on, it goes at the next chance even if its rejection fails.
        session.since = now.checked_sub(PENDING_TIMEOUT).unwrap_or(session.since);
        Some(session.state.expire(session_id))
    }

    fn handle_success(&mut self, now: Instant, result_of: ResultOf) -> Action {
        use ResultOf::*;
        match result_of {
            SendPacket(_) => {
                self.stats.tx_packets += 1;
            }
            RequestAccess(_) => {
                self.stats.cx_inbound += 1;
            }
            RejectConnection(session_id) => {
                self.stats.cx_rejected += 1;
                self.sessions.remove(&session_id);
                return self.expire_one(now).unwrap_or(Action::WaitForInput);
            }
            OpenConnection(_) => {
                self.stats.cx_opened += 1;
            }
            DelegatePacket(_) => {
                self.stats.delegated_packets += 1;
            }
            DropConnection(session_id) => {
                self.stats.cx_dropped += 1;
                self.sessions.remove(&session_id);
                return self.expire_one(now).unwrap_or(Action::WaitForInput);
            }
            UpdateStatistics => {}
        }
        Action::WaitForInput
    }

    fn handle_failure(&mut self, now: Instant, result_of: ResultOf) -> Action {
        self.warn(now, "failure", &result_of);

        use ResultOf::*;
        match result_of {
            DelegatePacket(session_id) => Action::DropConnection(session_id),
            // sealcast: a session whose rejection or drop could not be carried out is
            // forgotten all the same, not kept for ever (FORK.md).
            RejectConnection(session_id) | DropConnection(session_id) => {
                self.sessions.remove(&session_id);
                Action::WaitForInput
            }
            // TODO: stats? anything else?
            _ => Action::WaitForInput,
        }
    }

    fn handle_close(&mut self) -> Action {
        Action::Close
    }

    fn warn(&self, now: Instant, tag: &str, debug: &impl Debug) {
        log::warn!(
            "{:?}|listen:{}|{} - {:?}",
            TimeSpan::from_interval(self.start_time, now),
            self.local_address.port(),
            tag,
            debug
        );
    }
}

#[cfg(test)]
mod test {
    use assert_matches::assert_matches;
    use std::{
        net::{IpAddr, Ipv4Addr},
        time::Duration,
    };

    use rand::random;

    use crate::options::{KeySize, PacketCount, PacketSize, SrtVersion};

    use super::*;

    fn conn_addr() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 8765)
    }

    fn test_induction() -> HandshakeControlInfo {
        HandshakeControlInfo {
            init_seq_num: random(),
            max_packet_size: PacketSize(1316),
            max_flow_size: PacketCount(256_000),
            shake_type: ShakeType::Induction,
            socket_id: SocketId(15),
            syn_cookie: 0,
            peer_addr: IpAddr::from([127, 0, 0, 1]),
            info: HandshakeVsInfo::V5(HsV5Info::default()),
        }
    }

    fn test_conclusion(syn_cookie: i32) -> HandshakeControlInfo {
        HandshakeControlInfo {
            init_seq_num: random(),
            max_packet_size: PacketSize(1316),
            max_flow_size: PacketCount(256_000),
            shake_type: ShakeType::Conclusion,
            socket_id: SocketId(15),
            syn_cookie,
            peer_addr: IpAddr::from([127, 0, 0, 1]),
            info: HandshakeVsInfo::V5(HsV5Info {
                key_size: KeySize::Unspecified,
                ext_hs: Some(SrtControlPacket::HandshakeRequest(SrtHandshake {
                    version: SrtVersion::CURRENT,
                    flags: SrtShakeFlags::SUPPORTED,
                    send_latency: Duration::from_secs(1),
                    recv_latency: Duration::from_secs(2),
                })),
                ext_km: None,
                ext_group: None,
                sid: None,
                ext_config: Vec::new(),
            }),
        }
    }

    /// sealcast: the cookie an induction's answer carries.
    fn cookie_of(action: &Action) -> i32 {
        match action {
            Action::SendPacket((
                Packet::Control(ControlPacket {
                    control_type: ControlTypes::Handshake(shake),
                    ..
                }),
                _,
            )) => shake.syn_cookie,
            other => panic!("expected an induction's answer, got {other:?}"),
        }
    }

    fn dest_sock_id() -> SocketId {
        SocketId(6)
    }

    fn session_id() -> SessionId {
        SessionId(conn_addr())
    }

    fn build_hs_pack(i: HandshakeControlInfo) -> Packet {
        Packet::Control(ControlPacket {
            timestamp: TimeStamp::from_micros(0),
            dest_sockid: dest_sock_id(),
            control_type: ControlTypes::Handshake(i),
        })
    }

    #[test]
    fn connect() {
        let settings = ConnInitSettings::default();
        let local = "0.0.0.0:2000".parse().unwrap();
        let mut listener = MultiplexListener::new(Instant::now(), local, settings);

        let packet = build_hs_pack(test_induction());
        let action =
            listener.handle_input(Instant::now(), Input::Packet(Ok((packet, conn_addr()))));
        let cookie = cookie_of(&action);

        let packet = build_hs_pack(test_conclusion(cookie));
        let action =
            listener.handle_input(Instant::now(), Input::Packet(Ok((packet, conn_addr()))));
        assert_matches!(action, Action::RequestAccess(_, _));

        let action = listener.handle_input(
            Instant::now(),
            Input::AccessResponse(Some((session_id(), AccessControlResponse::Accepted(None)))),
        );
        assert_matches!(action, Action::OpenConnection(_, _));

        use crate::listener::ResultOf::*;

        let action =
            listener.handle_input(Instant::now(), Input::Success(OpenConnection(session_id())));
        assert_matches!(action, Action::WaitForInput);

        let packet = build_hs_pack(test_conclusion(cookie));
        let action =
            listener.handle_input(Instant::now(), Input::Packet(Ok((packet, conn_addr()))));
        assert_matches!(action, Action::DelegatePacket(_, _));
    }

    #[test]
    fn reject() {
        let settings = ConnInitSettings::default();
        let local = "127.0.0.1:2000".parse().unwrap();
        let mut listener = MultiplexListener::new(Instant::now(), local, settings);

        let packet = build_hs_pack(test_induction());
        let action =
            listener.handle_input(Instant::now(), Input::Packet(Ok((packet, conn_addr()))));
        let cookie = cookie_of(&action);

        let packet = build_hs_pack(test_conclusion(cookie));
        let action =
            listener.handle_input(Instant::now(), Input::Packet(Ok((packet, conn_addr()))));
        assert_matches!(action, Action::RequestAccess(_, _));

        let action = listener.handle_input(
            Instant::now(),
            Input::AccessResponse(Some((
                session_id(),
                AccessControlResponse::Rejected(RejectReason::User(100)),
            ))),
        );
        assert_matches!(
            action,
            Action::RejectConnection(_, Some((Packet::Control(_), _)))
        );

        let packet = build_hs_pack(test_conclusion(cookie));
        let action =
            listener.handle_input(Instant::now(), Input::Packet(Ok((packet, conn_addr()))));
        assert_matches!(
            action,
            Action::RejectConnection(_, Some((Packet::Control(_), _)))
        );

        let action = listener.handle_input(
            Instant::now(),
            Input::Success(ResultOf::RejectConnection(session_id())),
        );
        assert_eq!(action, Action::WaitForInput);
    }
}

/// sealcast's changes (FORK.md).
#[cfg(test)]
mod sealcast_tests {
    use std::net::{IpAddr, Ipv4Addr};

    use assert_matches::assert_matches;

    use crate::{
        options::{PacketCount, PacketSize, SrtVersion},
        protocol::pending_connection::cookie::gen_cookie,
    };

    use super::*;

    fn local() -> SocketAddr {
        "127.0.0.1:9000".parse().expect("address")
    }

    /// The n-th of many callers: distinct address:port pairs on 127/8.
    fn caller(n: u32) -> SocketAddr {
        let [_, b, c, d] = (n / 50_000).to_be_bytes();
        let port = 10_000 + (n % 50_000) as u16;
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, b, c, d.wrapping_add(1))),
            port,
        )
    }

    fn handshake(shake_type: ShakeType, syn_cookie: i32) -> Packet {
        Packet::Control(ControlPacket {
            timestamp: TimeStamp::from_micros(0),
            dest_sockid: SocketId(0),
            control_type: ControlTypes::Handshake(HandshakeControlInfo {
                init_seq_num: SeqNumber::new_truncate(1),
                max_packet_size: PacketSize(1316),
                max_flow_size: PacketCount(256_000),
                shake_type,
                socket_id: SocketId(15),
                syn_cookie,
                peer_addr: IpAddr::from([127, 0, 0, 1]),
                info: HandshakeVsInfo::V5(if shake_type == ShakeType::Induction {
                    HsV5Info::default()
                } else {
                    HsV5Info {
                        ext_hs: Some(SrtControlPacket::HandshakeRequest(SrtHandshake {
                            version: SrtVersion::CURRENT,
                            flags: SrtShakeFlags::SUPPORTED,
                            send_latency: Duration::from_millis(120),
                            recv_latency: Duration::from_millis(120),
                        })),
                        sid: Some("key".into()),
                        ..HsV5Info::default()
                    }
                }),
            }),
        })
    }

    fn send(l: &mut MultiplexListener, now: Instant, from: SocketAddr, packet: Packet) -> Action {
        l.handle_input(now, Input::Packet(Ok((packet, from))))
    }

    fn cookie_of(action: &Action) -> i32 {
        match action {
            Action::SendPacket((
                Packet::Control(ControlPacket {
                    control_type: ControlTypes::Handshake(shake),
                    ..
                }),
                _,
            )) => shake.syn_cookie,
            other => panic!("expected an induction's answer, got {other:?}"),
        }
    }

    /// Issue 45 item 2: 200,000 inductions, and as many keepalives, from as many
    /// address:port pairs leave no state (upstream: one session each, never removed).
    #[test]
    fn datagrams_from_new_addresses_leave_no_state() {
        let now = Instant::now();
        let mut l = MultiplexListener::new(now, local(), ConnInitSettings::default());
        let keepalive = Packet::Control(ControlPacket {
            timestamp: TimeStamp::from_micros(0),
            dest_sockid: SocketId(0),
            control_type: ControlTypes::KeepAlive,
        });
        for n in 0..200_000 {
            let action = send(&mut l, now, caller(n), handshake(ShakeType::Induction, 0));
            assert_matches!(action, Action::SendPacket(_));
            let action = send(&mut l, now, caller(n + 200_000), keepalive.clone());
            assert_eq!(action, Action::WaitForInput);
        }
        assert_eq!(l.sessions(), 0);
    }

    /// Callers with valid cookies that never finish: at most [`MAX_PENDING`] are kept,
    /// the rest are rejected for resources, and all are given up on after
    /// [`PENDING_TIMEOUT`].
    #[test]
    fn pending_sessions_are_capped_and_expire() {
        let now = Instant::now();
        let mut l = MultiplexListener::new(now, local(), ConnInitSettings::default());
        let mut requested = 0;
        let mut refused = 0;
        for n in 0..(MAX_PENDING as u32 + 100) {
            let answer = send(&mut l, now, caller(n), handshake(ShakeType::Induction, 0));
            let cookie = cookie_of(&answer);
            match send(
                &mut l,
                now,
                caller(n),
                handshake(ShakeType::Conclusion, cookie),
            ) {
                Action::RequestAccess(..) => {
                    requested += 1;
                    // What the I/O loop reports once it asked the application.
                    let id = SessionId(caller(n));
                    let next = l.handle_input(now, Input::Success(ResultOf::RequestAccess(id)));
                    assert_eq!(next, Action::WaitForInput);
                }
                Action::SendPacket(_) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((requested, refused), (MAX_PENDING, 100));
        assert_eq!(l.pending_sessions(), MAX_PENDING);

        // Not yet: nothing is given up on.
        let early = now + PENDING_TIMEOUT - Duration::from_millis(1);
        assert_matches!(
            l.handle_input(early, Input::Timer),
            Action::UpdateStatistics(_) | Action::WaitForInput
        );
        assert_eq!(l.pending_sessions(), MAX_PENDING);

        // Then every one is rejected, one after another as the I/O loop reports back.
        let late = now + PENDING_TIMEOUT;
        let mut action = l.handle_input(late, Input::Timer);
        let mut rejected = 0;
        while let Action::RejectConnection(id, packet) = action {
            assert!(packet.is_some(), "a caller in access control is told");
            rejected += 1;
            action = l.handle_input(late, Input::Success(ResultOf::RejectConnection(id)));
        }
        assert_eq!(rejected, MAX_PENDING);
        assert_eq!(l.sessions(), 0);
    }

    /// Issue 45 item 3: a spoofing host that cannot read the induction's answer does not
    /// get a conclusion through, neither with upstream's fixed-key cookie, nor with
    /// another listener's, nor with guesses; the genuine cookie does.
    #[test]
    fn a_forged_cookie_gets_no_conclusion() {
        let now = Instant::now();
        let mut l = MultiplexListener::new(now, local(), ConnInitSettings::default());
        let victim = caller(7);
        let answer = send(&mut l, now, victim, handshake(ShakeType::Induction, 0));
        let genuine = cookie_of(&answer);

        let mut other = MultiplexListener::new(now, local(), ConnInitSettings::default());
        let elsewhere = cookie_of(&send(
            &mut other,
            now,
            victim,
            handshake(ShakeType::Induction, 0),
        ));
        let forged = [
            gen_cookie(&victim),
            elsewhere,
            0,
            1,
            -1,
            genuine.wrapping_add(1),
        ];
        for cookie in forged {
            let action = send(
                &mut l,
                now,
                victim,
                handshake(ShakeType::Conclusion, cookie),
            );
            assert_eq!(action, Action::WaitForInput, "cookie {cookie}");
        }
        assert_eq!(l.sessions(), 0);

        let action = send(
            &mut l,
            now,
            victim,
            handshake(ShakeType::Conclusion, genuine),
        );
        assert_matches!(action, Action::RequestAccess(..));
    }

    /// A cookie is good for its minute and the next, then refused.
    #[test]
    fn a_cookie_is_refused_two_buckets_later() {
        use crate::protocol::pending_connection::cookie::COOKIE_BUCKET;
        let now = Instant::now();
        let mut l = MultiplexListener::new(now, local(), ConnInitSettings::default());
        let cookie = cookie_of(&send(
            &mut l,
            now,
            caller(1),
            handshake(ShakeType::Induction, 0),
        ));
        let stale = now + 2 * COOKIE_BUCKET;
        let action = send(
            &mut l,
            stale,
            caller(1),
            handshake(ShakeType::Conclusion, cookie),
        );
        assert_eq!(action, Action::WaitForInput);
        let fresh = now + COOKIE_BUCKET;
        let action = send(
            &mut l,
            fresh,
            caller(1),
            handshake(ShakeType::Conclusion, cookie),
        );
        assert_matches!(action, Action::RequestAccess(..));
    }

    /// An answer from access control for a session that is open by then (a late answer
    /// to an earlier one from the same address) is ignored (upstream: `unreachable!`).
    #[test]
    fn a_late_access_answer_to_an_open_session_is_ignored() {
        let now = Instant::now();
        let mut l = MultiplexListener::new(now, local(), ConnInitSettings::default());
        let cookie = cookie_of(&send(
            &mut l,
            now,
            caller(1),
            handshake(ShakeType::Induction, 0),
        ));
        let action = send(
            &mut l,
            now,
            caller(1),
            handshake(ShakeType::Conclusion, cookie),
        );
        assert_matches!(action, Action::RequestAccess(..));
        let id = SessionId(caller(1));
        let accepted = Input::AccessResponse(Some((id, AccessControlResponse::Accepted(None))));
        assert_matches!(l.handle_input(now, accepted), Action::OpenConnection(..));
        let late = Input::AccessResponse(Some((id, AccessControlResponse::Accepted(None))));
        assert_eq!(l.handle_input(now, late), Action::WaitForInput);
    }
}
