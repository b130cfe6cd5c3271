//! The MPEG-TS muxer for HLS segments (ISO/IEC 13818-1, as HLS players read it).
//!
//! One program: a PMT on PID 0x1000, H.264 or HEVC on PID 0x100 (which also carries the
//! PCR) and, optionally, ADTS AAC on PID 0x101. Every segment starts with PAT and PMT so it can be
//! played alone; continuity counters carry over from segment to segment so a player reading
//! them back to back sees one continuous stream.
//!
//! The muxer is a pure function of its input and its counters: no clocks, no I/O. A
//! segment is built in one buffer whose exact size is computed first.

use bytes::{BufMut, Bytes, BytesMut};

/// Size of a transport stream packet.
pub const TS_PACKET_LEN: usize = 188;
/// PID of the program association table.
pub const PAT_PID: u16 = 0x0000;
/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 elementary stream, also the PCR PID.
pub const VIDEO_PID: u16 = 0x0100;
/// PID of the AAC (ADTS) elementary stream.
pub const AUDIO_PID: u16 = 0x0101;
/// The program number in PAT and PMT.
const PROGRAM_NUMBER: u16 = 1;
/// `stream_type` of H.264 video.
const STREAM_TYPE_H264: u8 = 0x1B;
/// `stream_type` of HEVC video.
const STREAM_TYPE_HEVC: u8 = 0x24;
/// `stream_type` of AAC audio with ADTS framing.
const STREAM_TYPE_ADTS: u8 = 0x0F;
/// PES `stream_id` of the first video stream.
const STREAM_ID_VIDEO: u8 = 0xE0;
/// PES `stream_id` of the first audio stream.
const STREAM_ID_AUDIO: u8 = 0xC0;

/// How far the PCR runs ahead of the DTS, in 90 kHz ticks: 0.7 s, as ffmpeg's default
/// `muxdelay`. Decoders buffer this much before decoding, which absorbs the burstiness of
/// large keyframes; players that compare against ffmpeg's output see the same offset.
const PCR_DELAY_90K: u64 = 63_000;
/// Audio frames are grouped into PES packets of about this many bytes: one PES per ~23 ms
/// frame would spend a PES header and a mostly-stuffed TS packet on every frame.
const AUDIO_PES_TARGET: usize = 2048;
/// The largest audio payload one PES can carry: `PES_packet_length` is 16 bits and counts
/// the three flag/length bytes and the five PTS bytes too.
const MAX_AUDIO_PES_PAYLOAD: usize = 0xFFFF - 3 - 5;
/// TS payload bytes per packet without adaptation field.
const PACKET_PAYLOAD: usize = TS_PACKET_LEN - 4;
/// Adaptation field carrying a PCR: length byte, flags byte, six PCR bytes.
const PCR_AF_LEN: usize = 8;
/// Timestamps and PCR bases are 33-bit counters.
const TS_33_BITS: u64 = (1 << 33) - 1;

/// One H.264 access unit to mux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsVideo {
    /// Presentation time in 90 kHz ticks; written modulo 2^33.
    pub pts_90k: u64,
    /// Decode time in 90 kHz ticks; written modulo 2^33, and omitted when equal to the PTS.
    pub dts_90k: u64,
    /// Marks the packet a player may start decoding at (random_access_indicator).
    pub keyframe: bool,
    /// The access unit in Annex B form, as [`avcc_to_annexb`](super::avcc_to_annexb) makes it.
    pub data: Bytes,
}

/// AAC audio to mux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsAudio {
    /// Presentation time of the first frame in 90 kHz ticks; written modulo 2^33.
    pub pts_90k: u64,
    /// One or more complete ADTS frames.
    pub data: Bytes,
}

/// Continuity counters, one per PID, 4 bits each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    pat: u8,
    pmt: u8,
    video: u8,
    audio: u8,
}

/// Muxes the segments of one rendition.
///
/// Keep one per rendition for the life of a publish: the continuity counters carry over
/// from one segment to the next.
#[derive(Debug)]
pub struct TsMuxer {
    /// Whether the PMT announces the audio PID; audio given to a video-only muxer is
    /// dropped.
    has_audio: bool,
    /// `stream_type` of the video: H.264, or HEVC for a `src` rung passing it through.
    video_type: u8,
    counters: Counters,
    /// Reused buffer for grouping several audio frames into one PES payload.
    scratch: Vec<u8>,
}

/// One PES the segment will contain, in output order.
enum Unit<'a> {
    Video(&'a TsVideo),
    /// Consecutive audio inputs that share one PES (or, if one input is too large for a
    /// PES, that one input).
    Audio(&'a [TsAudio]),
}

impl TsMuxer {
    /// A muxer whose segments carry H.264 video and, if `has_audio`, audio.
    pub fn new(has_audio: bool) -> Self {
        Self {
            has_audio,
            video_type: STREAM_TYPE_H264,
            counters: Counters::default(),
            scratch: Vec::new(),
        }
    }

    /// A muxer whose segments carry HEVC video (Annex B, parameter sets before every
    /// IRAP picture) and, if `has_audio`, audio.
    pub fn hevc(has_audio: bool) -> Self {
        Self {
            video_type: STREAM_TYPE_HEVC,
            ..Self::new(has_audio)
        }
    }

    /// Muxes one complete segment: PAT and PMT first, then video and audio PES interleaved
    /// in decode order, and returns whole 188-byte packets.
    ///
    /// `video` must be in decode order and `audio` in presentation order. An audio PES goes
    /// before a video PES when its PTS is earlier than the video DTS (video first on a
    /// tie, so a segment that starts together starts with its keyframe). Consecutive audio
    /// inputs share a PES up to about 2 KB, never reaching past the next video DTS.
    ///
    /// Every video PES starts with a PCR 0.7 s behind its DTS and, on keyframes, the
    /// random_access_indicator.
    pub fn segment(&mut self, video: &[TsVideo], audio: &[TsAudio]) -> Bytes {
        let audio = if self.has_audio { audio } else { &[] };
        let mut packets = 2; // PAT, PMT
        interleave(video, audio, |unit| packets += unit_packets(&unit));
        let mut out = BytesMut::with_capacity(packets * TS_PACKET_LEN);

        self.write_pat(&mut out);
        self.write_pmt(&mut out);
        interleave(video, audio, |unit| match unit {
            Unit::Video(v) => self.write_video(&mut out, v),
            Unit::Audio(frames) => self.write_audio(&mut out, frames),
        });
        debug_assert_eq!(out.len(), packets * TS_PACKET_LEN);
        out.freeze()
    }

    fn write_pat(&mut self, out: &mut BytesMut) {
        let pmt_pid = PMT_PID.to_be_bytes();
        let program = PROGRAM_NUMBER.to_be_bytes();
        let section = [
            0x00, // table_id: program_association_section
            0xB0, // section_syntax_indicator, '0', reserved, section_length high bits
            13,   // section_length: 5 header bytes + 4 program bytes + CRC
            0x00,
            0x01, // transport_stream_id
            0xC1, // reserved, version 0, current_next_indicator
            0x00, // section_number
            0x00, // last_section_number
            program[0],
            program[1],
            0xE0 | pmt_pid[0],
            pmt_pid[1],
        ];
        write_psi(out, PAT_PID, &mut self.counters.pat, &section);
    }

    fn write_pmt(&mut self, out: &mut BytesMut) {
        let mut section = [0u8; 22];
        let both = [(self.video_type, VIDEO_PID), (STREAM_TYPE_ADTS, AUDIO_PID)];
        let streams = if self.has_audio {
            &both[..]
        } else {
            &both[..1]
        };
        let len = 12 + 5 * streams.len();
        // section_length counts from after itself through the CRC: 9 + 5 per stream + 4.
        let section_length = (len - 3 + 4) as u8;
        let program = PROGRAM_NUMBER.to_be_bytes();
        let pcr_pid = VIDEO_PID.to_be_bytes();
        section[..12].copy_from_slice(&[
            0x02, // table_id: TS_program_map_section
            0xB0,
            section_length,
            program[0],
            program[1],
            0xC1, // reserved, version 0, current_next_indicator
            0x00,
            0x00,
            0xE0 | pcr_pid[0],
            pcr_pid[1],
            0xF0, // reserved, program_info_length 0
            0x00,
        ]);
        for (i, &(stream_type, pid)) in streams.iter().enumerate() {
            let pid = pid.to_be_bytes();
            section[12 + 5 * i..17 + 5 * i].copy_from_slice(&[
                stream_type,
                0xE0 | pid[0],
                pid[1],
                0xF0,
                0x00,
            ]);
        }
        write_psi(out, PMT_PID, &mut self.counters.pmt, &section[..len]);
    }

    fn write_video(&mut self, out: &mut BytesMut, v: &TsVideo) {
        let mut header = [0u8; 19];
        let header_len = pes_header(
            &mut header,
            STREAM_ID_VIDEO,
            0,
            true,
            v.pts_90k,
            Some(v.dts_90k),
        );
        let pcr = Pcr {
            base: v.dts_90k.saturating_sub(PCR_DELAY_90K),
            random_access: v.keyframe,
        };
        write_pes(
            out,
            VIDEO_PID,
            &mut self.counters.video,
            Some(pcr),
            &header[..header_len],
            &v.data,
        );
    }

    fn write_audio(&mut self, out: &mut BytesMut, frames: &[TsAudio]) {
        let Some(first) = frames.first() else { return };
        let payload: &[u8] = if frames.len() == 1 {
            &first.data
        } else {
            self.scratch.clear();
            for frame in frames {
                self.scratch.extend_from_slice(&frame.data);
            }
            &self.scratch
        };
        // Nearly always one chunk; a single input too large for a PES is split, and the
        // parts after the first carry no PTS (the decoder continues from the first).
        for (i, chunk) in payload.chunks(MAX_AUDIO_PES_PAYLOAD).enumerate() {
            let mut header = [0u8; 14];
            let header_len = if i == 0 {
                pes_header(
                    &mut header,
                    STREAM_ID_AUDIO,
                    chunk.len(),
                    true,
                    first.pts_90k,
                    None,
                )
            } else {
                pes_continuation_header(&mut header, STREAM_ID_AUDIO, chunk.len())
            };
            write_pes(
                out,
                AUDIO_PID,
                &mut self.counters.audio,
                None,
                &header[..header_len],
                chunk,
            );
        }
    }
}

/// Walks video and audio in output order, calling `visit` once per PES to write.
fn interleave<'a>(video: &'a [TsVideo], audio: &'a [TsAudio], mut visit: impl FnMut(Unit<'a>)) {
    let (mut vi, mut ai) = (0, 0);
    loop {
        let next_dts = video.get(vi).map(|v| v.dts_90k);
        match (next_dts, audio.get(ai)) {
            (Some(dts), Some(a)) if a.pts_90k < dts => {}
            (Some(_), _) => {
                visit(Unit::Video(&video[vi]));
                vi += 1;
                continue;
            }
            (None, Some(_)) => {}
            (None, None) => return,
        }
        // Audio goes next: group what fits in one PES and stays before the next video.
        let mut end = ai + 1;
        let mut bytes = audio[ai].data.len();
        while let Some(a) = audio.get(end) {
            if bytes + a.data.len() > AUDIO_PES_TARGET || next_dts.is_some_and(|d| a.pts_90k >= d) {
                break;
            }
            bytes += a.data.len();
            end += 1;
        }
        visit(Unit::Audio(&audio[ai..end]));
        ai = end;
    }
}

/// How many TS packets `unit` will take; the same arithmetic as [`write_pes`].
fn unit_packets(unit: &Unit<'_>) -> usize {
    match unit {
        Unit::Video(v) => {
            let header = if v.dts_90k == v.pts_90k { 14 } else { 19 };
            pes_packets(header + v.data.len(), PCR_AF_LEN)
        }
        Unit::Audio(frames) => {
            let payload: usize = frames.iter().map(|f| f.data.len()).sum();
            if payload <= MAX_AUDIO_PES_PAYLOAD {
                return pes_packets(14 + payload, 0);
            }
            let full = payload / MAX_AUDIO_PES_PAYLOAD;
            let rest = payload % MAX_AUDIO_PES_PAYLOAD;
            // First chunk with PTS, then continuation chunks with a 9-byte header.
            let mut packets = pes_packets(14 + MAX_AUDIO_PES_PAYLOAD, 0)
                + (full - 1) * pes_packets(9 + MAX_AUDIO_PES_PAYLOAD, 0);
            if rest > 0 {
                packets += pes_packets(9 + rest, 0);
            }
            packets
        }
    }
}

/// Packets for a PES of `len` bytes whose first packet carries an adaptation field of
/// `first_af` bytes.
fn pes_packets(len: usize, first_af: usize) -> usize {
    let first = PACKET_PAYLOAD - first_af;
    if len <= first {
        1
    } else {
        1 + (len - first).div_ceil(PACKET_PAYLOAD)
    }
}

/// Writes a PES header with PTS (and DTS if given and different) into `buf`, returning its
/// length. Audio gets a `PES_packet_length` from `payload_len`; video gets 0 ("unbounded",
/// which TS allows for video only), so a frame of any size fits one PES.
fn pes_header(
    buf: &mut [u8],
    stream_id: u8,
    payload_len: usize,
    aligned: bool,
    pts: u64,
    dts: Option<u64>,
) -> usize {
    let dts = dts.filter(|&d| d != pts);
    let header_data_len = if dts.is_some() { 10 } else { 5 };
    let packet_length = if stream_id == STREAM_ID_VIDEO {
        0
    } else {
        // Callers split audio so this fits.
        u16::try_from(3 + header_data_len + payload_len).unwrap_or(0)
    };
    let [len_hi, len_lo] = packet_length.to_be_bytes();
    buf[..9].copy_from_slice(&[
        0x00,
        0x00,
        0x01,
        stream_id,
        len_hi,
        len_lo,
        // '10', not scrambled, no priority, data_alignment_indicator (the payload starts
        // with an access unit delimiter or an ADTS sync word), no copyright, copy.
        if aligned { 0x84 } else { 0x80 },
        if dts.is_some() { 0xC0 } else { 0x80 },
        header_data_len as u8,
    ]);
    match dts {
        Some(dts) => {
            write_timestamp(&mut buf[9..14], 0x3, pts);
            write_timestamp(&mut buf[14..19], 0x1, dts);
            19
        }
        None => {
            write_timestamp(&mut buf[9..14], 0x2, pts);
            14
        }
    }
}

/// A PES header without timestamps, for the second and later parts of an audio input too
/// large for one PES.
fn pes_continuation_header(buf: &mut [u8], stream_id: u8, payload_len: usize) -> usize {
    let [len_hi, len_lo] = u16::try_from(3 + payload_len).unwrap_or(0).to_be_bytes();
    buf[..9].copy_from_slice(&[
        0x00, 0x00, 0x01, stream_id, len_hi, len_lo, 0x80, 0x00, 0x00,
    ]);
    9
}

/// Writes a 33-bit PTS or DTS with its 4-bit prefix and marker bits.
fn write_timestamp(buf: &mut [u8], prefix: u8, ts: u64) {
    let ts = ts & TS_33_BITS;
    buf[0] = (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1;
    buf[1] = (ts >> 22) as u8;
    buf[2] = (((ts >> 15) as u8 & 0x7F) << 1) | 1;
    buf[3] = (ts >> 7) as u8;
    buf[4] = ((ts as u8 & 0x7F) << 1) | 1;
}

/// What goes into the adaptation field of the first packet of a video PES.
#[derive(Debug, Clone, Copy)]
struct Pcr {
    /// PCR base in 90 kHz ticks (the 27 MHz extension is always 0).
    base: u64,
    random_access: bool,
}

/// Splits one PES (header, then payload) into TS packets on `pid`.
///
/// The first packet has `payload_unit_start_indicator` and, with `pcr`, an adaptation
/// field carrying it. The last packet is padded with adaptation-field stuffing, the only
/// padding TS allows inside a PES.
fn write_pes(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    pcr: Option<Pcr>,
    mut header: &[u8],
    mut payload: &[u8],
) {
    let mut first = true;
    while first || !header.is_empty() || !payload.is_empty() {
        let pcr_here = if first { pcr } else { None };
        let af_base = if pcr_here.is_some() { PCR_AF_LEN } else { 0 };
        let room = PACKET_PAYLOAD - af_base;
        let take = room.min(header.len() + payload.len());
        let af_len = af_base + (room - take);

        let [pid_hi, pid_lo] = pid.to_be_bytes();
        out.put_u8(0x47);
        out.put_u8(if first { 0x40 } else { 0x00 } | (pid_hi & 0x1F));
        out.put_u8(pid_lo);
        out.put_u8(if af_len > 0 { 0x30 } else { 0x10 } | *cc);
        *cc = (*cc + 1) & 0x0F;
        if af_len > 0 {
            // adaptation_field_length counts the bytes after itself.
            out.put_u8((af_len - 1) as u8);
            if af_len > 1 {
                let mut used = 2;
                match pcr_here {
                    Some(pcr) => {
                        out.put_u8(if pcr.random_access { 0x50 } else { 0x10 });
                        put_pcr(out, pcr.base);
                        used += 6;
                    }
                    None => out.put_u8(0x00),
                }
                out.put_bytes(0xFF, af_len - used);
            }
        }
        let from_header = take.min(header.len());
        out.put_slice(&header[..from_header]);
        header = &header[from_header..];
        let from_payload = take - from_header;
        out.put_slice(&payload[..from_payload]);
        payload = &payload[from_payload..];
        first = false;
    }
}

/// Writes a PCR: 33-bit base, six reserved bits, 9-bit extension (0).
fn put_pcr(out: &mut BytesMut, base: u64) {
    let base = base & TS_33_BITS;
    out.put_u32((base >> 1) as u32);
    out.put_u8((((base & 1) as u8) << 7) | 0x7E);
    out.put_u8(0x00);
}

/// Writes one PSI section (which must fit one packet) with pointer field and CRC.
fn write_psi(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    let [pid_hi, pid_lo] = pid.to_be_bytes();
    out.put_slice(&[0x47, 0x40 | pid_hi, pid_lo, 0x10 | *cc, 0x00]);
    *cc = (*cc + 1) & 0x0F;
    out.put_slice(section);
    out.put_u32(crc32_mpeg2(section));
    out.put_bytes(0xFF, TS_PACKET_LEN - 5 - section.len() - 4);
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial value all ones, no reflection, no final
/// XOR), the checksum of PSI sections. Bitwise: it runs over two short sections per
/// segment, so a table would cost more to build than it saves.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn pat_matches_ffmpeg() {
        // The PAT ffmpeg's mpegts muxer writes with the same ids.
        let out = TsMuxer::new(true).segment(&[], &[]);
        assert_eq!(out.len(), 2 * TS_PACKET_LEN);
        assert_eq!(
            &out[..21],
            &[
                0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00,
                0x01, 0xF0, 0x00, 0x2A, 0xB1, 0x04, 0xB2
            ]
        );
        assert!(out[21..TS_PACKET_LEN].iter().all(|&b| b == 0xFF));
    }

    /// A PES as read back from the transport stream.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Pes {
        pub(crate) pts: Option<u64>,
        pub(crate) dts: Option<u64>,
        pub(crate) payload: Vec<u8>,
        /// PCR base and random_access_indicator of the PES's first packet.
        pub(crate) pcr: Option<u64>,
        pub(crate) random_access: bool,
        /// Index of the PES among all PES of the stream, in output order.
        pub(crate) order: usize,
    }

    /// Everything a tiny demuxer learns from a stream.
    #[derive(Debug, Default)]
    pub(crate) struct Demuxed {
        pub(crate) video: Vec<Pes>,
        pub(crate) audio: Vec<Pes>,
        /// Continuity counters per PID, in packet order.
        pub(crate) counters: BTreeMap<u16, Vec<u8>>,
        /// PMT entries: (stream_type, PID), and the PCR PID.
        pub(crate) pmt_streams: Vec<(u8, u16)>,
        pub(crate) pcr_pid: Option<u16>,
    }

    fn read_ts_timestamp(b: &[u8]) -> u64 {
        assert_eq!(b[0] & 1, 1, "marker bit");
        assert_eq!(b[2] & 1, 1, "marker bit");
        assert_eq!(b[4] & 1, 1, "marker bit");
        (u64::from((b[0] >> 1) & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1)
    }

    fn parse_psi(payload: &[u8]) -> &[u8] {
        let pointer = usize::from(payload[0]);
        let section = &payload[1 + pointer..];
        let len = usize::from(u16::from_be_bytes([section[1], section[2]]) & 0x0FFF);
        let section = &section[..3 + len];
        assert_eq!(
            crc32_mpeg2(section),
            0,
            "CRC over a section and its CRC is 0"
        );
        section
    }

    /// Finishes the PES collected for one PID.
    fn finish_pes(raw: Vec<u8>, pcr: Option<u64>, random_access: bool, order: usize) -> Pes {
        assert_eq!(&raw[..3], &[0, 0, 1], "PES start code");
        let declared = usize::from(u16::from_be_bytes([raw[4], raw[5]]));
        if raw[3] == STREAM_ID_AUDIO {
            assert_eq!(declared, raw.len() - 6, "audio PES_packet_length");
        } else {
            assert_eq!(raw[3], STREAM_ID_VIDEO);
            assert_eq!(declared, 0, "video PES is unbounded");
        }
        let flags = raw[7] >> 6;
        let header_len = usize::from(raw[8]);
        let (pts, dts) = match flags {
            0b10 => {
                assert_eq!(raw[9] >> 4, 0x2);
                (Some(read_ts_timestamp(&raw[9..14])), None)
            }
            0b11 => {
                assert_eq!(raw[9] >> 4, 0x3);
                assert_eq!(raw[14] >> 4, 0x1);
                let (pts, dts) = (
                    read_ts_timestamp(&raw[9..14]),
                    read_ts_timestamp(&raw[14..19]),
                );
                assert_ne!(pts, dts, "DTS is written only when it differs");
                (Some(pts), Some(dts))
            }
            0b00 => (None, None),
            _ => panic!("forbidden PTS_DTS_flags"),
        };
        Pes {
            pts,
            dts,
            payload: raw[9 + header_len..].to_vec(),
            pcr,
            random_access,
            order,
        }
    }

    /// A tiny TS demuxer: checks the packet structure as it goes and collects the PES of
    /// both streams.
    pub(crate) fn demux(ts: &[u8]) -> Demuxed {
        assert_eq!(ts.len() % TS_PACKET_LEN, 0, "whole packets");
        let mut d = Demuxed::default();
        // PID -> the PES being collected: raw bytes so far, PCR, RAI, start order.
        let mut open: BTreeMap<u16, (Vec<u8>, Option<u64>, bool, usize)> = BTreeMap::new();
        let mut started = 0;
        let finish = |d: &mut Demuxed, pid: u16, (raw, pcr, rai, order)| {
            let pes = finish_pes(raw, pcr, rai, order);
            if pid == VIDEO_PID {
                d.video.push(pes);
            } else {
                d.audio.push(pes);
            }
        };
        for packet in ts.chunks(TS_PACKET_LEN) {
            assert_eq!(packet[0], 0x47, "sync byte");
            assert_eq!(packet[1] & 0x80, 0, "transport_error_indicator");
            let pusi = packet[1] & 0x40 != 0;
            let pid = u16::from_be_bytes([packet[1] & 0x1F, packet[2]]);
            let afc = (packet[3] >> 4) & 0x03;
            assert!(afc == 1 || afc == 3, "every packet carries payload");
            d.counters.entry(pid).or_default().push(packet[3] & 0x0F);
            let mut payload_start = 4;
            let (mut pcr, mut rai) = (None, false);
            if afc == 3 {
                let af_len = usize::from(packet[4]);
                payload_start = 5 + af_len;
                assert!(
                    payload_start < TS_PACKET_LEN,
                    "payload after adaptation field"
                );
                if af_len > 0 {
                    let flags = packet[5];
                    rai = flags & 0x40 != 0;
                    let mut stuffing_from = 6;
                    if flags & 0x10 != 0 {
                        let b = &packet[6..12];
                        let base = (u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])) << 1)
                            | u64::from(b[4] >> 7);
                        assert_eq!(b[4] & 0x7E, 0x7E, "reserved bits");
                        pcr = Some(base);
                        stuffing_from = 12;
                    }
                    assert_eq!(flags & !0x50, 0, "only PCR and RAI flags are used");
                    assert!(packet[stuffing_from..payload_start]
                        .iter()
                        .all(|&b| b == 0xFF));
                }
                assert!(
                    pusi || (pcr.is_none() && !rai),
                    "PCR/RAI only on a PES start"
                );
            }
            let payload = &packet[payload_start..];
            match pid {
                PAT_PID => {
                    let s = parse_psi(payload);
                    assert_eq!(s[0], 0x00);
                    assert_eq!(
                        &s[8..12],
                        &[0x00, 0x01, 0xF0, 0x00],
                        "program 1 -> PMT 0x1000"
                    );
                }
                PMT_PID => {
                    let s = parse_psi(payload);
                    assert_eq!(s[0], 0x02);
                    assert_eq!(&s[3..5], &[0x00, 0x01]);
                    d.pcr_pid = Some(u16::from_be_bytes([s[8] & 0x1F, s[9]]));
                    let info_len = usize::from(u16::from_be_bytes([s[10], s[11]]) & 0x0FFF);
                    let mut i = 12 + info_len;
                    d.pmt_streams.clear();
                    while i < s.len() - 4 {
                        let pid = u16::from_be_bytes([s[i + 1] & 0x1F, s[i + 2]]);
                        d.pmt_streams.push((s[i], pid));
                        i += 5 + usize::from(u16::from_be_bytes([s[i + 3], s[i + 4]]) & 0x0FFF);
                    }
                }
                VIDEO_PID | AUDIO_PID => {
                    if pusi {
                        if let Some(prev) = open.remove(&pid) {
                            finish(&mut d, pid, prev);
                        }
                        open.insert(pid, (payload.to_vec(), pcr, rai, started));
                        started += 1;
                    } else {
                        open.get_mut(&pid)
                            .expect("continuation of an open PES")
                            .0
                            .extend_from_slice(payload);
                    }
                }
                other => panic!("unexpected PID {other:#x}"),
            }
        }
        for (pid, pes) in std::mem::take(&mut open) {
            finish(&mut d, pid, pes);
        }
        d
    }

    fn video_frame(pts: u64, dts: u64, keyframe: bool, len: usize, seed: u8) -> TsVideo {
        TsVideo {
            pts_90k: pts,
            dts_90k: dts,
            keyframe,
            data: (0..len)
                .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                .collect(),
        }
    }

    #[test]
    fn oversized_audio_is_split_into_bounded_pes() {
        let big = TsAudio {
            pts_90k: 1000,
            data: (0..150_000u32).map(|i| (i % 251) as u8).collect(),
        };
        let small = TsAudio {
            pts_90k: 5000,
            data: Bytes::from_static(&[0xFF, 0xF1, 1, 2, 3]),
        };
        let out = TsMuxer::new(true).segment(&[], &[big.clone(), small.clone()]);
        let d = demux(&out);
        assert_eq!(d.audio.len(), 4);
        assert_eq!(d.audio[0].pts, Some(1000));
        assert_eq!((d.audio[1].pts, d.audio[2].pts), (None, None));
        let joined: Vec<u8> = d.audio[..3]
            .iter()
            .flat_map(|p| p.payload.clone())
            .collect();
        assert_eq!(joined, big.data);
        assert_eq!(d.audio[3].pts, Some(5000));
        assert_eq!(d.audio[3].payload, small.data);
    }

    #[test]
    fn video_only_muxer_announces_and_writes_video_only() {
        let mut muxer = TsMuxer::new(false);
        let audio = [TsAudio {
            pts_90k: 0,
            data: Bytes::from_static(&[1]),
        }];
        let out = muxer.segment(&[video_frame(3000, 3000, true, 500, 1)], &audio);
        let d = demux(&out);
        assert_eq!(d.pmt_streams, vec![(0x1B, VIDEO_PID)]);
        assert_eq!(d.pcr_pid, Some(VIDEO_PID));
        assert!(d.audio.is_empty());
        assert_eq!(d.video.len(), 1);
    }

    #[test]
    fn pes_boundaries_around_packet_sizes() {
        // Payload sizes that make the PES end exactly at, one short of, and one past a
        // packet boundary, with and without the PCR adaptation field.
        for len in 150..=400 {
            let mut muxer = TsMuxer::new(true);
            let v = video_frame(9000, 6000, len % 2 == 0, len, 7);
            let a = TsAudio {
                pts_90k: 6000,
                data: (0..len).map(|i| i as u8).collect(),
            };
            let out = muxer.segment(std::slice::from_ref(&v), std::slice::from_ref(&a));
            let d = demux(&out);
            assert_eq!(d.video[0].payload, v.data, "video len {len}");
            assert_eq!(d.audio[0].payload, a.data, "audio len {len}");
        }
    }

    #[derive(Debug, Clone)]
    struct SegmentInput {
        video: Vec<TsVideo>,
        audio: Vec<TsAudio>,
    }

    fn segment_input(start: u64) -> impl Strategy<Value = SegmentInput> {
        let video = proptest::collection::vec(
            (
                1u64..6000,
                0u64..9000,
                any::<bool>(),
                0usize..2500,
                any::<u8>(),
            ),
            0..10,
        );
        let audio = proptest::collection::vec((1u64..4000, 1usize..900, any::<u8>()), 0..25);
        (0u64..10_000, video, audio).prop_map(move |(audio_offset, video, audio)| {
            let mut dts = start;
            let video = video
                .into_iter()
                .map(|(step, cto, key, len, seed)| {
                    dts += step;
                    video_frame(dts + cto, dts, key, len, seed)
                })
                .collect();
            let mut pts = start + audio_offset;
            let audio = audio
                .into_iter()
                .map(|(step, len, seed)| {
                    pts += step;
                    TsAudio {
                        pts_90k: pts,
                        data: (0..len).map(|i| (i as u8) ^ seed).collect(),
                    }
                })
                .collect();
            SegmentInput { video, audio }
        })
    }

    /// Checks one demuxed segment against its input.
    fn check_segment(input: &SegmentInput, d: &Demuxed) -> Result<(), TestCaseError> {
        let mask = |t: u64| t & TS_33_BITS;
        prop_assert_eq!(&d.pmt_streams, &vec![(0x1B, VIDEO_PID), (0x0F, AUDIO_PID)]);
        prop_assert_eq!(d.pcr_pid, Some(VIDEO_PID));

        // Video: one PES per access unit, exact bytes and timestamps, PCR and RAI.
        prop_assert_eq!(d.video.len(), input.video.len());
        for (pes, v) in d.video.iter().zip(&input.video) {
            prop_assert_eq!(&pes.payload[..], &v.data[..]);
            prop_assert_eq!(pes.pts, Some(mask(v.pts_90k)));
            let dts = (v.dts_90k != v.pts_90k).then(|| mask(v.dts_90k));
            prop_assert_eq!(pes.dts, dts);
            prop_assert_eq!(pes.pcr, Some(mask(v.dts_90k.saturating_sub(PCR_DELAY_90K))));
            prop_assert_eq!(pes.random_access, v.keyframe);
        }

        // Audio: each PES is a run of consecutive inputs with the first one's PTS.
        let mut frames = input.audio.iter().peekable();
        for pes in &d.audio {
            let first = frames.next().expect("a PES has at least one input");
            prop_assert_eq!(pes.pts, Some(mask(first.pts_90k)));
            prop_assert!(pes.pcr.is_none());
            let mut expected = first.data.to_vec();
            while expected.len() < pes.payload.len() {
                let next = frames.next().expect("the PES holds more inputs");
                expected.extend_from_slice(&next.data);
            }
            prop_assert_eq!(&pes.payload, &expected);
            prop_assert!(expected.len() <= AUDIO_PES_TARGET || expected.len() == first.data.len());
        }
        prop_assert!(frames.next().is_none(), "every audio input was written");

        // Order: decode-time keys never go back; audio precedes video only when earlier,
        // and a group never reaches the next video frame.
        let mut all: Vec<(usize, bool, u64, u64)> = d
            .video
            .iter()
            .zip(&input.video)
            .map(|(p, v)| (p.order, true, v.dts_90k, v.dts_90k))
            .collect();
        let mut frames = input.audio.iter();
        for pes in &d.audio {
            let mut used = 0;
            let mut first = None;
            let mut last = 0;
            for f in frames.by_ref() {
                first.get_or_insert(f.pts_90k);
                last = f.pts_90k;
                used += f.data.len();
                if used == pes.payload.len() {
                    break;
                }
            }
            all.push((pes.order, false, first.unwrap_or(0), last));
        }
        all.sort_by_key(|&(order, ..)| order);
        for pair in all.windows(2) {
            let (_, a_video, a_first, a_last) = pair[0];
            let (_, b_video, b_first, _) = pair[1];
            prop_assert!(a_first <= b_first, "keys in order: {:?}", pair);
            if !a_video && b_video {
                prop_assert!(
                    a_last < b_first,
                    "audio group passes the next video: {:?}",
                    pair
                );
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn segments_demux_back_to_their_input(
            first in segment_input(0),
            second in segment_input(1 << 33),
        ) {
            let mut muxer = TsMuxer::new(true);
            let a = muxer.segment(&first.video, &first.audio);
            let b = muxer.segment(&second.video, &second.audio);
            for seg in [&a, &b] {
                prop_assert_eq!(seg.len() % TS_PACKET_LEN, 0);
                prop_assert!(seg.chunks(TS_PACKET_LEN).all(|p| p[0] == 0x47));
                // PAT, then PMT, at the start of every segment.
                prop_assert_eq!(&seg[1..3], &[0x40, 0x00]);
                prop_assert_eq!(&seg[TS_PACKET_LEN + 1..TS_PACKET_LEN + 3], &[0x50, 0x00]);
            }
            check_segment(&first, &demux(&a))?;
            check_segment(&second, &demux(&b))?;

            // Continuity counters run on across both segments, per PID.
            let mut both = a.to_vec();
            both.extend_from_slice(&b);
            for (pid, counters) in demux(&both).counters {
                for (i, &cc) in counters.iter().enumerate() {
                    prop_assert_eq!(usize::from(cc), i % 16, "PID {:#x}", pid);
                }
            }
        }
    }
}
