//! The WebRTC side's parsers of outside bytes (issue 32, and ICE-TCP for issue 50): what
//! reaches the WHIP ingest's media port as datagrams or over TCP, and the offers its HTTP
//! side reads, all before a session (str0m) sees anything. `intake::webrtc` holds them, so
//! these harnesses link neither OpenSSL nor str0m.

/// Datagrams on the WebRTC port, before any session sees them (`intake::webrtc::demux`):
/// told apart without a panic; a STUN message's ufrag is a plausible one.
pub fn whip_demux(data: &[u8]) {
    use intake::webrtc::demux::{classify, Datagram, MAX_UFRAG_LEN};
    if let Datagram::Stun(stun) = classify(data) {
        if let Some(ufrag) = stun.local_ufrag {
            assert!(
                !ufrag.is_empty() && ufrag.len() <= MAX_UFRAG_LEN,
                "an implausible ufrag: {ufrag:?}"
            );
        }
    }
}

/// A WHIP session's ICE-TCP connection (`intake::webrtc::framing`), its bytes split where
/// the input's first byte says: every frame taken is within the limit and not empty, and
/// framing what was taken gives back what was read, up to the first error.
pub fn ice_tcp_framing(data: &[u8]) {
    use intake::webrtc::framing::{frame, Deframer};
    const MAX: usize = intake::webrtc::MAX_DATAGRAM;
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut deframer = Deframer::new(MAX);
    let mut again = Vec::new();
    for piece in stream.chunks(chunk) {
        match deframer.push(piece) {
            Ok(frames) => {
                for f in frames {
                    assert!(
                        !f.is_empty() && f.len() <= MAX,
                        "a frame of {} bytes",
                        f.len()
                    );
                    again.extend(frame(&f).expect("a frame within u16"));
                }
            }
            Err(_) => return,
        }
        assert!(
            deframer.pending() <= 2 + MAX,
            "{} bytes held",
            deframer.pending()
        );
    }
    assert_eq!(
        &stream[..again.len()],
        &again[..],
        "framing what was read gives it back"
    );
}

/// WHIP offers, read before str0m sees them (`intake::webrtc::sdp`): bounded, never a
/// panic; what is read has at least one and at most `MAX_MEDIA` media sections.
pub fn whip_offer(data: &[u8]) {
    use intake::webrtc::sdp::{summarize, MAX_MEDIA};
    if let Ok(summary) = summarize(data) {
        assert!(
            (1..=MAX_MEDIA).contains(&summary.media),
            "an offer of {} media sections",
            summary.media
        );
    }
}
