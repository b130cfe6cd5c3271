//! The SRT harnesses (issue 45): srt-protocol's packet parser, and its listener as
//! srt-tokio drives it, fed records of datagrams, clock ticks and access answers from many
//! addresses.

use std::time::Duration;

/// SRT: any datagram through srt-protocol's parser, as the listener's socket reads it
/// (IPv4 and IPv6 forms); what parses serializes, and what that wrote parses and
/// serializes to the same bytes.
pub fn srt_packet(data: &[u8]) {
    use srt_protocol::packet::Packet;
    for ipv6 in [false, true] {
        let Ok(packet) = Packet::parse(&mut std::io::Cursor::new(data), ipv6) else {
            continue;
        };
        let mut written = Vec::new();
        packet.serialize(&mut written);
        let again = Packet::parse(&mut std::io::Cursor::new(&written[..]), ipv6)
            .unwrap_or_else(|e| panic!("{packet:?} wrote what does not parse: {e:?}"));
        let mut rewritten = Vec::new();
        again.serialize(&mut rewritten);
        assert_eq!(written, rewritten, "{packet:?} then {again:?}");
    }
}

/// One record of an `srt_listener` input: from which of 65,536 addresses (127.0.x.y, a
/// port each), what happens, and `len` bytes. `SRT_SEND` sends them as a datagram,
/// `SRT_SEND_WITH_COOKIE` with the cookie the listener last handed that address (a caller
/// that reads answers), `SRT_TICK` lets `len` tens of milliseconds pass, `SRT_ANSWER` has
/// the application accept (even `len`) or reject the address's caller.
pub fn srt_listener_record(address: u16, op: u8, datagram: &[u8]) -> Vec<u8> {
    let len = u16::try_from(datagram.len()).unwrap_or(u16::MAX);
    let mut record = Vec::with_capacity(5 + datagram.len());
    record.extend(address.to_be_bytes());
    record.push(op);
    record.extend(len.to_le_bytes());
    record.extend(&datagram[..usize::from(len)]);
    record
}

/// `srt_listener_record`'s operations.
pub const SRT_SEND: u8 = 0;
/// See [`srt_listener_record`].
pub const SRT_SEND_WITH_COOKIE: u8 = 1;
/// See [`srt_listener_record`].
pub const SRT_TICK: u8 = 2;
/// See [`srt_listener_record`].
pub const SRT_ANSWER: u8 = 3;

/// SRT: srt-protocol's listener state machine (sans-IO, as srt-tokio's I/O loop drives it
/// for the ingest's one socket) fed records of [`srt_listener_record`]: it never panics,
/// every chain of actions ends, no more than `MAX_PENDING` callers are ever in their
/// handshake, and once `PENDING_TIMEOUT` has passed none is left.
pub fn srt_listener(data: &[u8]) {
    let _ = drive_srt(data);
}

/// How far an `srt_listener` input got: callers asked of access control, connections
/// opened, rejections sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SrtReach {
    /// Callers whose conclusion reached access control.
    pub requested: usize,
    /// Connections opened.
    pub opened: usize,
    /// Rejections sent.
    pub rejected: usize,
}

/// [`srt_listener`], telling how far the input got (so that the seeds are known to reach
/// connections, not only the parser).
pub fn drive_srt(data: &[u8]) -> SrtReach {
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::Instant;

    use srt_protocol::listener::{
        AccessControlResponse, Input, MultiplexListener, SessionId, MAX_PENDING, PENDING_TIMEOUT,
    };
    use srt_protocol::packet::{Packet, RejectReason, ServerRejectReason};
    use srt_protocol::protocol::pending_connection::cookie::CookieKey;
    use srt_protocol::settings::ConnInitSettings;

    let address = |n: u16| {
        let [x, y] = n.to_be_bytes();
        SocketAddr::from((Ipv4Addr::new(127, 0, x, y), 1024 + n % 60_000))
    };
    let start = Instant::now();
    let mut now = start;
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 9000));
    let cookies = CookieKey::with_secret([0x5e; 32], start);
    let mut listener =
        MultiplexListener::with_cookies(start, local, ConnInitSettings::default(), cookies);
    let mut handed: HashMap<SocketAddr, i32> = HashMap::new();
    let mut reach = SrtReach::default();
    let mut rest = data;
    while rest.len() >= 5 {
        let from = address(u16::from_be_bytes([rest[0], rest[1]]));
        let op = rest[2] % 4;
        let len = usize::from(u16::from_le_bytes([rest[3], rest[4]]));
        rest = &rest[5..];
        // Every record is followed by `len` bytes (fewer at the end of the input).
        let take = len.min(rest.len());
        let (bytes, after) = rest.split_at(take);
        rest = after;
        let input = match op {
            SRT_SEND | SRT_SEND_WITH_COOKIE => {
                let mut datagram = bytes.to_vec();
                if op == SRT_SEND_WITH_COOKIE && datagram.len() >= 48 {
                    let cookie = handed.get(&from).copied().unwrap_or_default();
                    datagram[44..48].copy_from_slice(&cookie.to_be_bytes());
                }
                match Packet::parse(&mut std::io::Cursor::new(&datagram[..]), false) {
                    Ok(packet) => Input::Packet(Ok((packet, from))),
                    Err(_) => continue,
                }
            }
            SRT_TICK => {
                now += Duration::from_millis(10 * len as u64);
                Input::Timer
            }
            _ => {
                let answer = if len % 2 == 0 {
                    AccessControlResponse::Accepted(None)
                } else {
                    AccessControlResponse::Rejected(RejectReason::Server(
                        ServerRejectReason::Forbidden,
                    ))
                };
                Input::AccessResponse(Some((SessionId(from), answer)))
            }
        };
        drive_srt_listener(&mut listener, now, input, &mut handed, &mut reach);
        assert!(listener.pending_sessions() <= MAX_PENDING);
    }
    // Every caller still in its handshake is given up on once its time is out.
    now += PENDING_TIMEOUT;
    drive_srt_listener(&mut listener, now, Input::Timer, &mut handed, &mut reach);
    assert_eq!(
        listener.pending_sessions(),
        0,
        "callers left pending for ever"
    );
    reach
}

/// What srt-tokio's I/O loop does with the listener's actions: carries each out (here:
/// notes the cookies it hands out) and reports success, until the listener waits.
fn drive_srt_listener(
    listener: &mut srt_protocol::listener::MultiplexListener,
    now: std::time::Instant,
    first: srt_protocol::listener::Input,
    handed: &mut std::collections::HashMap<std::net::SocketAddr, i32>,
    reach: &mut SrtReach,
) {
    use srt_protocol::listener::{Action, NextInputContext, MAX_PENDING};
    use srt_protocol::packet::{ControlPacket, ControlTypes, Packet, ShakeType};

    let mut input = first;
    for _ in 0..4 * MAX_PENDING + 16 {
        let action = listener.handle_input(now, input);
        if matches!(action, Action::WaitForInput | Action::Close) {
            return;
        }
        if let Action::SendPacket((
            Packet::Control(ControlPacket {
                control_type: ControlTypes::Handshake(shake),
                ..
            }),
            to,
        )) = &action
        {
            if shake.shake_type == ShakeType::Induction {
                handed.insert(*to, shake.syn_cookie);
            }
        }
        match &action {
            Action::RequestAccess(..) => reach.requested += 1,
            Action::OpenConnection(..) => reach.opened += 1,
            Action::RejectConnection(_, Some(_)) => reach.rejected += 1,
            _ => {}
        }
        input = NextInputContext::for_action(&action).input_from(Ok::<(), ()>(()));
    }
    panic!("the listener's chain of actions does not end");
}
