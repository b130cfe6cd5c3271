use std::{
    convert::TryInto,
    net::SocketAddr,
    time::{Duration, Instant},
};

use crate::{packet::*, protocol::handshake::Handshake, settings::*};

use super::{
    cookie::CookieKey, hsv5::gen_access_control_response, hsv5::GenHsv5Result,
    AccessControlRequest, AccessControlResponse, ConnectError, Connection, ConnectionReject,
    ConnectionResult,
};

use ConnectionResult::*;
use ListenState::*;

#[derive(Debug)]
pub struct Listen {
    init_settings: ConnInitSettings,
    state: ListenState,
    enable_access_control: bool,
    /// sealcast: the secret the cookies are made with (FORK.md).
    cookies: CookieKey,
}

/// sealcast: the round trip assumed for a caller whose induction the listener did not keep
/// (it answers inductions without keeping anything); libsrt's first estimate (FORK.md).
const ASSUMED_RTT: Duration = Duration::from_millis(100);

/// sealcast: the answer to an induction, the same whether or not it is kept (FORK.md).
pub(crate) fn induction_response(
    settings: &ConnInitSettings,
    timestamp: TimeStamp,
    shake: HandshakeControlInfo,
    cookie: i32,
) -> Packet {
    Packet::Control(ControlPacket {
        timestamp,
        dest_sockid: shake.socket_id,
        control_type: ControlTypes::Handshake(HandshakeControlInfo {
            syn_cookie: cookie,
            socket_id: settings.local_sockid,
            info: HandshakeVsInfo::V5(HsV5Info::default()),
            ..shake
        }),
    })
}

/// sealcast: a rejection of `response_to` for `reason`, built without any state (FORK.md).
pub(crate) fn rejection_packet(
    settings: &ConnInitSettings,
    response_to: &HandshakeControlInfo,
    timestamp: TimeStamp,
    reason: RejectReason,
) -> Packet {
    ControlPacket {
        timestamp,
        dest_sockid: response_to.socket_id,
        control_type: ControlTypes::Handshake(HandshakeControlInfo {
            shake_type: ShakeType::Rejection(reason),
            socket_id: settings.local_sockid,
            info: match &response_to.info {
                // An induction has no extensions; what else came is not echoed.
                HandshakeVsInfo::V5(_) => HandshakeVsInfo::V5(HsV5Info::default()),
                v4 => v4.clone(),
            },
            ..response_to.clone()
        }),
    }
    .into()
}

/// sealcast: why a caller's conclusion cannot be accepted whatever access control says:
/// no HSREQ (it would be found only after access control accepted it, holding the
/// caller's slot; issue 45 item 17), or a config extension this implementation does not
/// honour, refused with libsrt's reason (a congestion controller other than `live`, a
/// packet filter, a group). None if it can go on.
fn refusal_before_access(incoming: &HsV5Info) -> Option<RejectReason> {
    if !matches!(incoming.ext_hs, Some(SrtControlPacket::HandshakeRequest(_))) {
        return Some(CoreRejectReason::Rogue.into());
    }
    incoming.ext_config.iter().find_map(|ext| match ext {
        SrtControlPacket::Congestion(c) if c == "live" => None,
        SrtControlPacket::Congestion(_) => Some(CoreRejectReason::Congestion.into()),
        SrtControlPacket::Filter(_) => Some(CoreRejectReason::Filter.into()),
        SrtControlPacket::Group { .. } => Some(CoreRejectReason::Group.into()),
        _ => Some(CoreRejectReason::Rogue.into()),
    })
}

#[derive(Clone, Debug)]
pub struct ConclusionWaitState {
    from: SocketAddr,
    cookie: i32,
    induction_response: Packet,
    induction_time: Instant,
}

#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum ListenState {
    InductionWait,
    ConclusionWait(ConclusionWaitState),
    AccessControlRequested(
        ConclusionWaitState,
        TimeStamp,
        HandshakeControlInfo,
        HsV5Info,
    ),
}

impl Listen {
    pub fn new(init_settings: ConnInitSettings, enable_access_control: bool) -> Listen {
        Listen {
            state: InductionWait,
            init_settings,
            enable_access_control,
            cookies: CookieKey::random(Instant::now()),
        }
    }

    /// sealcast: a listener for a caller whose conclusion carried a cookie `cookies`
    /// verified: the induction was answered without keeping anything (FORK.md).
    pub(crate) fn after_cookie(
        init_settings: ConnInitSettings,
        enable_access_control: bool,
        cookies: CookieKey,
        now: Instant,
        from: SocketAddr,
        timestamp: TimeStamp,
        shake: &HandshakeControlInfo,
    ) -> Listen {
        let induction_response =
            induction_response(&init_settings, timestamp, shake.clone(), shake.syn_cookie);
        Listen {
            state: ConclusionWait(ConclusionWaitState {
                from,
                cookie: shake.syn_cookie,
                induction_response,
                induction_time: now.checked_sub(ASSUMED_RTT).unwrap_or(now),
            }),
            init_settings,
            enable_access_control,
            cookies,
        }
    }

    /// sealcast: the cookie this listener hands `from` now (for tests).
    #[cfg(test)]
    pub(crate) fn cookie_for(&self, from: &SocketAddr, now: Instant) -> i32 {
        self.cookies.cookie(from, now)
    }

    /// sealcast: gives up on a caller that took too long, with the rejection to send it if
    /// it got as far as a conclusion (FORK.md).
    pub(crate) fn expire(&mut self) -> Option<(Packet, SocketAddr)> {
        let rejection = match &self.state {
            AccessControlRequested(state, timestamp, shake, _) => Some((
                rejection_packet(
                    &self.init_settings,
                    shake,
                    *timestamp,
                    CoreRejectReason::Timeout.into(),
                ),
                state.from,
            )),
            InductionWait | ConclusionWait(_) => None,
        };
        self.state = InductionWait;
        rejection
    }

    pub fn settings(&self) -> &ConnInitSettings {
        &self.init_settings
    }

    pub fn handle_packet(&mut self, now: Instant, packet: ReceivePacketResult) -> ConnectionResult {
        use ReceivePacketError::*;
        match packet {
            Ok((packet, from)) => match packet {
                Packet::Control(control) => self.handle_control_packets(now, from, control),
                Packet::Data(data) => NotHandled(ConnectError::ControlExpected(data)),
            },
            Err(Io(error)) => Failure(error),
            Err(Parse(e)) => NotHandled(ConnectError::ParseFailed(e)),
        }
    }

    pub fn handle_access_control_response(
        &mut self,
        now: Instant,
        response: AccessControlResponse,
    ) -> ConnectionResult {
        match self.state.clone() {
            // TODO: something other than ExpectedHsReq
            InductionWait | ConclusionWait(_) => NotHandled(ConnectError::ExpectedHsReq),
            AccessControlRequested(state, timestamp, shake, info) => {
                use AccessControlResponse::*;
                match response {
                    Accepted(key_settings) => {
                        self.accept_connection(now, &state, timestamp, shake, info, key_settings)
                    }
                    Rejected(rr) => self.make_rejection(
                        &shake,
                        state.from,
                        timestamp,
                        ConnectionReject::Rejecting(rr),
                    ),
                    Dropped => self.make_rejection(
                        &shake,
                        state.from,
                        timestamp,
                        ConnectionReject::Rejecting(RejectReason::Core(CoreRejectReason::Peer)),
                    ),
                }
            }
        }
    }

    pub fn handle_timer(&self, _now: Instant) -> ConnectionResult {
        NoAction
    }

    fn handle_control_packets(
        &mut self,
        now: Instant,
        from: SocketAddr,
        control: ControlPacket,
    ) -> ConnectionResult {
        match (self.state.clone(), control.control_type) {
            (InductionWait, ControlTypes::Handshake(shake)) => {
                self.wait_for_induction(from, control.timestamp, shake, now)
            }
            (ConclusionWait(state), ControlTypes::Handshake(shake)) => self.wait_for_conclusion(
                now,
                from,
                control.dest_sockid,
                control.timestamp,
                state,
                shake,
            ),
            (AccessControlRequested(_, _, _, _), _) => {
                NotHandled(ConnectError::ExpectedAccessControlResponse)
            }
            (InductionWait, control_type) | (ConclusionWait(_), control_type) => {
                NotHandled(ConnectError::HandshakeExpected(control_type))
            }
        }
    }

    fn wait_for_induction(
        &mut self,
        from: SocketAddr,
        timestamp: TimeStamp,
        shake: HandshakeControlInfo,
        now: Instant,
    ) -> ConnectionResult {
        match shake.shake_type {
            ShakeType::Induction => {
                // https://tools.ietf.org/html/draft-gg-udt-03#page-9
                // When the server first receives the connection request from a client,
                // it generates a cookie value according to the client address and a
                // secret key and sends it back to the client. The client must then send
                // back the same cookie to the server.

                // sealcast: the cookie is keyed with this listener's secret (FORK.md).
                let cookie = self.cookies.cookie(&from, now);

                // we expect HSv5, so upgrade it
                // construct a packet to send back
                let induction_response =
                    induction_response(&self.init_settings, timestamp, shake, cookie);

                // save induction message for potential later retransmit
                let save_induction_response = induction_response.clone();
                self.state = ConclusionWait(ConclusionWaitState {
                    from,
                    cookie,
                    induction_response: save_induction_response,
                    induction_time: now,
                });
                SendPacket((induction_response, from))
            }
            _ => NotHandled(ConnectError::InductionExpected(shake)),
        }
    }

    fn wait_for_conclusion(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local_socket_id: SocketId,
        timestamp: TimeStamp,
        state: ConclusionWaitState,
        shake: HandshakeControlInfo,
    ) -> ConnectionResult {
        // https://tools.ietf.org/html/draft-gg-udt-03#page-10
        // The server, when receiving a handshake packet and the correct cookie,
        // compares the packet size and maximum window size with its own values
        // and set its own values as the smaller ones. The result values are
        // also sent back to the client by a response handshake packet, together
        // with the server's version and initial sequence number. The server is
        // ready for sending/receiving data right after this step is finished.
        // However, it must send back response packet as long as it receives any
        // further handshakes from the same client.

        const VERSION_5: u32 = 5;

        match (shake.shake_type, shake.info.version(), shake.syn_cookie) {
            (ShakeType::Induction, _, _) => SendPacket((state.induction_response, from)),
            // first induction received, wait for response (with cookie)
            (ShakeType::Conclusion, VERSION_5, syn_cookie) if syn_cookie == state.cookie => {
                let incoming = match &shake.info {
                    HandshakeVsInfo::V5(hs) => hs,
                    _ => {
                        let r = ConnectionReject::Rejecting(
                            // TODO: this error is technically reserved for access control handlers, as the ref impl supports hsv4+5, while we only support 5
                            ServerRejectReason::Version.into(),
                        );
                        return self.make_rejection(&shake, from, timestamp, r);
                    }
                }
                .clone();

                // sealcast: refused before access control takes a slot for it (FORK.md).
                if let Some(reason) = refusal_before_access(&incoming) {
                    let r = ConnectionReject::Rejecting(reason);
                    return self.make_rejection(&shake, from, timestamp, r);
                }

                if self.enable_access_control {
                    self.request_access(from, local_socket_id, timestamp, state, shake, incoming)
                } else {
                    let key_settings = self.settings().key_settings.clone();
                    self.accept_connection(now, &state, timestamp, shake, incoming, key_settings)
                }
            }
            (ShakeType::Conclusion, VERSION_5, syn_cookie) => NotHandled(
                ConnectError::InvalidHandshakeCookie(state.cookie, syn_cookie),
            ),
            (ShakeType::Conclusion, version, _) => {
                NotHandled(ConnectError::UnsupportedProtocolVersion(version))
            }
            (_, _, _) => NotHandled(ConnectError::ConclusionExpected(shake)),
        }
    }

    fn request_access(
        &mut self,
        remote: SocketAddr,
        local_socket_id: SocketId,
        timestamp: TimeStamp,
        state: ConclusionWaitState,
        shake: HandshakeControlInfo,
        incoming: HsV5Info,
    ) -> ConnectionResult {
        // TODO: handle StreamId parsing error
        let stream_id = incoming.sid.clone().and_then(|s| s.try_into().ok());
        let remote_socket_id = shake.socket_id;
        let key_size = incoming.key_size;

        self.state = AccessControlRequested(state, timestamp, shake, incoming);

        RequestAccess(AccessControlRequest {
            local_socket_id,
            remote,
            remote_socket_id,
            stream_id,
            key_size,
        })
    }

    fn accept_connection(
        &mut self,
        now: Instant,
        state: &ConclusionWaitState,
        timestamp: TimeStamp,
        shake: HandshakeControlInfo,
        info: HsV5Info,
        key_settings: Option<KeySettings>,
    ) -> ConnectionResult {
        let response = gen_access_control_response(
            now,
            &mut self.init_settings,
            state.from,
            state.induction_time,
            shake.clone(),
            info,
            key_settings,
        );
        let (hsv5, settings) = match response {
            GenHsv5Result::Accept(h, c) => (h, c),
            // sealcast: a caller access control accepted gets an answer either way; left
            // unanswered it held its slot in the application's accept for ever (issue 45
            // item 17, FORK.md).
            GenHsv5Result::NotHandled(_) => {
                let r = ConnectionReject::Rejecting(CoreRejectReason::Rogue.into());
                return self.make_rejection(&shake, state.from, timestamp, r);
            }
            GenHsv5Result::Reject(r) => {
                return self.make_rejection(&shake, state.from, timestamp, r);
            }
        };

        let resp_handshake = ControlPacket {
            timestamp,
            dest_sockid: shake.socket_id,
            control_type: ControlTypes::Handshake(HandshakeControlInfo {
                syn_cookie: state.cookie,
                socket_id: self.init_settings.local_sockid,
                info: hsv5,
                shake_type: ShakeType::Conclusion,
                ..shake // TODO: this will pass peer wrong
            }),
        };

        // finish the connection
        Connected(
            Some((resp_handshake.clone().into(), state.from)),
            Connection {
                settings,
                handshake: Handshake::Listener(resp_handshake.control_type),
            },
        )
    }

    fn make_rejection(
        &mut self,
        response_to: &HandshakeControlInfo,
        from: SocketAddr,
        timestamp: TimeStamp,
        r: ConnectionReject,
    ) -> ConnectionResult {
        self.state = InductionWait;
        Reject(
            Some((
                ControlPacket {
                    timestamp,
                    dest_sockid: response_to.socket_id,
                    control_type: ControlTypes::Handshake(HandshakeControlInfo {
                        shake_type: ShakeType::Rejection(r.reason()),
                        socket_id: self.init_settings.local_sockid,
                        ..response_to.clone()
                    }),
                }
                .into(),
                from,
            )),
            r,
        )
    }
}

#[cfg(test)]
mod test {
    use std::{
        net::{IpAddr, Ipv4Addr},
        time::Duration,
    };

    use assert_matches::assert_matches;
    use bytes::Bytes;
    use rand::random;

    use crate::options::*;

    use super::*;

    fn conn_addr() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 8765)
    }

    fn test_listen() -> Listen {
        Listen::new(ConnInitSettings::default(), false)
    }

    fn test_induction() -> HandshakeControlInfo {
        HandshakeControlInfo {
            init_seq_num: random(),
            max_packet_size: PacketSize(1316),
            max_flow_size: PacketCount(256_000),
            shake_type: ShakeType::Induction,
            socket_id: random(),
            syn_cookie: 0,
            peer_addr: IpAddr::from([127, 0, 0, 1]),
            info: HandshakeVsInfo::V5(HsV5Info::default()),
        }
    }

    fn test_conclusion(l: &Listen) -> HandshakeControlInfo {
        HandshakeControlInfo {
            init_seq_num: random(),
            max_packet_size: PacketSize(1316),
            max_flow_size: PacketCount(256_000),
            shake_type: ShakeType::Conclusion,
            socket_id: random(),
            syn_cookie: l.cookie_for(&conn_addr(), Instant::now()),
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

    fn build_hs_pack(i: HandshakeControlInfo) -> Packet {
        Packet::Control(ControlPacket {
            timestamp: TimeStamp::from_micros(0),
            dest_sockid: random(),
            control_type: ControlTypes::Handshake(i),
        })
    }

    #[test]
    fn correct() {
        let mut l = test_listen();

        let resp = l.handle_packet(
            Instant::now(),
            Ok((build_hs_pack(test_induction()), conn_addr())),
        );
        assert_matches!(resp, SendPacket(_));

        let resp = l.handle_packet(
            Instant::now(),
            Ok((build_hs_pack(test_conclusion(&l)), conn_addr())),
        );
        // make sure it returns hs_ext
        assert_matches!(
            resp,
            Connected(
                Some(_),
                Connection {
                    handshake: Handshake::Listener(ControlTypes::Handshake(HandshakeControlInfo {
                        info: HandshakeVsInfo::V5(HsV5Info {
                            ext_hs: Some(_),
                            ..
                        }),
                        ..
                    })),
                    ..
                },
            )
        );
    }

    #[test]
    fn send_data_packet() {
        let mut l = test_listen();

        let dp = DataPacket {
            seq_number: random(),
            message_loc: PacketLocation::ONLY,
            in_order_delivery: false,
            encryption: DataEncryption::None,
            retransmitted: false,
            message_number: random(),
            timestamp: TimeStamp::from_micros(0),
            dest_sockid: random(),
            payload: Bytes::from(&b"asdf"[..]),
        };
        assert_matches!(
            l.handle_packet(Instant::now(), Ok(( Packet::Data(dp.clone()), conn_addr()))),
            NotHandled(ConnectError::ControlExpected(d)) if d == dp
        );
    }

    #[test]
    fn send_ack2() {
        let mut l = test_listen();

        let a2 = ControlTypes::Ack2(FullAckSeqNumber::new(random::<u32>() + 1).unwrap());
        assert_matches!(
            l.handle_packet(Instant::now(),
                Ok((
                    Packet::Control(ControlPacket {
                        timestamp: TimeStamp::from_micros(0),
                        dest_sockid: random(),
                        control_type: a2.clone()
                    }),
                    conn_addr()
                )),
            ),
            NotHandled(ConnectError::HandshakeExpected(pack)) if pack == a2
        );
    }

    #[test]
    fn send_wrong_handshake() {
        let mut l = test_listen();

        // listen expects an induction first, send a conclustion first

        let shake = test_conclusion(&l);
        assert_matches!(
            l.handle_packet(Instant::now(), Ok((
                build_hs_pack(shake.clone()),
                conn_addr()
            ))),
            NotHandled(ConnectError::InductionExpected(s)) if s == shake
        );
    }

    #[test]
    fn send_induction_twice() {
        let mut l = test_listen();

        // send a rendezvous handshake after an induction
        let resp = l.handle_packet(
            Instant::now(),
            Ok((build_hs_pack(test_induction()), conn_addr())),
        );
        assert_matches!(resp, SendPacket(_));

        let mut shake = test_induction();
        shake.shake_type = ShakeType::Waveahand;
        assert_matches!(
            l.handle_packet(Instant::now(), Ok((
                build_hs_pack(shake.clone()),
                conn_addr()
            ))),
            NotHandled(ConnectError::ConclusionExpected(nc)) if nc == shake
        )
    }

    #[test]
    fn send_v4_conclusion() {
        let mut l = test_listen();

        let resp = l.handle_packet(
            Instant::now(),
            Ok((build_hs_pack(test_induction()), conn_addr())),
        );
        assert_matches!(resp, SendPacket(_));

        let mut c = test_conclusion(&l);
        c.info = HandshakeVsInfo::V4(SocketType::Datagram);

        let resp = l.handle_packet(Instant::now(), Ok((build_hs_pack(c), conn_addr())));

        assert_matches!(
            resp,
            NotHandled(ConnectError::UnsupportedProtocolVersion(4))
        );
    }

    #[test]
    fn send_no_ext_hs_conclusion() {
        let mut l = test_listen();

        let resp = l.handle_packet(
            Instant::now(),
            Ok((build_hs_pack(test_induction()), conn_addr())),
        );
        assert_matches!(resp, SendPacket(_));

        let mut c = test_conclusion(&l);
        c.info = HandshakeVsInfo::V5(HsV5Info::default());

        let resp = l.handle_packet(Instant::now(), Ok((build_hs_pack(c), conn_addr())));

        // sealcast: refused with libsrt's reason, not left unanswered (FORK.md).
        assert_matches!(
            resp,
            Reject(
                Some(_),
                ConnectionReject::Rejecting(RejectReason::Core(CoreRejectReason::Rogue))
            )
        );
    }

    #[test]
    fn reject() {
        let mut l = Listen::new(ConnInitSettings::default(), true);

        let resp = l.handle_packet(
            Instant::now(),
            Ok((build_hs_pack(test_induction()), conn_addr())),
        );
        assert_matches!(resp, SendPacket(_));

        let resp = l.handle_packet(
            Instant::now(),
            Ok((build_hs_pack(test_conclusion(&l)), conn_addr())),
        );
        assert_matches!(resp, RequestAccess(_));

        let resp = l.handle_access_control_response(
            Instant::now(),
            AccessControlResponse::Rejected(RejectReason::Server(ServerRejectReason::Overload)),
        );
        assert_matches!(
            resp,
            Reject(
                _,
                ConnectionReject::Rejecting(RejectReason::Server(ServerRejectReason::Overload)),
            )
        );
    }

    #[test]
    fn advertise_key_size() {
        let mut l = Listen::new(ConnInitSettings::default(), true);

        l.handle_packet(
            Instant::now(),
            Ok((build_hs_pack(test_induction()), conn_addr())),
        );

        let hs_key_size = KeySize::AES256;

        let shake = HandshakeControlInfo {
            info: HandshakeVsInfo::V5(HsV5Info {
                key_size: hs_key_size,
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
            ..test_conclusion(&l)
        };

        let hs_packet = Packet::Control(ControlPacket {
            timestamp: TimeStamp::from_micros(0),
            dest_sockid: random(),
            control_type: ControlTypes::Handshake(shake),
        });

        let RequestAccess(request_access) =
            l.handle_packet(Instant::now(), Ok((hs_packet, conn_addr())))
        else {
            panic!("expected a ConnectionResult::RequestAccess");
        };

        assert_eq!(request_access.key_size, hs_key_size);
    }
}

/// sealcast's changes (FORK.md).
#[cfg(test)]
mod sealcast_tests {
    use std::net::{IpAddr, Ipv4Addr};

    use assert_matches::assert_matches;

    use crate::options::*;

    use super::*;

    fn caller() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 8765)
    }

    fn handshake(shake_type: ShakeType, syn_cookie: i32, info: HsV5Info) -> Packet {
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
                info: HandshakeVsInfo::V5(info),
            }),
        })
    }

    fn hsreq() -> Option<SrtControlPacket> {
        Some(SrtControlPacket::HandshakeRequest(SrtHandshake {
            version: SrtVersion::CURRENT,
            flags: SrtShakeFlags::SUPPORTED,
            send_latency: Duration::from_millis(120),
            recv_latency: Duration::from_millis(120),
        }))
    }

    /// Induction, then a conclusion with `info`, to a listener with access control.
    fn conclude(info: HsV5Info) -> (Listen, ConnectionResult) {
        let now = Instant::now();
        let mut l = Listen::new(ConnInitSettings::default(), true);
        let induction = handshake(ShakeType::Induction, 0, HsV5Info::default());
        assert_matches!(
            l.handle_packet(now, Ok((induction, caller()))),
            SendPacket(_)
        );
        let cookie = l.cookie_for(&caller(), now);
        let result = l.handle_packet(
            now,
            Ok((handshake(ShakeType::Conclusion, cookie, info), caller())),
        );
        (l, result)
    }

    /// Issue 45 item 17: a conclusion without HSREQ is rejected before access control,
    /// so no application slot is taken for a handshake that could never complete
    /// (upstream asked for access, then left an accepted caller unanswered).
    #[test]
    fn a_conclusion_without_hsreq_is_rejected_before_access_control() {
        let (_, result) = conclude(HsV5Info {
            sid: Some("key".into()),
            ..HsV5Info::default()
        });
        assert_matches!(
            result,
            Reject(
                Some(_),
                ConnectionReject::Rejecting(RejectReason::Core(CoreRejectReason::Rogue))
            )
        );
    }

    /// Issue 45 item 17, the other way in: an accepted caller whose handshake turns out
    /// not to do is answered with a rejection (upstream: `NotHandled`, nothing sent, the
    /// application's accept waiting for ever).
    #[test]
    fn an_accepted_caller_that_cannot_connect_is_rejected() {
        let (mut l, result) = conclude(HsV5Info {
            ext_hs: hsreq(),
            ..HsV5Info::default()
        });
        assert_matches!(result, RequestAccess(_));
        // The HSREQ is checked again after access control; drop it to reach that check.
        if let AccessControlRequested(_, _, _, info) = &mut l.state {
            info.ext_hs = None;
        }
        let result =
            l.handle_access_control_response(Instant::now(), AccessControlResponse::Accepted(None));
        assert_matches!(result, Reject(Some(_), _));
    }

    /// Issue 45 item 1, at the listener: what libsrt's `congestion=file`,
    /// `packetfilter=fec` and groups send is refused with libsrt's reasons; a `live`
    /// congestion controller is what this listener runs.
    #[test]
    fn config_extensions_it_does_not_implement_are_refused_with_their_reason() {
        let filter = SrtControlPacket::Filter(FilterSpec(
            [("fec".to_string(), "".to_string())].into_iter().collect(),
        ));
        let group = SrtControlPacket::Group {
            ty: GroupType::Broadcast,
            flags: GroupFlags::empty(),
            weight: 0,
        };
        for (ext, reason) in [
            (
                SrtControlPacket::Congestion("file".into()),
                CoreRejectReason::Congestion,
            ),
            (filter, CoreRejectReason::Filter),
            (group, CoreRejectReason::Group),
            (SrtControlPacket::Reject, CoreRejectReason::Rogue),
        ] {
            let (_, result) = conclude(HsV5Info {
                ext_hs: hsreq(),
                ext_config: vec![ext.clone()],
                ..HsV5Info::default()
            });
            assert_matches!(
                result,
                Reject(Some(_), ConnectionReject::Rejecting(RejectReason::Core(r))) if r == reason,
                "{ext:?}"
            );
        }
        let (_, result) = conclude(HsV5Info {
            ext_hs: hsreq(),
            ext_config: vec![SrtControlPacket::Congestion("live".into())],
            ..HsV5Info::default()
        });
        assert_matches!(result, RequestAccess(_));
    }

    /// A caller that got as far as access control and is given up on is sent a timeout
    /// rejection; one that had not is forgotten silently.
    #[test]
    fn an_expired_caller_is_rejected_with_a_timeout() {
        let (mut l, result) = conclude(HsV5Info {
            ext_hs: hsreq(),
            ..HsV5Info::default()
        });
        assert_matches!(result, RequestAccess(_));
        let (packet, to) = l.expire().expect("a rejection");
        assert_eq!(to, caller());
        assert_matches!(
            packet,
            Packet::Control(ControlPacket {
                control_type: ControlTypes::Handshake(HandshakeControlInfo {
                    shake_type: ShakeType::Rejection(RejectReason::Core(CoreRejectReason::Timeout)),
                    ..
                }),
                ..
            })
        );
        assert!(l.expire().is_none());
    }
}
