//! What a datagram on the WebRTC port is, read from its first bytes before any session
//! sees it (RFC 7983's demultiplexing of STUN, DTLS and SRTP/SRTCP on one port), and for a
//! STUN message, the local ICE username fragment that routes it to its session.
//!
//! The one parser here of bytes from anyone on the network: bounded (it reads a STUN
//! message's attribute headers within the message's own length, at most
//! [`MAX_ATTRIBUTES`] of them, and copies nothing), and fuzzed (`fuzzing::whip_demux`).

/// STUN's magic cookie (RFC 5389 §6).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// STUN attribute USERNAME.
const USERNAME: u16 = 0x0006;
/// STUN attribute MESSAGE-INTEGRITY.
const MESSAGE_INTEGRITY: u16 = 0x0008;
/// Attribute headers read at most per message: a binding request has about six.
pub const MAX_ATTRIBUTES: usize = 32;
/// Longest ICE username fragment taken (RFC 8839 allows 256 characters).
pub const MAX_UFRAG_LEN: usize = 256;

/// What a datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// A STUN message (first byte 0..=3, magic cookie, consistent length).
    Stun(Stun<'a>),
    /// A DTLS record (first byte 20..=63).
    Dtls,
    /// SRTP or SRTCP (first byte 128..=191).
    Rtp,
    /// Anything else: dropped.
    Other,
}

/// What routing needs of a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stun<'a> {
    /// The recipient's part of USERNAME (`local:remote` as the sender writes it, the
    /// local one being ours), if it has one that is printable ASCII.
    pub local_ufrag: Option<&'a str>,
    /// MESSAGE-INTEGRITY is the first attribute: a message str0m 0.24's ICE crate would
    /// panic on verifying (fixed upstream in 0.25), dropped before it reaches a session.
    pub integrity_first: bool,
}

/// Classifies `datagram`.
pub fn classify(datagram: &[u8]) -> Datagram<'_> {
    match datagram.first() {
        Some(0..=3) => stun(datagram).map_or(Datagram::Other, Datagram::Stun),
        Some(20..=63) => Datagram::Dtls,
        Some(128..=191) => Datagram::Rtp,
        _ => Datagram::Other,
    }
}

fn stun(message: &[u8]) -> Option<Stun<'_>> {
    let header = message.get(..20)?;
    if header[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if length % 4 != 0 || message.len() != 20 + length {
        return None;
    }
    let mut rest = &message[20..];
    let mut local_ufrag = None;
    let mut integrity_first = false;
    for index in 0..MAX_ATTRIBUTES {
        if rest.is_empty() {
            break;
        }
        let kind = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
        let len = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
        let value = rest.get(4..4 + len)?;
        if index == 0 && kind == MESSAGE_INTEGRITY {
            integrity_first = true;
        }
        if kind == USERNAME && local_ufrag.is_none() {
            local_ufrag = username_local(value);
        }
        let padded = 4 + len.div_ceil(4) * 4;
        rest = rest.get(padded..)?;
    }
    Some(Stun {
        local_ufrag,
        integrity_first,
    })
}

/// The part of a USERNAME before its first `:`, if that is a plausible ufrag.
fn username_local(value: &[u8]) -> Option<&str> {
    let end = value.iter().position(|b| *b == b':')?;
    let local = &value[..end];
    if local.is_empty()
        || local.len() > MAX_UFRAG_LEN
        || !local.iter().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    std::str::from_utf8(local).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request as FFmpeg 9's WHIP muxer sends it (its attributes in its order;
    /// values that matter to routing only).
    fn binding_request(username: &[u8], integrity_first: bool) -> Vec<u8> {
        let mut attributes = Vec::new();
        let mut put = |kind: u16, value: &[u8]| {
            attributes.extend_from_slice(&kind.to_be_bytes());
            attributes.extend_from_slice(&(value.len() as u16).to_be_bytes());
            attributes.extend_from_slice(value);
            attributes.resize(attributes.len().div_ceil(4) * 4, 0);
        };
        if integrity_first {
            put(MESSAGE_INTEGRITY, &[0; 20]);
        }
        put(USERNAME, username);
        put(0x0025, &[]);
        put(0x0024, &[0x7e, 0xff, 0xff, 0xff]);
        if !integrity_first {
            put(MESSAGE_INTEGRITY, &[0; 20]);
        }
        put(0x8028, &[0; 4]);
        let mut message = vec![0x00, 0x01];
        message.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&attributes);
        message
    }

    #[test]
    fn a_binding_request_names_our_ufrag() {
        let request = binding_request(b"srvufrag:36c740b1", false);
        assert_eq!(
            classify(&request),
            Datagram::Stun(Stun {
                local_ufrag: Some("srvufrag"),
                integrity_first: false
            })
        );
        let odd = binding_request(b"abc:defgh", true);
        assert_eq!(
            classify(&odd),
            Datagram::Stun(Stun {
                local_ufrag: Some("abc"),
                integrity_first: true
            })
        );
    }

    #[test]
    fn other_protocols_by_their_first_byte() {
        assert_eq!(classify(&[22, 0xfe, 0xfd, 0, 0]), Datagram::Dtls);
        assert_eq!(classify(&[0x80, 111, 0, 1]), Datagram::Rtp);
        assert_eq!(classify(&[0x90, 200, 0, 1]), Datagram::Rtp);
        for junk in [&[][..], &[4], &[64, 1], &[255; 40], &[0; 19]] {
            assert_eq!(classify(junk), Datagram::Other, "{junk:?}");
        }
    }

    #[test]
    fn malformed_stun_is_other_or_has_no_ufrag() {
        let good = binding_request(b"srv:peer", false);
        // Wrong cookie, a length that disagrees, an attribute running past the end.
        let mut bad_cookie = good.clone();
        bad_cookie[5] ^= 1;
        assert_eq!(classify(&bad_cookie), Datagram::Other);
        assert_eq!(classify(&good[..good.len() - 4]), Datagram::Other);
        let mut overrun = good.clone();
        overrun[23] = 200; // USERNAME's length
        assert_eq!(classify(&overrun), Datagram::Other);
        // Usernames that route nowhere.
        for username in [&b"nocolon"[..], b":remote", b"sp ace:x", b"\xff\xfe:x"] {
            let request = binding_request(username, false);
            assert!(
                matches!(
                    classify(&request),
                    Datagram::Stun(Stun {
                        local_ufrag: None,
                        ..
                    })
                ),
                "{username:?}"
            );
        }
    }
}
