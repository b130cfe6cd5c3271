//! ICE over TCP (RFC 6544): on a TCP connection, each STUN message, DTLS record and SRTP
//! packet that would have been one datagram travels as one frame, its length as two
//! big-endian bytes and then its bytes (RFC 4571).
//!
//! [`Deframer`] reads frames out of whatever the connection delivers, split anywhere,
//! holding at most one frame's bytes: a frame longer than the largest datagram the WebRTC
//! side reads, or of length zero, is an error that ends the connection (nothing that
//! speaks ICE-TCP sends either). The one parser of TCP bytes on the WebRTC side: fuzzed
//! (`fuzzing::ice_tcp_framing`) and property tested against [`frame`].

use std::fmt;

/// Why a connection's bytes are not RFC 4571 frames of datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// A frame announced a length of zero.
    Empty,
    /// A frame announced more bytes than a datagram may have.
    TooLong {
        /// The announced length.
        length: usize,
        /// The most taken.
        max: usize,
    },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::Empty => f.write_str("an ICE-TCP frame of length zero"),
            FramingError::TooLong { length, max } => {
                write!(f, "an ICE-TCP frame of {length} bytes (at most {max})")
            }
        }
    }
}

impl std::error::Error for FramingError {}

/// `packet` framed for a TCP connection; `None` if it is longer than a frame can say.
pub fn frame(packet: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(packet.len()).ok()?;
    let mut framed = Vec::with_capacity(2 + packet.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(packet);
    Some(framed)
}

/// Reads frames of at most `max` bytes out of a byte stream.
#[derive(Debug)]
pub struct Deframer {
    max: usize,
    /// The length's bytes read so far (at most two).
    header: Vec<u8>,
    /// The frame being read, once its length is known.
    body: Option<(usize, Vec<u8>)>,
}

impl Deframer {
    /// A deframer that takes frames of 1 to `max` bytes.
    pub fn new(max: usize) -> Self {
        Deframer {
            max,
            header: Vec::with_capacity(2),
            body: None,
        }
    }

    /// Reads `bytes`, the next the connection delivered; the frames they complete, in
    /// order, or the first error (after which the connection is not read on).
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, FramingError> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            match &mut self.body {
                None => {
                    let take = (2 - self.header.len()).min(bytes.len());
                    self.header.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if let [high, low] = self.header[..] {
                        self.header.clear();
                        let length = usize::from(u16::from_be_bytes([high, low]));
                        if length == 0 {
                            return Err(FramingError::Empty);
                        }
                        if length > self.max {
                            return Err(FramingError::TooLong {
                                length,
                                max: self.max,
                            });
                        }
                        self.body = Some((length, Vec::with_capacity(length)));
                    }
                }
                Some((length, body)) => {
                    let take = (*length - body.len()).min(bytes.len());
                    body.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if body.len() == *length {
                        if let Some((_, done)) = self.body.take() {
                            frames.push(done);
                        }
                    }
                }
            }
        }
        Ok(frames)
    }

    /// Bytes held of a frame not yet complete (its length's included).
    pub fn pending(&self) -> usize {
        self.header.len() + self.body.as_ref().map_or(0, |(_, body)| 2 + body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut stream = frame(b"stun").expect("small");
        stream.extend(frame(&[0x80; 1200]).expect("small"));
        let mut deframer = Deframer::new(2048);
        assert_eq!(
            deframer.push(&stream[..1]).expect("frames"),
            Vec::<Vec<u8>>::new()
        );
        assert_eq!(deframer.pending(), 1);
        assert_eq!(
            deframer.push(&stream[1..7]).expect("frames"),
            vec![b"stun".to_vec()]
        );
        assert_eq!(deframer.pending(), 1);
        let rest = deframer.push(&stream[7..]).expect("frames");
        assert_eq!(rest, vec![vec![0x80; 1200]]);
        assert_eq!(deframer.pending(), 0);
    }

    #[test]
    fn empty_and_oversized_frames_end_the_connection() {
        assert_eq!(
            Deframer::new(2048).push(&[0, 0, 1]),
            Err(FramingError::Empty)
        );
        assert_eq!(
            Deframer::new(2048).push(&[0x08, 0x01]),
            Err(FramingError::TooLong {
                length: 2049,
                max: 2048
            })
        );
        // A slow header is judged when its second byte comes.
        let mut slow = Deframer::new(100);
        assert_eq!(slow.push(&[0xff]), Ok(vec![]));
        assert!(slow.push(&[0xff]).is_err());
    }

    #[test]
    fn a_frame_says_at_most_u16_max() {
        assert!(frame(&vec![0; 65_535]).is_some());
        assert!(frame(&vec![0; 65_536]).is_none());
        assert_eq!(frame(&[7, 8]).expect("small"), vec![0, 2, 7, 8]);
    }

    proptest! {
        /// Whatever the packets and however the connection splits their frames, the
        /// deframer gives back the packets, in order, and holds nothing afterwards.
        #[test]
        fn deframing_undoes_framing(
            packets in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 1..1500), 0..20),
            cuts in proptest::collection::vec(1usize..3000, 0..40),
        ) {
            let stream: Vec<u8> = packets.iter().flat_map(|p| frame(p).expect("small")).collect();
            let mut deframer = Deframer::new(1500);
            let mut out = Vec::new();
            let mut rest = &stream[..];
            let mut cuts = cuts.into_iter();
            while !rest.is_empty() {
                let take = cuts.next().unwrap_or(rest.len()).min(rest.len());
                out.extend(deframer.push(&rest[..take]).expect("frames"));
                prop_assert!(deframer.pending() <= 2 + 1500);
                rest = &rest[take..];
            }
            prop_assert_eq!(out, packets);
            prop_assert_eq!(deframer.pending(), 0);
        }
    }
}
