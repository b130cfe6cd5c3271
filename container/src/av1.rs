//! AV1 as E-RTMP's `av01` carries it: an AV1CodecConfigurationRecord (`av1C`, AV1-ISOBMFF
//! §2.3) once, then each access unit as OBUs in the low-overhead format (every OBU with
//! its size field), which is also what an MP4 sample holds.
//!
//! Read here: the record (profile, level, tier, bit depth for the codec string, and its
//! configuration OBUs), OBU boundaries, and the sequence header up to the maximum picture
//! size. Frames are never looked into: where a segment may start is the publisher's key
//! frame flag, as for every codec over RTMP.

use bytes::Bytes;

use super::bits::BitReader;
use super::ContainerError;

/// OBU type of a sequence header.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
/// OBU type of a temporal delimiter, which an MP4 sample must not carry.
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
/// OBU type of padding, which an MP4 sample should not carry.
pub const OBU_PADDING: u8 = 15;

/// An AV1CodecConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1Config {
    /// `seq_profile` (0 Main, 1 High, 2 Professional).
    pub profile: u8,
    /// `seq_level_idx_0` (e.g. 8 = level 4.0).
    pub level_idx: u8,
    /// `seq_tier_0`: the High tier.
    pub tier_high: bool,
    /// Bit depth: 8, 10 or 12.
    pub bit_depth: u8,
    /// `mono_chrome`.
    pub monochrome: bool,
    /// The record as it came: what the `av1C` box of the init segment holds.
    pub record: Bytes,
    /// The configuration OBUs (a sequence header, at most), after the four fixed bytes.
    pub config_obus: Bytes,
}

impl Av1Config {
    /// Parses a record (the body of an `av01` sequence start).
    pub fn parse(record: &Bytes) -> Result<Self, ContainerError> {
        const WHAT: &str = "AV1CodecConfigurationRecord";
        if record.len() < 4 {
            return Err(ContainerError::truncated(WHAT, 4, record.len()));
        }
        if record[0] != 0x81 {
            return Err(ContainerError::malformed(
                WHAT,
                format!("marker and version byte {:#04x}, not 0x81", record[0]),
            ));
        }
        let high_bitdepth = record[2] & 0x40 != 0;
        let twelve_bit = record[2] & 0x20 != 0;
        let config = Av1Config {
            profile: record[1] >> 5,
            level_idx: record[1] & 0x1F,
            tier_high: record[2] & 0x80 != 0,
            bit_depth: match (high_bitdepth, twelve_bit) {
                (true, true) => 12,
                (true, false) => 10,
                _ => 8,
            },
            monochrome: record[2] & 0x10 != 0,
            record: record.clone(),
            config_obus: record.slice(4..),
        };
        // The configuration OBUs must at least be well framed.
        for obu in obus(&config.config_obus) {
            obu?;
        }
        Ok(config)
    }

    /// RFC 6381 codec string for `CODECS` (AV1-ISOBMFF §5, the short form):
    /// `av01.P.LLT.DD`, e.g. `av01.0.08M.08`.
    pub fn codec_string(&self) -> String {
        format!(
            "av01.{}.{:02}{}.{:02}",
            self.profile,
            self.level_idx,
            if self.tier_high { 'H' } else { 'M' },
            self.bit_depth
        )
    }

    /// The maximum picture size from the record's sequence header, or from `first_frame`'s
    /// when the record has none (the spec lets it go in-band).
    pub fn dimensions(&self, first_frame: &[u8]) -> Result<(u32, u32), ContainerError> {
        let header = sequence_header(&self.config_obus)
            .or_else(|| sequence_header(first_frame))
            .ok_or_else(|| {
                ContainerError::malformed("AV1 stream", "no sequence header before the first frame")
            })?;
        SequenceHeader::parse(header).map(|h| (h.max_width, h.max_height))
    }
}

/// One OBU: its type and all its bytes (header, size field and payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu<'a> {
    /// `obu_type`.
    pub kind: u8,
    /// The OBU's payload (after header and size).
    pub payload: &'a [u8],
    /// The whole OBU, as it travels.
    pub whole: &'a [u8],
}

/// Iterates the OBUs of a low-overhead buffer. An OBU without a size field is the last of
/// the buffer (AV1 §5.2 allows it only there); a size past the end is an error, after
/// which iteration stops.
pub fn obus(data: &[u8]) -> Obus<'_> {
    Obus { rest: data }
}

/// Iterator returned by [`obus`].
#[derive(Debug, Clone)]
pub struct Obus<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Obus<'a> {
    type Item = Result<Obu<'a>, ContainerError>;

    fn next(&mut self) -> Option<Self::Item> {
        const WHAT: &str = "AV1 OBU";
        if self.rest.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.rest);
        let header = data[0];
        if header & 0x80 != 0 {
            return Some(Err(ContainerError::malformed(WHAT, "forbidden bit set")));
        }
        let kind = (header >> 3) & 0x0F;
        let mut pos = 1 + usize::from(header & 0x04 != 0); // extension header
        if pos > data.len() {
            return Some(Err(ContainerError::truncated(WHAT, pos, data.len())));
        }
        let size = if header & 0x02 != 0 {
            match leb128(&data[pos..]) {
                Some((size, used)) => {
                    pos += used;
                    size
                }
                None => return Some(Err(ContainerError::truncated(WHAT, pos + 8, data.len()))),
            }
        } else {
            data.len() - pos
        };
        let Some(end) = pos.checked_add(size).filter(|end| *end <= data.len()) else {
            return Some(Err(ContainerError::truncated(
                WHAT,
                pos.saturating_add(size),
                data.len(),
            )));
        };
        self.rest = &data[end..];
        Some(Ok(Obu {
            kind,
            payload: &data[pos..end],
            whole: &data[..end],
        }))
    }
}

/// Reads a `leb128()` (AV1 §4.10.5): at most eight bytes, a value below 2^32.
fn leb128(data: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return usize::try_from(value)
                .ok()
                .filter(|v| *v <= u32::MAX as usize)
                .map(|v| (v, i + 1));
        }
    }
    None
}

/// The payload of the first sequence header OBU of a buffer.
pub fn sequence_header(data: &[u8]) -> Option<&[u8]> {
    obus(data)
        .map_while(Result::ok)
        .find(|o| o.kind == OBU_SEQUENCE_HEADER)
        .map(|o| o.payload)
}

/// An access unit as an MP4 sample wants it, appended to `out`: the same OBUs without
/// temporal delimiters and padding (AV1-ISOBMFF §2.4). Returns whether it holds a sequence
/// header. Badly framed OBUs are an error, reported before anything is written.
pub fn to_sample(data: &[u8], out: &mut Vec<u8>) -> Result<bool, ContainerError> {
    for obu in obus(data) {
        obu?;
    }
    let mut has_sequence_header = false;
    for obu in obus(data).map_while(Result::ok) {
        match obu.kind {
            OBU_TEMPORAL_DELIMITER | OBU_PADDING => {}
            kind => {
                has_sequence_header |= kind == OBU_SEQUENCE_HEADER;
                out.extend_from_slice(obu.whole);
            }
        }
    }
    Ok(has_sequence_header)
}

/// What the ingest reads from a sequence header OBU (AV1 §5.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceHeader {
    /// `seq_profile`.
    pub profile: u8,
    /// `max_frame_width_minus_1 + 1`.
    pub max_width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub max_height: u32,
}

impl SequenceHeader {
    /// Parses a sequence header OBU's payload up to the maximum frame size.
    pub fn parse(payload: &[u8]) -> Result<Self, ContainerError> {
        const WHAT: &str = "AV1 sequence header";
        let mut r = BitReader::new(WHAT, payload);
        let profile = r.bits(3)? as u8;
        r.skip(1)?; // still_picture
        let reduced_still_picture_header = r.flag()?;
        if reduced_still_picture_header {
            r.skip(5)?; // seq_level_idx[0]
        } else {
            let timing_info_present = r.flag()?;
            let mut decoder_model_info_present = false;
            let mut buffer_delay_length = 0;
            if timing_info_present {
                r.skip(64)?; // num_units_in_display_tick, time_scale
                if r.flag()? {
                    // equal_picture_interval: num_ticks_per_picture_minus_1, uvlc()
                    uvlc(&mut r)?;
                }
                decoder_model_info_present = r.flag()?;
                if decoder_model_info_present {
                    buffer_delay_length = r.bits(5)? as usize + 1;
                    r.skip(32)?; // num_units_in_decoding_tick
                    r.skip(10)?; // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
                }
            }
            let initial_display_delay_present = r.flag()?;
            let operating_points = r.bits(5)? + 1;
            for _ in 0..operating_points {
                r.skip(12)?; // operating_point_idc
                let level = r.bits(5)?;
                if level > 7 {
                    r.skip(1)?; // seq_tier
                }
                if decoder_model_info_present && r.flag()? {
                    // operating_parameters_info: two delays and low_delay_mode_flag
                    r.skip(2 * buffer_delay_length + 1)?;
                }
                if initial_display_delay_present && r.flag()? {
                    r.skip(4)?;
                }
            }
        }
        let width_bits = r.bits(4)? + 1;
        let height_bits = r.bits(4)? + 1;
        let max_width = r.bits(width_bits)? + 1;
        let max_height = r.bits(height_bits)? + 1;
        Ok(SequenceHeader {
            profile,
            max_width,
            max_height,
        })
    }
}

/// `uvlc()` (AV1 §4.10.3): leading zeros, then that many bits.
fn uvlc(r: &mut BitReader<'_>) -> Result<u32, ContainerError> {
    let mut leading_zeros = 0u32;
    while !r.flag()? {
        leading_zeros += 1;
        if leading_zeros >= 32 {
            return Ok(u32::MAX);
        }
    }
    Ok(r.bits(leading_zeros)?
        .saturating_add((1u32 << leading_zeros) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The av1C SVT-AV1 wrote through ffmpeg 9's FLV muxer for 320x240 (Main, level 2.0,
    /// 8 bit), with its sequence header OBU.
    const SVT_RECORD: &[u8] =
        b"\x81\x00\x0c\x00\x0a\x0b\x02\x00\x00\x05\x21\xe7\xfd\xe0\x17\xc0\x02";

    #[test]
    fn svt_record_parses() {
        let config = Av1Config::parse(&Bytes::from_static(SVT_RECORD)).expect("valid record");
        assert_eq!(config.codec_string(), "av01.0.00M.08");
        assert_eq!(config.dimensions(&[]).expect("sequence header"), (320, 240));
    }

    #[test]
    fn samples_lose_their_temporal_delimiters() {
        // TD (size 0), sequence header (size 2), padding (size 1), frame (size 1).
        let au = b"\x12\x00\x0a\x02\xaa\xbb\x7a\x01\x00\x32\x01\xcc";
        let mut out = Vec::new();
        assert!(to_sample(au, &mut out).expect("valid"));
        assert_eq!(out, b"\x0a\x02\xaa\xbb\x32\x01\xcc");
        let kinds: Vec<u8> = obus(au).map(|o| o.expect("valid").kind).collect();
        assert_eq!(kinds, [2, 1, 15, 6]);
        // A size past the end.
        let mut out = Vec::new();
        assert!(to_sample(b"\x32\x05\x00", &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn bad_records_are_errors() {
        assert!(Av1Config::parse(&Bytes::from_static(b"\x81\x00")).is_err());
        assert!(Av1Config::parse(&Bytes::from_static(b"\x01\x00\x0c\x00")).is_err());
        assert!(Av1Config::parse(&Bytes::from_static(b"\x81\x00\x0c\x00\x0a\x0b")).is_err());
        let no_header = Av1Config::parse(&Bytes::from_static(b"\x81\x08\x0c\x00")).expect("ok");
        assert_eq!(no_header.codec_string(), "av01.0.08M.08");
        assert!(no_header.dimensions(b"\x12\x00").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let record = Bytes::from(bytes.clone());
            let _ = Av1Config::parse(&record).map(|c| c.dimensions(&bytes));
            let _ = SequenceHeader::parse(&bytes);
            let _ = obus(&bytes).count();
            let mut out = Vec::new();
            let _ = to_sample(&bytes, &mut out);
        }
    }
}
