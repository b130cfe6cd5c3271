//! H.264 as it arrives over RTMP (AVCC: length-prefixed NAL units plus a separate
//! configuration record) and as MPEG-TS wants it (Annex B: start codes, parameter sets
//! in-band).
//!
//! Only as much of H.264 is parsed as the ingest needs: the configuration record, NAL unit
//! boundaries and types, and the SPS fields up to the frame size. Slices are never looked
//! into.
//!
//! Long because parameter-set parsing (Exp-Golomb
//! fields), AVCC ↔ Annex B conversion and codec strings share one bit reader and one set of
//! NAL types: one format, one parser, one fuzz target.

use bytes::Bytes;

use super::bits::BitReader;
use super::ContainerError;

/// NAL unit type of a coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// The start code we write before every NAL unit. The four-byte form is always valid and
/// lets a reader find access units without knowing which NAL starts one.
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// An access unit delimiter with `primary_pic_type = 7` ("any slice type"), which is true
/// of every access unit, so we never need to look into the slices to write it.
const AUD_NAL: [u8; 2] = [NAL_AUD, 0xF0];

/// The type of a NAL unit, from its first byte.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1F)
}

/// An AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1): what an RTMP publisher
/// sends once, before the first frame, and what every frame after it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// `AVCProfileIndication`, the first byte of the RFC 6381 codec string.
    pub profile_idc: u8,
    /// `profile_compatibility`: the constraint_set flags, the second byte of the codec
    /// string.
    pub constraint_flags: u8,
    /// `AVCLevelIndication`, the third byte of the codec string.
    pub level_idc: u8,
    /// Size in bytes (1..=4) of the length prefix of each NAL unit in the frames.
    pub nal_length_size: u8,
    /// Sequence parameter sets, as NAL units (with their NAL header byte). Inserted before
    /// every IDR picture that does not carry its own, so every segment is decodable alone.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets, as NAL units; inserted like [`AvcConfig::sps`].
    pub pps: Vec<Bytes>,
}

impl AvcConfig {
    /// Parses a configuration record (the body of an AVC sequence header tag).
    ///
    /// A record without any SPS or PPS is accepted (ISO/IEC 14496-15 allows the parameter
    /// sets to travel in-band); the frames must then carry them. Bytes after the PPS list
    /// (the High profile extension) are ignored.
    pub fn parse(record: &[u8]) -> Result<Self, ContainerError> {
        const WHAT: &str = "AVCDecoderConfigurationRecord";
        if record.len() < 6 {
            return Err(ContainerError::truncated(WHAT, 6, record.len()));
        }
        if record[0] != 1 {
            return Err(ContainerError::malformed(
                WHAT,
                format!("configurationVersion {}", record[0]),
            ));
        }
        let nal_length_size = (record[4] & 0x03) + 1;
        let mut pos = 5;
        let sps_count = usize::from(record[pos] & 0x1F);
        pos += 1;
        let sps = read_parameter_sets(record, &mut pos, sps_count, NAL_SPS)?;
        let Some(&pps_count) = record.get(pos) else {
            return Err(ContainerError::truncated(WHAT, pos + 1, record.len()));
        };
        pos += 1;
        let pps = read_parameter_sets(record, &mut pos, usize::from(pps_count), NAL_PPS)?;
        Ok(Self {
            profile_idc: record[1],
            constraint_flags: record[2],
            level_idc: record[3],
            nal_length_size,
            sps,
            pps,
        })
    }

    /// The configuration of an encoder that writes its parameter sets in-band (x264
    /// through ffmpeg): every SPS and PPS of one Annex B access unit (an IDR picture's),
    /// with four-byte NAL lengths. Profile, constraints and level come from the first SPS,
    /// which must parse.
    pub fn from_annexb(access_unit: &[u8]) -> Result<Self, ContainerError> {
        const WHAT: &str = "access unit";
        let (mut sps, mut pps) = (Vec::new(), Vec::new());
        for nal in annexb_nals(access_unit) {
            match nal_type(nal) {
                Some(NAL_SPS) => sps.push(Bytes::copy_from_slice(nal)),
                Some(NAL_PPS) => pps.push(Bytes::copy_from_slice(nal)),
                _ => {}
            }
        }
        let first = sps
            .first()
            .ok_or_else(|| ContainerError::malformed(WHAT, "no SPS"))?;
        if pps.is_empty() {
            return Err(ContainerError::malformed(WHAT, "no PPS"));
        }
        SpsInfo::parse(first)?;
        let header = unescape_rbsp(first.get(1..4).unwrap_or_default());
        let [profile_idc, constraint_flags, level_idc] = header[..] else {
            return Err(ContainerError::truncated("SPS", 4, first.len()));
        };
        Ok(Self {
            profile_idc,
            constraint_flags,
            level_idc,
            nal_length_size: 4,
            sps,
            pps,
        })
    }

    /// The configuration record (ISO/IEC 14496-15 §5.3.3.1), as an MP4 `avcC` box holds
    /// it; for the High profiles with the chroma format and bit depths read from the first
    /// SPS. Fails if a list or a parameter set is too long for its length field, or if the
    /// SPS of a High profile record does not parse.
    pub fn record(&self) -> Result<Vec<u8>, ContainerError> {
        const WHAT: &str = "AVCDecoderConfigurationRecord";
        if !(1..=4).contains(&self.nal_length_size) {
            return Err(ContainerError::malformed(
                WHAT,
                format!("NAL length size {}", self.nal_length_size),
            ));
        }
        let mut out = vec![
            1,
            self.profile_idc,
            self.constraint_flags,
            self.level_idc,
            0xFC | (self.nal_length_size - 1),
        ];
        let sps_count = u8::try_from(self.sps.len())
            .ok()
            .filter(|n| *n <= 31)
            .ok_or(ContainerError::TooLong {
                what: "SPS list",
                len: self.sps.len(),
                max: 31,
            })?;
        out.push(0xE0 | sps_count);
        write_parameter_sets(&mut out, &self.sps)?;
        let pps_count = u8::try_from(self.pps.len()).map_err(|_| ContainerError::TooLong {
            what: "PPS list",
            len: self.pps.len(),
            max: 255,
        })?;
        out.push(pps_count);
        write_parameter_sets(&mut out, &self.pps)?;
        if RECORD_EXTENSION_PROFILES.contains(&self.profile_idc) {
            let sps = self
                .sps
                .first()
                .ok_or_else(|| ContainerError::malformed(WHAT, "a High profile without SPS"))?;
            let info = SpsInfo::parse(sps)?;
            out.extend_from_slice(&[
                0xFC | info.chroma_format_idc,
                0xF8 | (info.bit_depth_luma - 8),
                0xF8 | (info.bit_depth_chroma - 8),
                0, // numOfSequenceParameterSetExt
            ]);
        }
        Ok(out)
    }

    /// RFC 6381 codec string, e.g. `"avc1.64001f"`, for the master playlist's `CODECS`.
    pub fn codec_string(&self) -> String {
        avc1_codec_string(self.profile_idc, self.constraint_flags, self.level_idc)
    }

    /// Picture size from the first SPS, for planning the ladder before any frame arrives.
    pub fn dimensions(&self) -> Result<(u32, u32), ContainerError> {
        let sps = self
            .sps
            .first()
            .ok_or_else(|| ContainerError::malformed("AVCDecoderConfigurationRecord", "no SPS"))?;
        sps_dimensions(sps)
    }
}

/// Reads `count` parameter sets of 16-bit-length-prefixed NAL units of type `expected`.
fn read_parameter_sets(
    record: &[u8],
    pos: &mut usize,
    count: usize,
    expected: u8,
) -> Result<Vec<Bytes>, ContainerError> {
    const WHAT: &str = "AVCDecoderConfigurationRecord";
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        let Some(len_bytes) = record.get(*pos..*pos + 2) else {
            return Err(ContainerError::truncated(WHAT, *pos + 2, record.len()));
        };
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        *pos += 2;
        let Some(nal) = record.get(*pos..*pos + len) else {
            return Err(ContainerError::truncated(WHAT, *pos + len, record.len()));
        };
        *pos += len;
        if nal_type(nal) != Some(expected) {
            return Err(ContainerError::malformed(
                WHAT,
                format!(
                    "parameter set of NAL type {:?} where type {expected} belongs",
                    nal_type(nal)
                ),
            ));
        }
        sets.push(Bytes::copy_from_slice(nal));
    }
    Ok(sets)
}

/// The profiles whose configuration record carries chroma format and bit depths
/// (ISO/IEC 14496-15 §5.3.3.1.2).
const RECORD_EXTENSION_PROFILES: [u8; 4] = [100, 110, 122, 144];

/// Appends 16-bit-length-prefixed parameter sets.
fn write_parameter_sets(out: &mut Vec<u8>, sets: &[Bytes]) -> Result<(), ContainerError> {
    for set in sets {
        let len = u16::try_from(set.len()).map_err(|_| ContainerError::TooLong {
            what: "parameter set",
            len: set.len(),
            max: usize::from(u16::MAX),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(set);
    }
    Ok(())
}

/// Converts one Annex B access unit to AVCC with four-byte lengths, appending it to `out`,
/// as an MP4 sample whose sample entry holds the parameter sets: access unit delimiters,
/// SPS and PPS are left out (the `avcC` of the init segment has them; an encoder whose
/// parameter sets change needs a new init segment anyway). Returns whether the access unit
/// holds an IDR slice.
pub fn annexb_to_avcc(annexb: &[u8], out: &mut Vec<u8>) -> Result<bool, ContainerError> {
    let mut idr = false;
    for nal in annexb_nals(annexb) {
        match nal_type(nal) {
            Some(NAL_AUD | NAL_SPS | NAL_PPS) => continue,
            Some(NAL_IDR) => idr = true,
            _ => {}
        }
        let len = u32::try_from(nal.len()).map_err(|_| ContainerError::TooLong {
            what: "NAL unit",
            len: nal.len(),
            max: u32::MAX as usize,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(idr)
}

fn avc1_codec_string(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    format!("avc1.{profile_idc:02x}{constraint_flags:02x}{level_idc:02x}")
}

/// The NAL units of a buffer of length-prefixed NAL units (AVCC, and HEVC's `hvcC`
/// framing) with `length_size`-byte lengths, every length checked against what is left.
pub(super) fn avcc_nals(data: &[u8], length_size: usize) -> AvccNals<'_> {
    AvccNals {
        rest: data,
        length_size,
    }
}

/// Iterates the NAL units of an AVCC buffer, checking every length against what is left.
pub(super) struct AvccNals<'a> {
    rest: &'a [u8],
    length_size: usize,
}

impl<'a> Iterator for AvccNals<'a> {
    type Item = Result<&'a [u8], ContainerError>;

    fn next(&mut self) -> Option<Self::Item> {
        const WHAT: &str = "AVCC NAL unit";
        if self.rest.is_empty() {
            return None;
        }
        let Some((prefix, after)) = self.rest.split_at_checked(self.length_size) else {
            let err = ContainerError::truncated(WHAT, self.length_size, self.rest.len());
            self.rest = &[];
            return Some(Err(err));
        };
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let Some((nal, rest)) = after.split_at_checked(len) else {
            let err = ContainerError::truncated(WHAT, len, after.len());
            self.rest = &[];
            return Some(Err(err));
        };
        self.rest = rest;
        Some(Ok(nal))
    }
}

/// Converts one access unit from AVCC (length-prefixed, `config.nal_length_size`) to
/// Annex B, appending it to `out`.
///
/// Every NAL unit is written with a four-byte start code, in its original order and byte
/// for byte. Two things are added, because an HLS segment must be decodable on its own and
/// RTMP publishers send neither in-band:
///
/// - an access unit delimiter (`09 F0`) first, unless the AU already has one (Apple's HLS
///   validator and some hardware decoders require it);
/// - if the AU has an IDR slice, the config's SPS (unless the AU has an SPS of its own) and
///   PPS (unless it has a PPS), right after the delimiter: before any SEI as well as before
///   the slice, because buffering-period SEI messages refer to the SPS.
///
/// Zero-length NAL units (padding some encoders emit) are dropped. A length prefix that is
/// cut off or that runs past the end of `avcc`, or a `nal_length_size` outside 1..=4, is an
/// error, reported before anything is written to `out`.
pub fn avcc_to_annexb(
    config: &AvcConfig,
    avcc: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ContainerError> {
    if !(1..=4).contains(&config.nal_length_size) {
        return Err(ContainerError::malformed(
            "AvcConfig",
            format!("NAL length size {}", config.nal_length_size),
        ));
    }
    let nals = || AvccNals {
        rest: avcc,
        length_size: usize::from(config.nal_length_size),
    };
    // First pass: validate every length and learn what the AU already carries.
    let (mut has_aud, mut has_sps, mut has_pps, mut has_idr) = (false, false, false, false);
    let mut first_is_aud = false;
    let mut nal_bytes = 0;
    let mut nal_count = 0;
    for nal in nals() {
        let nal = nal?;
        let Some(t) = nal_type(nal) else { continue };
        first_is_aud |= nal_count == 0 && t == NAL_AUD;
        has_aud |= t == NAL_AUD;
        has_sps |= t == NAL_SPS;
        has_pps |= t == NAL_PPS;
        has_idr |= t == NAL_IDR;
        nal_bytes += nal.len();
        nal_count += 1;
    }

    let insert_sps = has_idr && !has_sps;
    let insert_pps = has_idr && !has_pps;
    let inserted: &[&[Bytes]] = match (insert_sps, insert_pps) {
        (true, true) => &[&config.sps, &config.pps],
        (true, false) => &[&config.sps],
        (false, true) => &[&config.pps],
        (false, false) => &[],
    };
    let inserted_bytes: usize = inserted
        .iter()
        .flat_map(|sets| sets.iter())
        .map(|nal| START_CODE.len() + nal.len())
        .sum();
    out.reserve(
        START_CODE.len()
            + AUD_NAL.len()
            + inserted_bytes
            + nal_count * START_CODE.len()
            + nal_bytes,
    );

    let mut iter = nals().filter_map(Result::ok).filter(|nal| !nal.is_empty());
    if first_is_aud {
        if let Some(aud) = iter.next() {
            write_nal(out, aud);
        }
    } else if !has_aud {
        write_nal(out, &AUD_NAL);
    }
    for nal in inserted.iter().flat_map(|sets| sets.iter()) {
        write_nal(out, nal);
    }
    for nal in iter {
        write_nal(out, nal);
    }
    Ok(())
}

fn write_nal(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&START_CODE);
    out.extend_from_slice(nal);
}

/// Iterates the NAL units of an Annex B buffer (3- and 4-byte start codes).
///
/// Bytes before the first start code are skipped, as are trailing zero bytes of each unit
/// (they belong to the next four-byte start code or are `trailing_zero_8bits`) and empty
/// units. The units are returned without start codes, as slices of `data`.
pub fn annexb_nals(data: &[u8]) -> AnnexbNals<'_> {
    let rest = match find_start_code(data) {
        Some((_, after)) => &data[after..],
        None => &[],
    };
    AnnexbNals { rest }
}

/// Iterator returned by [`annexb_nals`].
#[derive(Debug, Clone)]
pub struct AnnexbNals<'a> {
    /// Everything after the last start code found.
    rest: &'a [u8],
}

impl<'a> Iterator for AnnexbNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let (nal, rest) = match find_start_code(self.rest) {
                Some((start, after)) => (&self.rest[..start], &self.rest[after..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end > 0 {
                return Some(&nal[..end]);
            }
        }
        None
    }
}

/// Finds the first `00 00 01`, returning where it starts and where the unit after it
/// starts.
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 2;
    while i < data.len() {
        match data[i] {
            // A start code ends here if the two bytes before are zero.
            1 if data[i - 1] == 0 && data[i - 2] == 0 => return Some((i - 2, i + 1)),
            // Not 0 or 1: no start code can end at i, i+1 or i+2 using this byte as
            // one of its zeros, so skip ahead.
            b if b > 1 => i += 3,
            _ => i += 1,
        }
    }
    None
}

/// RFC 6381 codec string from the first SPS found in an Annex B buffer, for encoders (x264
/// through ffmpeg) that put parameter sets in-band instead of in a configuration record.
pub fn codec_string_from_annexb(data: &[u8]) -> Option<String> {
    let sps = annexb_nals(data).find(|nal| nal_type(nal) == Some(NAL_SPS))?;
    let rbsp = unescape_rbsp(sps.get(1..4)?);
    match rbsp[..] {
        [profile, constraints, level, ..] => Some(avc1_codec_string(profile, constraints, level)),
        _ => None,
    }
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`), giving the RBSP that the
/// syntax tables describe.
pub(super) fn unescape_rbsp(escaped: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut zeros = 0;
    for &b in escaped {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices
/// (H.264 §7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// Width and height of the output picture from an SPS NAL unit (with its header byte), with
/// the frame cropping rectangle applied. See [`SpsInfo::parse`].
pub fn sps_dimensions(sps_nal: &[u8]) -> Result<(u32, u32), ContainerError> {
    SpsInfo::parse(sps_nal).map(|info| (info.width, info.height))
}

/// What the ingest reads from an SPS: the picture size, and the chroma format and bit
/// depths that an AVCDecoderConfigurationRecord of a High profile repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// Output width in pixels, cropping applied.
    pub width: u32,
    /// Output height in pixels, cropping applied.
    pub height: u32,
    /// `chroma_format_idc` (0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4); 1 where the profile
    /// does not code it.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 where the profile does not code it).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8 where the profile does not code it).
    pub bit_depth_chroma: u8,
}

impl SpsInfo {
    /// Parses an SPS NAL unit (with its header byte) up to the frame cropping rectangle.
    ///
    /// The High profiles' chroma format, bit depths and scaling lists are parsed (and the
    /// lists skipped) because the frame size comes after them. Values the standard forbids
    /// are errors rather than guesses: this feeds the ladder planner, and a wrong size there
    /// is worse than a refused publish.
    pub fn parse(sps_nal: &[u8]) -> Result<Self, ContainerError> {
        parse_sps(sps_nal)
    }
}

fn parse_sps(sps_nal: &[u8]) -> Result<SpsInfo, ContainerError> {
    const WHAT: &str = "SPS";
    match nal_type(sps_nal) {
        Some(NAL_SPS) => {}
        other => {
            return Err(ContainerError::malformed(
                WHAT,
                format!("NAL unit type {other:?}, not {NAL_SPS}"),
            ))
        }
    }
    let rbsp = unescape_rbsp(&sps_nal[1..]);
    let mut r = BitReader::new(WHAT, &rbsp);

    let profile_idc = r.bits(8)? as u8;
    r.skip(16)?; // constraint flags, level_idc
    r.ue_max("seq_parameter_set_id", 31)?;
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let (mut bit_depth_luma, mut bit_depth_chroma) = (8, 8);
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma += r.ue_max("bit_depth_luma_minus8", 6)?;
        bit_depth_chroma += r.ue_max("bit_depth_chroma_minus8", 6)?;
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max("log2_max_frame_num_minus4", 12)?;
    match r.ue_max("pic_order_cnt_type", 2)? {
        0 => {
            r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)?;
        }
        1 => {
            r.skip(1)?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255)?;
            for _ in 0..cycle {
                r.se()?; // offset_for_ref_frame
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.skip(1)?; // mb_adaptive_frame_field_flag
    }
    r.skip(1)?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.flag()? {
        left = r.ue()?.into();
        right = r.ue()?.into();
        top = r.ue()?.into();
        bottom = r.ue()?.into();
    }

    // §7.4.2.1.1: crop offsets count in chroma samples (and in field rows when coded as
    // fields); ChromaArrayType is 0 for monochrome and for separately coded planes.
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let width = width_mbs * 16;
    let height = height_map_units * 16 * field_factor;
    let crop_x = (left + right) * crop_unit_x;
    let crop_y = (top + bottom) * crop_unit_y;
    if crop_x >= width || crop_y >= height {
        return Err(ContainerError::malformed(
            WHAT,
            format!("cropping {crop_x}x{crop_y} of a {width}x{height} frame leaves nothing"),
        ));
    }
    let to_u32 =
        |v: u64| u32::try_from(v).map_err(|_| ContainerError::malformed(WHAT, format!("size {v}")));
    Ok(SpsInfo {
        profile_idc,
        width: to_u32(width - crop_x)?,
        height: to_u32(height - crop_y)?,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: bit_depth_luma as u8,
        bit_depth_chroma: bit_depth_chroma as u8,
    })
}

/// Reads past one `scaling_list()` (§7.3.2.1.1.1): the deltas are exp-Golomb coded, so the
/// only way past them is to decode them.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), ContainerError> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se()?;
            next_scale = (last_scale + delta).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// SPS units written by x264 (ffmpeg 5.1), with the size ffprobe reports for them.
    const X264_SPS: &[(&str, &str, (u32, u32))] = &[
        (
            "High 4:2:0 320x240",
            "6764000dacd94141fb011000000300100000030320f1429960",
            (320, 240),
        ),
        (
            "High 4:2:0 1920x1080, cropped from 1088",
            "67640028acd940780227e5c044000003000400000300c83c60c658",
            (1920, 1080),
        ),
        (
            "High 4:4:4 318x238, crop unit 1",
            "67f4000d919b28283fdde022000003000200000300641e28532c",
            (318, 238),
        ),
        (
            "Constrained Baseline 176x144",
            "6742c00bd902c4ec0440000003004000000c83c50a92",
            (176, 144),
        ),
        (
            "High 4:2:0 interlaced 640x360, field crop",
            "6764001eacd940a063f3e022000003000200000300643e28532c",
            (640, 360),
        ),
        (
            "High 4:2:2 322x242",
            "677a000dbcd9415087888fc044000003000400000300c83c50a658",
            (322, 242),
        ),
        (
            "High monochrome interlaced 64x48",
            "67640015f365113f1380b640000003004000000c87c50a6580",
            (64, 48),
        ),
        (
            "High 4:4:4 interlaced 200x100",
            "67f40015919b28691e263f011000000300100000030321f1429960",
            (200, 100),
        ),
    ];

    #[test]
    fn dimensions_of_real_sps() {
        for (name, sps, dims) in X264_SPS {
            assert_eq!(sps_dimensions(&hex(sps)).expect(name), *dims, "{name}");
        }
    }

    /// A configuration record as ffmpeg writes it for x264 at 320x240.
    fn x264_config() -> AvcConfig {
        let mut record = hex("0164000dffe1");
        let sps = hex(X264_SPS[0].1);
        record.extend_from_slice(&u16::try_from(sps.len()).expect("short").to_be_bytes());
        record.extend_from_slice(&sps);
        record.extend_from_slice(&hex("010006"));
        record.extend_from_slice(&hex("68ebe3cb22c0"));
        AvcConfig::parse(&record).expect("valid record")
    }

    #[test]
    fn parses_a_configuration_record() {
        let config = x264_config();
        assert_eq!(config.profile_idc, 0x64);
        assert_eq!(config.constraint_flags, 0);
        assert_eq!(config.level_idc, 0x0d);
        assert_eq!(config.nal_length_size, 4);
        assert_eq!(config.sps.len(), 1);
        assert_eq!(config.pps, vec![Bytes::from(hex("68ebe3cb22c0"))]);
        assert_eq!(config.codec_string(), "avc1.64000d");
        assert_eq!(config.dimensions().expect("valid"), (320, 240));
    }

    #[test]
    fn rejects_bad_records() {
        assert!(matches!(
            AvcConfig::parse(&[1, 0x64, 0, 0x1f]),
            Err(ContainerError::Truncated { .. })
        ));
        assert!(matches!(
            AvcConfig::parse(&[0, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
            Err(ContainerError::Malformed { .. })
        ));
        // One SPS announced, 4 bytes long, only 2 there.
        assert!(matches!(
            AvcConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64]),
            Err(ContainerError::Truncated { .. })
        ));
        // A PPS in the SPS list.
        assert!(matches!(
            AvcConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 1, 0x68, 0]),
            Err(ContainerError::Malformed { .. })
        ));
        // PPS count missing.
        assert!(matches!(
            AvcConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe0]),
            Err(ContainerError::Truncated { .. })
        ));
    }

    #[test]
    fn codec_string_from_in_band_sps() {
        let mut annexb = vec![0, 0, 0, 1, 9, 0xF0, 0, 0, 1];
        annexb.extend_from_slice(&hex(X264_SPS[1].1));
        assert_eq!(
            codec_string_from_annexb(&annexb).as_deref(),
            Some("avc1.640028")
        );
        assert_eq!(codec_string_from_annexb(&[0, 0, 1, 0x65, 0x88]), None);
        assert_eq!(codec_string_from_annexb(&[0, 0, 1, 0x67, 0x42]), None);
    }

    fn avcc(nals: &[&[u8]], length_size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes()[4 - length_size..]);
            out.extend_from_slice(nal);
        }
        out
    }

    fn convert(config: &AvcConfig, nals: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        avcc_to_annexb(config, &avcc(nals, 4), &mut out).expect("valid AU");
        annexb_nals(&out).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn idr_gets_aud_and_parameter_sets_before_sei() {
        let config = x264_config();
        let got = convert(&config, &[&[6, 5, 1, 0x80], &[0x65, 0x88, 0x84]]);
        let want: Vec<Vec<u8>> = vec![
            AUD_NAL.to_vec(),
            config.sps[0].to_vec(),
            config.pps[0].to_vec(),
            vec![6, 5, 1, 0x80],
            vec![0x65, 0x88, 0x84],
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn non_idr_gets_only_aud_and_existing_aud_is_kept_first() {
        let config = x264_config();
        assert_eq!(
            convert(&config, &[&[0x41, 0x9a]]),
            vec![AUD_NAL.to_vec(), vec![0x41, 0x9a]]
        );
        // AU with its own AUD and SPS but no PPS: only the PPS is added, after the AUD.
        assert_eq!(
            convert(&config, &[&[9, 0x10], &[0x67, 0x42], &[0x65, 0x88]]),
            vec![
                vec![9, 0x10],
                config.pps[0].to_vec(),
                vec![0x67, 0x42],
                vec![0x65, 0x88]
            ]
        );
    }

    #[test]
    fn every_length_size_and_zero_length_nals() {
        let mut config = x264_config();
        for size in 1..=4u8 {
            config.nal_length_size = size;
            let mut input = avcc(&[&[0x41, 1], &[], &[0x01, 2, 3]], usize::from(size));
            let mut out = Vec::new();
            avcc_to_annexb(&config, &input, &mut out).expect("valid");
            assert_eq!(
                out,
                [0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1, 0x41, 1, 0, 0, 0, 1, 1, 2, 3]
            );
            // Overlong last length: error, and nothing written.
            input.truncate(input.len() - 1);
            let mut out = vec![0xAB];
            assert!(matches!(
                avcc_to_annexb(&config, &input, &mut out),
                Err(ContainerError::Truncated { .. })
            ));
            assert_eq!(out, [0xAB]);
        }
        // A length prefix cut off.
        config.nal_length_size = 4;
        assert!(matches!(
            avcc_to_annexb(&config, &[0, 0, 0, 1, 0x41, 0, 0], &mut Vec::new()),
            Err(ContainerError::Truncated { .. })
        ));
    }

    #[test]
    fn annexb_iteration() {
        let data = [
            0xFF, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1, 0x67, 1, 0, 0, 3, 0, 0, 0, 1, 0x65, 2, 0, 0,
        ];
        let nals: Vec<&[u8]> = annexb_nals(&data).collect();
        assert_eq!(nals, vec![&[9, 0xF0][..], &[0x67, 1, 0, 0, 3], &[0x65, 2]]);
        assert_eq!(annexb_nals(&[]).count(), 0);
        assert_eq!(annexb_nals(&[1, 2, 3]).count(), 0);
        assert_eq!(annexb_nals(&[0, 0, 1, 0, 0, 1]).count(), 0);
    }

    /// Writes bits MSB first; the inverse of [`BitReader`], to build SPS units.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn bit(&mut self, b: bool) {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if b {
                *self.bytes.last_mut().expect("pushed") |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
        fn bits(&mut self, v: u64, n: u32) {
            for i in (0..n).rev() {
                self.bit((v >> i) & 1 == 1);
            }
        }
        fn ue(&mut self, v: u32) {
            let v = u64::from(v) + 1;
            let len = 64 - v.leading_zeros();
            self.bits(0, len - 1);
            self.bits(v, len);
        }
        fn se(&mut self, v: i32) {
            let k = if v > 0 {
                2 * i64::from(v) - 1
            } else {
                -2 * i64::from(v)
            };
            self.ue(u32::try_from(k).expect("small"));
        }
        /// rbsp_trailing_bits, then emulation prevention.
        fn finish(mut self) -> Vec<u8> {
            self.bit(true);
            let mut out = Vec::new();
            let mut zeros = 0;
            for b in self.bytes {
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                out.push(b);
            }
            out
        }
    }

    /// The SPS fields a test chooses; everything else is written with fixed values.
    #[derive(Debug, Clone)]
    struct SpsSpec {
        profile_idc: u8,
        chroma_format_idc: u32,
        separate_colour_plane: bool,
        /// Per list: None = not present, Some(deltas).
        scaling_lists: Option<Vec<Option<Vec<i32>>>>,
        poc_type: u32,
        poc_cycle: Vec<i32>,
        width_mbs: u32,
        height_map_units: u32,
        frame_mbs_only: bool,
        crop: Option<[u32; 4]>,
    }

    fn write_sps(s: &SpsSpec) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(0x67, 8);
        w.bits(u64::from(s.profile_idc), 8);
        w.bits(0, 8);
        w.bits(30, 8);
        w.ue(0);
        if HIGH_PROFILES.contains(&s.profile_idc) {
            w.ue(s.chroma_format_idc);
            if s.chroma_format_idc == 3 {
                w.bit(s.separate_colour_plane);
            }
            w.ue(0);
            w.ue(0);
            w.bit(false);
            match &s.scaling_lists {
                None => w.bit(false),
                Some(lists) => {
                    w.bit(true);
                    let count = if s.chroma_format_idc == 3 { 12 } else { 8 };
                    for i in 0..count {
                        match lists.get(i).cloned().flatten() {
                            None => w.bit(false),
                            Some(deltas) => {
                                w.bit(true);
                                // Write deltas until the list is full or a delta makes
                                // next_scale 0 ("use the default/previous list").
                                let size = if i < 6 { 16 } else { 64 };
                                let mut last = 8i32;
                                for j in 0..size {
                                    let d = deltas.get(j).copied().unwrap_or(0);
                                    w.se(d);
                                    let next = (last + d).rem_euclid(256);
                                    if next == 0 {
                                        break;
                                    }
                                    last = next;
                                }
                            }
                        }
                    }
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(s.poc_type);
        match s.poc_type {
            0 => w.ue(2),
            1 => {
                w.bit(false);
                w.se(-3);
                w.se(7);
                w.ue(s.poc_cycle.len() as u32);
                for &o in &s.poc_cycle {
                    w.se(o);
                }
            }
            _ => {}
        }
        w.ue(4); // max_num_ref_frames
        w.bit(false);
        w.ue(s.width_mbs - 1);
        w.ue(s.height_map_units - 1);
        w.bit(s.frame_mbs_only);
        if !s.frame_mbs_only {
            w.bit(true);
        }
        w.bit(true);
        match s.crop {
            None => w.bit(false),
            Some(c) => {
                w.bit(true);
                for v in c {
                    w.ue(v);
                }
            }
        }
        w.bit(false); // vui_parameters_present_flag
        w.finish()
    }

    fn sps_spec() -> impl Strategy<Value = SpsSpec> {
        let deltas = proptest::collection::vec(-128i32..=127, 0..64);
        (
            prop_oneof![
                Just(66u8),
                Just(77),
                Just(88),
                Just(100),
                Just(110),
                Just(122),
                Just(244)
            ],
            0u32..=3,
            any::<bool>(),
            proptest::option::of(proptest::collection::vec(proptest::option::of(deltas), 12)),
            0u32..=2,
            proptest::collection::vec(-1000i32..1000, 0..5),
            1u32..=240,
            1u32..=135,
            any::<bool>(),
            proptest::option::of([0u32..8, 0u32..8, 0u32..8, 0u32..8]),
        )
            .prop_map(
                |(profile_idc, cf, sep, lists, poc, cycle, w, h, fmo, crop)| SpsSpec {
                    profile_idc,
                    chroma_format_idc: cf,
                    separate_colour_plane: sep && cf == 3,
                    scaling_lists: lists,
                    poc_type: poc,
                    poc_cycle: cycle,
                    width_mbs: w,
                    height_map_units: h,
                    frame_mbs_only: fmo,
                    crop,
                },
            )
    }

    /// The expected output size, computed straight from Table 6-1 and equations 7-19..7-22.
    fn expected_dims(s: &SpsSpec) -> Option<(u32, u32)> {
        let high = HIGH_PROFILES.contains(&s.profile_idc);
        let cf = if high { s.chroma_format_idc } else { 1 };
        let (sub_w, sub_h) = match cf {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let fmo = u32::from(s.frame_mbs_only);
        let array_type = if high && s.separate_colour_plane {
            0
        } else {
            cf
        };
        let (cx, cy) = if array_type == 0 {
            (1, 2 - fmo)
        } else {
            (sub_w, sub_h * (2 - fmo))
        };
        let [l, r, t, b] = s.crop.unwrap_or([0; 4]);
        let w = (s.width_mbs * 16).checked_sub(cx * (l + r))?;
        let h = (s.height_map_units * 16 * (2 - fmo)).checked_sub(cy * (t + b))?;
        (w > 0 && h > 0).then_some((w, h))
    }

    proptest! {
        #[test]
        fn sps_dimensions_match_the_standard(spec in sps_spec()) {
            let sps = write_sps(&spec);
            match expected_dims(&spec) {
                Some(dims) => prop_assert_eq!(sps_dimensions(&sps).expect("valid SPS"), dims),
                None => prop_assert!(sps_dimensions(&sps).is_err()),
            }
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = AvcConfig::parse(&bytes);
            let _ = sps_dimensions(&bytes);
            let mut sps = vec![0x67];
            sps.extend_from_slice(&bytes);
            let _ = sps_dimensions(&sps);
            let _ = codec_string_from_annexb(&bytes);
            let _ = annexb_nals(&bytes).count();
            if let Ok(config) = AvcConfig::from_annexb(&bytes) {
                let record = config.record();
                prop_assert!(record.is_ok(), "a config made from parsed sets serialises");
                prop_assert_eq!(AvcConfig::parse(&record.expect("checked")).ok(), Some(config));
            }
            let mut out = Vec::new();
            let _ = annexb_to_avcc(&bytes, &mut out);
            let mut config = x264_config();
            for size in 1..=4 {
                config.nal_length_size = size;
                let mut out = Vec::new();
                if avcc_to_annexb(&config, &bytes, &mut out).is_err() {
                    prop_assert!(out.is_empty());
                }
            }
        }

        /// A record written from a configuration parses back to it, whatever its
        /// parameter sets.
        #[test]
        fn records_round_trip(
            sps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..3),
            pps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..3),
            nal_length_size in 1u8..=4,
        ) {
            let mut config = x264_config();
            config.profile_idc = 66; // no extension: the SPS need not parse
            config.nal_length_size = nal_length_size;
            config.sps = sps.into_iter().map(|mut s| { s[0] = NAL_SPS; Bytes::from(s) }).collect();
            config.pps = pps.into_iter().map(|mut p| { p[0] = NAL_PPS; Bytes::from(p) }).collect();
            let record = config.record().expect("fits");
            prop_assert_eq!(AvcConfig::parse(&record).expect("parses"), config);
        }

        /// Every input NAL comes out byte for byte and in order; exactly the documented
        /// NALs are added, in the documented place.
        #[test]
        fn avcc_to_annexb_preserves_and_inserts_as_documented(
            types in proptest::collection::vec(
                prop_oneof![Just(1u8), Just(5), Just(6), Just(7), Just(8), Just(9), Just(12)],
                0..8,
            ),
            payloads in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..40), 8),
            length_size in prop_oneof![Just(1u8), Just(2), Just(4)],
        ) {
            let mut config = x264_config();
            config.nal_length_size = length_size;
            // Escaped like a real encoder would, ending in a non-zero byte, so the
            // Annex B output can be split back unambiguously.
            let nals: Vec<Vec<u8>> = types.iter().zip(&payloads).map(|(&t, p)| {
                let mut w = BitWriter::default();
                w.bits(u64::from(0x60 | t), 8);
                for &b in p { w.bits(u64::from(b), 8); }
                w.finish()
            }).collect();
            let refs: Vec<&[u8]> = nals.iter().map(|n| &n[..]).collect();
            let got = {
                let mut out = Vec::new();
                avcc_to_annexb(&config, &avcc(&refs, usize::from(length_size)), &mut out)
                    .expect("valid AU");
                prop_assert!(out.starts_with(&START_CODE));
                annexb_nals(&out).map(<[u8]>::to_vec).collect::<Vec<_>>()
            };

            let has = |t: u8| types.contains(&t);
            let mut want: Vec<Vec<u8>> = Vec::new();
            let mut rest = &nals[..];
            if types.first() == Some(&NAL_AUD) {
                want.push(nals[0].clone());
                rest = &nals[1..];
            } else if !has(NAL_AUD) {
                want.push(AUD_NAL.to_vec());
            }
            if has(NAL_IDR) && !has(NAL_SPS) {
                want.extend(config.sps.iter().map(|b| b.to_vec()));
            }
            if has(NAL_IDR) && !has(NAL_PPS) {
                want.extend(config.pps.iter().map(|b| b.to_vec()));
            }
            want.extend(rest.iter().cloned());
            prop_assert_eq!(&got, &want);

            // And said the other way round: removing what was inserted leaves the input.
            let inserted = want.len() - nals.len();
            let mut kept = got.clone();
            if types.first() == Some(&NAL_AUD) {
                kept.drain(1..1 + inserted);
            } else {
                kept.drain(..inserted);
            }
            prop_assert_eq!(kept, nals);
        }
    }
}
