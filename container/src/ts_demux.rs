//! A bounded MPEG-TS demuxer for what SRT publishers send (ISO/IEC 13818-1): one program,
//! one video stream (H.264 or HEVC) and one audio stream (AAC in ADTS, Opus, AC-3 or
//! E-AC-3), as whole PES packets with their timestamps.
//!
//! It reads the PAT for the first program's PMT, the PMT for the first video and the
//! first audio stream it can take, and reassembles their PES packets; every other PID is
//! skipped unread. Bytes may arrive in any pieces (SRT delivers 1316-byte messages, seven
//! packets, but nothing here relies on it): a partial packet waits for the rest, and
//! bytes before a sync byte are dropped.
//!
//! Everything is bounded, because a publisher controls every byte: PSI sections to
//! [`MAX_SECTION`], a video PES to [`MAX_VIDEO_PES`] and an audio PES to
//! [`MAX_AUDIO_PES`]; what goes past a bound is dropped with an error the caller counts,
//! and the next PES starts clean. Pure: no I/O, no clock; fuzzed (`fuzz/fuzz_targets/mpegts.rs`).

use bytes::{Bytes, BytesMut};

use super::ts::{crc32_mpeg2, TS_PACKET_LEN};
use super::ContainerError;

/// Largest PSI section we assemble (PAT, PMT): a PMT of a one-program stream is a few
/// dozen bytes; the standard allows 1021.
pub const MAX_SECTION: usize = 1024;
/// Largest video PES: a 4K key frame at a high bitrate stays well below it.
pub const MAX_VIDEO_PES: usize = 8 * 1024 * 1024;
/// Largest audio PES.
pub const MAX_AUDIO_PES: usize = 256 * 1024;

const SYNC: u8 = 0x47;
const PAT_PID: u16 = 0;
const NULL_PID: u16 = 0x1FFF;

/// What an elementary stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EsKind {
    /// H.264, Annex B (`stream_type` 0x1B).
    H264,
    /// HEVC, Annex B (`stream_type` 0x24).
    Hevc,
    /// AAC in ADTS frames (`stream_type` 0x0F).
    Aac,
    /// Opus (private data with the `Opus` registration descriptor), each packet behind
    /// the control header of the Opus-in-MPEG-TS mapping (ETSI TS 102 366 style).
    Opus,
    /// AC-3 sync frames (`stream_type` 0x81, or private data with an AC-3 descriptor).
    Ac3,
    /// E-AC-3 sync frames (`stream_type` 0x87, or private data with an E-AC-3 descriptor).
    Eac3,
}

impl EsKind {
    fn is_video(self) -> bool {
        matches!(self, EsKind::H264 | EsKind::Hevc)
    }

    fn max_pes(self) -> usize {
        if self.is_video() {
            MAX_VIDEO_PES
        } else {
            MAX_AUDIO_PES
        }
    }
}

/// One PES packet of the video or the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    /// Its stream's kind.
    pub kind: EsKind,
    /// Presentation time, 90 kHz, 33 bits as sent (no unwrapping here).
    pub pts_90k: Option<u64>,
    /// Decode time, 90 kHz, 33 bits; `None` when the PES has none (then it equals the PTS).
    pub dts_90k: Option<u64>,
    /// The adaptation field of its first packet set `random_access_indicator`.
    pub random_access: bool,
    /// The payload: access unit(s) or audio frames.
    pub data: Bytes,
}

/// An elementary stream being reassembled.
#[derive(Debug)]
struct Stream {
    pid: u16,
    kind: EsKind,
    /// The PES in progress: its first packet's RAI and the bytes so far (header included).
    open: Option<(bool, BytesMut)>,
    /// The PES in progress went past its bound: drop until the next start.
    overflowed: bool,
}

impl Stream {
    fn new(pid: u16, kind: EsKind) -> Self {
        Stream {
            pid,
            kind,
            open: None,
            overflowed: false,
        }
    }
}

/// Demuxes one MPEG-TS byte stream.
#[derive(Debug, Default)]
pub struct TsDemuxer {
    /// A packet cut at the end of the last push.
    partial: Vec<u8>,
    pmt_pid: Option<u16>,
    /// A PSI section being assembled: its PID and bytes.
    section: Option<(u16, Vec<u8>)>,
    video: Option<Stream>,
    audio: Option<Stream>,
    /// The PMT version the streams were chosen from.
    pmt_version: Option<u8>,
}

impl TsDemuxer {
    /// A demuxer that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The kinds of the chosen video and audio streams, once the PMT named them.
    pub fn streams(&self) -> (Option<EsKind>, Option<EsKind>) {
        (
            self.video.as_ref().map(|s| s.kind),
            self.audio.as_ref().map(|s| s.kind),
        )
    }

    /// Takes the next bytes of the stream; appends every PES that completed to `out`.
    ///
    /// Errors report one bad packet, section or PES (dropped); the demuxer carries on with
    /// the next bytes, so a caller may count errors and decide when a stream is garbage.
    /// Every PES that completed is in `out` even when an error is returned.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Pes>) -> Result<(), ContainerError> {
        let mut result = Ok(());
        if !self.partial.is_empty() {
            let need = TS_PACKET_LEN - self.partial.len();
            let take = need.min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < TS_PACKET_LEN {
                return Ok(());
            }
            let packet = std::mem::take(&mut self.partial);
            if let Err(e) = self.packet(&packet, out) {
                result = Err(e);
            }
        }
        while !bytes.is_empty() {
            // Resynchronise on a sync byte.
            let Some(start) = bytes.iter().position(|b| *b == SYNC) else {
                break;
            };
            bytes = &bytes[start..];
            if bytes.len() < TS_PACKET_LEN {
                self.partial.extend_from_slice(bytes);
                break;
            }
            let (packet, rest) = bytes.split_at(TS_PACKET_LEN);
            bytes = rest;
            if let Err(e) = self.packet(packet, out) {
                result = Err(e);
            }
        }
        result
    }

    /// The end of the stream: the PES still open are complete now.
    pub fn finish(&mut self, out: &mut Vec<Pes>) -> Result<(), ContainerError> {
        let mut result = Ok(());
        for stream in [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = close(stream, out) {
                result = Err(e);
            }
        }
        result
    }

    fn packet(&mut self, packet: &[u8], out: &mut Vec<Pes>) -> Result<(), ContainerError> {
        const WHAT: &str = "TS packet";
        if packet[1] & 0x80 != 0 {
            return Err(ContainerError::malformed(WHAT, "transport_error_indicator"));
        }
        let pusi = packet[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([packet[1] & 0x1F, packet[2]]);
        if pid == NULL_PID {
            return Ok(());
        }
        let afc = (packet[3] >> 4) & 0x03;
        let mut start = 4;
        let mut random_access = false;
        if afc & 0x02 != 0 {
            let len = usize::from(packet[4]);
            if len > TS_PACKET_LEN - 5 {
                return Err(ContainerError::malformed(
                    WHAT,
                    format!("adaptation field of {len} bytes"),
                ));
            }
            if len > 0 {
                random_access = packet[5] & 0x40 != 0;
            }
            start = 5 + len;
        }
        if afc & 0x01 == 0 {
            return Ok(()); // no payload
        }
        let payload = &packet[start..];
        if pid == PAT_PID || Some(pid) == self.pmt_pid {
            return self.psi(pid, pusi, payload);
        }
        for stream in [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
        {
            if stream.pid == pid {
                return pes_payload(stream, pusi, random_access, payload, out);
            }
        }
        Ok(())
    }

    /// A PSI payload: assembles sections (one at a time, bounded) and reads PAT and PMT.
    fn psi(&mut self, pid: u16, pusi: bool, payload: &[u8]) -> Result<(), ContainerError> {
        const WHAT: &str = "PSI section";
        let data = if pusi {
            let pointer = usize::from(*payload.first().unwrap_or(&0));
            let Some(data) = payload.get(1 + pointer..) else {
                return Err(ContainerError::malformed(
                    WHAT,
                    "pointer_field past the packet",
                ));
            };
            self.section = Some((pid, Vec::with_capacity(data.len())));
            data
        } else {
            payload
        };
        let Some((section_pid, buf)) = self.section.as_mut() else {
            return Ok(()); // a continuation of a section we never saw start
        };
        if *section_pid != pid {
            return Ok(());
        }
        buf.extend_from_slice(data);
        if buf.len() < 3 {
            return Ok(());
        }
        let len = 3 + usize::from(u16::from_be_bytes([buf[1], buf[2]]) & 0x0FFF);
        if len > MAX_SECTION {
            self.section = None;
            return Err(ContainerError::malformed(
                WHAT,
                format!("section of {len} bytes"),
            ));
        }
        if buf.len() < len {
            return Ok(());
        }
        let Some((_, mut section)) = self.section.take() else {
            return Ok(());
        };
        section.truncate(len);
        if len < 12 || crc32_mpeg2(&section) != 0 {
            return Err(ContainerError::malformed(WHAT, "bad length or CRC"));
        }
        match section[0] {
            0x00 if pid == PAT_PID => self.pat(&section),
            0x02 => self.pmt(&section),
            _ => {}
        }
        Ok(())
    }

    fn pat(&mut self, section: &[u8]) {
        // After the 8-byte header, 4 bytes per program, then the CRC.
        let programs = &section[8..section.len() - 4];
        for entry in programs.chunks_exact(4) {
            let number = u16::from_be_bytes([entry[0], entry[1]]);
            let pid = u16::from_be_bytes([entry[2] & 0x1F, entry[3]]);
            if number != 0 {
                if self.pmt_pid != Some(pid) {
                    self.pmt_pid = Some(pid);
                    self.pmt_version = None;
                }
                return;
            }
        }
    }

    fn pmt(&mut self, section: &[u8]) {
        let version = (section[5] >> 1) & 0x1F;
        if self.pmt_version == Some(version) {
            return;
        }
        let end = section.len() - 4;
        let info_len = usize::from(u16::from_be_bytes([section[10], section[11]]) & 0x0FFF);
        let mut i = 12 + info_len;
        let (mut video, mut audio) = (None, None);
        while i + 5 <= end {
            let stream_type = section[i];
            let pid = u16::from_be_bytes([section[i + 1] & 0x1F, section[i + 2]]);
            let es_len = usize::from(u16::from_be_bytes([section[i + 3], section[i + 4]]) & 0x0FFF);
            let descriptors = section
                .get(i + 5..(i + 5 + es_len).min(end))
                .unwrap_or_default();
            i += 5 + es_len;
            let Some(kind) = es_kind(stream_type, descriptors) else {
                continue;
            };
            let slot = if kind.is_video() {
                &mut video
            } else {
                &mut audio
            };
            slot.get_or_insert((pid, kind));
        }
        self.pmt_version = Some(version);
        // Keep a stream that did not change, so a repeated PMT loses nothing in flight.
        let keep = |old: Option<Stream>, new: Option<(u16, EsKind)>| match (old, new) {
            (Some(s), Some((pid, kind))) if s.pid == pid && s.kind == kind => Some(s),
            (_, new) => new.map(|(pid, kind)| Stream::new(pid, kind)),
        };
        self.video = keep(self.video.take(), video);
        self.audio = keep(self.audio.take(), audio);
    }
}

/// The kind of an elementary stream from its `stream_type` and descriptors.
fn es_kind(stream_type: u8, descriptors: &[u8]) -> Option<EsKind> {
    match stream_type {
        0x1B => Some(EsKind::H264),
        0x24 => Some(EsKind::Hevc),
        0x0F => Some(EsKind::Aac),
        0x81 => Some(EsKind::Ac3),
        0x87 => Some(EsKind::Eac3),
        0x06 => {
            let mut rest = descriptors;
            while let [tag, len, tail @ ..] = rest {
                let len = usize::from(*len);
                let body = tail.get(..len).unwrap_or(tail);
                match (*tag, body) {
                    (0x05, [b'O', b'p', b'u', b's', ..]) => return Some(EsKind::Opus),
                    (0x05, [b'A', b'C', b'-', b'3', ..]) | (0x6A, _) => return Some(EsKind::Ac3),
                    (0x05, [b'E', b'A', b'C', b'3', ..]) | (0x7A, _) => return Some(EsKind::Eac3),
                    _ => {}
                }
                rest = tail.get(len..).unwrap_or_default();
            }
            None
        }
        _ => None,
    }
}

/// A packet's payload of an elementary stream.
fn pes_payload(
    stream: &mut Stream,
    pusi: bool,
    random_access: bool,
    payload: &[u8],
    out: &mut Vec<Pes>,
) -> Result<(), ContainerError> {
    let mut result = Ok(());
    if pusi {
        result = close(stream, out);
        stream.open = Some((
            random_access,
            BytesMut::with_capacity(payload.len().max(4096)),
        ));
        stream.overflowed = false;
    }
    if stream.overflowed {
        return result;
    }
    let max = stream.kind.max_pes();
    let Some((_, buf)) = stream.open.as_mut() else {
        return result; // the middle of a PES whose start we never saw
    };
    let len = buf.len() + payload.len();
    if len > max {
        stream.open = None;
        stream.overflowed = true;
        return Err(ContainerError::TooLong {
            what: "PES packet",
            len,
            max,
        });
    }
    buf.extend_from_slice(payload);
    // A PES that states its length is complete as soon as that much arrived: audio leaves
    // at once instead of waiting for the next packet to start.
    if buf.len() >= 6 {
        let declared = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
        if declared != 0 && buf.len() >= 6 + declared {
            return result.and(close(stream, out));
        }
    }
    result
}

/// Parses the PES in progress, if any, into `out`.
fn close(stream: &mut Stream, out: &mut Vec<Pes>) -> Result<(), ContainerError> {
    const WHAT: &str = "PES packet";
    let Some((random_access, buf)) = stream.open.take() else {
        return Ok(());
    };
    let buf = buf.freeze();
    if buf.len() < 9 || buf[..3] != [0, 0, 1] {
        return Err(ContainerError::malformed(WHAT, "no start code prefix"));
    }
    let declared = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    let flags = buf[7];
    let header_len = usize::from(buf[8]);
    let data_start = 9 + header_len;
    let end = if declared == 0 {
        buf.len()
    } else {
        (6 + declared).min(buf.len())
    };
    if data_start > end {
        return Err(ContainerError::truncated(WHAT, data_start, end));
    }
    let header = &buf[9..data_start];
    let (pts_90k, dts_90k) = match flags >> 6 {
        0b10 => (Some(timestamp(header, 0)?), None),
        0b11 => (Some(timestamp(header, 0)?), Some(timestamp(header, 5)?)),
        _ => (None, None),
    };
    if data_start == end {
        return Ok(());
    }
    out.push(Pes {
        kind: stream.kind,
        pts_90k,
        dts_90k,
        random_access,
        data: buf.slice(data_start..end),
    });
    Ok(())
}

/// A 33-bit PTS or DTS at `at` in a PES header.
fn timestamp(header: &[u8], at: usize) -> Result<u64, ContainerError> {
    let Some(b) = header.get(at..at + 5) else {
        return Err(ContainerError::truncated(
            "PES timestamp",
            at + 5,
            header.len(),
        ));
    };
    Ok((u64::from(b[0] >> 1) & 0x07) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1))
}

#[cfg(test)]
mod tests {
    use super::super::ts::{TsAudio, TsMuxer, TsVideo};
    use super::*;
    use proptest::prelude::*;

    /// Our own muxer's output (H.264 + ADTS): every PES comes back with its times.
    fn muxed() -> (Vec<TsVideo>, Vec<TsAudio>, Bytes) {
        let video: Vec<TsVideo> = (0..5u64)
            .map(|i| TsVideo {
                pts_90k: 900_000 + i * 3000 + 3000,
                dts_90k: 900_000 + i * 3000,
                keyframe: i == 0,
                data: Bytes::from(vec![0, 0, 0, 1, 0x65, i as u8, 0xAA]),
            })
            .collect();
        let audio: Vec<TsAudio> = (0..3u64)
            .map(|i| TsAudio {
                pts_90k: 900_000 + i * 1920,
                data: Bytes::from(vec![0xFF, 0xF1, 0x50, 0x80, 0x01, 0x7F, 0xFC, i as u8]),
            })
            .collect();
        let bytes = TsMuxer::new(true).segment(&video, &audio);
        (video, audio, bytes)
    }

    #[test]
    fn our_muxer_reads_back() {
        let (video, audio, bytes) = muxed();
        let mut demuxer = TsDemuxer::new();
        let mut out = Vec::new();
        // In odd pieces, as a network delivers them.
        for piece in bytes.chunks(1000) {
            demuxer.push(piece, &mut out).expect("valid");
        }
        demuxer.finish(&mut out).expect("valid");
        assert_eq!(demuxer.streams(), (Some(EsKind::H264), Some(EsKind::Aac)));
        let got_video: Vec<&Pes> = out.iter().filter(|p| p.kind == EsKind::H264).collect();
        assert_eq!(got_video.len(), video.len());
        for (got, sent) in got_video.iter().zip(&video) {
            assert_eq!(got.pts_90k, Some(sent.pts_90k));
            assert_eq!(got.dts_90k, Some(sent.dts_90k));
            assert_eq!(got.random_access, sent.keyframe);
            // The muxer adds an access unit delimiter in front.
            assert!(got.data.ends_with(&sent.data[4..]));
        }
        let got_audio: Vec<u8> = out
            .iter()
            .filter(|p| p.kind == EsKind::Aac)
            .flat_map(|p| p.data.to_vec())
            .collect();
        let sent_audio: Vec<u8> = audio.iter().flat_map(|a| a.data.to_vec()).collect();
        assert_eq!(got_audio, sent_audio);
    }

    #[test]
    fn garbage_between_packets_is_skipped() {
        let (video, _, bytes) = muxed();
        let mut noisy = b"junk".to_vec();
        for packet in bytes.chunks(TS_PACKET_LEN) {
            noisy.extend_from_slice(packet);
            noisy.extend_from_slice(b"\x00\x01");
        }
        let mut demuxer = TsDemuxer::new();
        let mut out = Vec::new();
        let _ = demuxer.push(&noisy, &mut out);
        let _ = demuxer.finish(&mut out);
        assert_eq!(
            out.iter().filter(|p| p.kind == EsKind::H264).count(),
            video.len()
        );
    }

    #[test]
    fn private_streams_are_told_apart_by_their_descriptors() {
        assert_eq!(es_kind(0x06, b"\x05\x04Opus"), Some(EsKind::Opus));
        assert_eq!(
            es_kind(0x06, b"\x0a\x04und\x00\x6a\x01\x00"),
            Some(EsKind::Ac3)
        );
        assert_eq!(es_kind(0x06, b"\x7a\x01\x00"), Some(EsKind::Eac3));
        assert_eq!(es_kind(0x06, b"\x05\x04KLVA"), None);
        assert_eq!(es_kind(0x06, b"\x05\xffOp"), None);
        assert_eq!(es_kind(0x02, b""), None);
    }

    #[test]
    fn an_oversized_pes_is_dropped_and_the_next_one_read() {
        let mut stream = Stream::new(0x100, EsKind::Aac);
        let mut out = Vec::new();
        let header = [0, 0, 1, 0xC0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
        pes_payload(&mut stream, true, false, &header, &mut out).expect("starts");
        let chunk = vec![0u8; 184];
        let mut failed = false;
        for _ in 0..(MAX_AUDIO_PES / 184 + 2) {
            failed |= pes_payload(&mut stream, false, false, &chunk, &mut out).is_err();
        }
        assert!(failed && out.is_empty());
        pes_payload(&mut stream, true, false, &header, &mut out).expect("starts again");
        pes_payload(&mut stream, false, false, b"abc", &mut out).expect("fits");
        close(&mut stream, &mut out).expect("complete");
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].data[..], b"abc");
    }

    proptest! {
        #[test]
        fn never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..6)) {
            let mut demuxer = TsDemuxer::new();
            let mut out = Vec::new();
            for c in &chunks {
                let _ = demuxer.push(c, &mut out);
            }
            let _ = demuxer.finish(&mut out);
        }

        /// Any cut of a valid stream into pieces gives the same PES.
        #[test]
        fn pieces_do_not_matter(cuts in proptest::collection::vec(1usize..600, 1..12)) {
            let (_, _, bytes) = muxed();
            let whole = {
                let mut d = TsDemuxer::new();
                let mut out = Vec::new();
                d.push(&bytes, &mut out).expect("valid");
                d.finish(&mut out).expect("valid");
                out
            };
            let mut d = TsDemuxer::new();
            let mut out = Vec::new();
            let mut rest = &bytes[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() { break; }
                let (piece, tail) = rest.split_at((*cut).min(rest.len()));
                d.push(piece, &mut out).expect("valid");
                rest = tail;
            }
            d.finish(&mut out).expect("valid");
            prop_assert_eq!(out, whole);
        }
    }
}
