//! HEVC (H.265) as it arrives (E-RTMP `hvc1`: length-prefixed NAL units and an
//! HEVCDecoderConfigurationRecord; SRT's MPEG-TS: Annex B with the parameter sets in-band)
//! and as the muxers want it (Annex B with the parameter sets before every random access
//! point for MPEG-TS and the decoder; `hvcC` plus length-prefixed samples without them for
//! CMAF's `hvc1` sample entry).
//!
//! Only as much of HEVC is parsed as the ingest needs: the configuration record, NAL unit
//! boundaries and types, and the SPS up to the picture size and bit depths. Slices are
//! never looked into. Random access points are the IRAP pictures (NAL types 16 to 23:
//! BLA, IDR, CRA): a decoder can start at each, so segments may be cut there.

use bytes::Bytes;

use super::bits::BitReader;
use super::h264::{annexb_nals, avcc_nals, unescape_rbsp};
use super::ContainerError;

/// NAL unit type of a video parameter set.
pub const NAL_VPS: u8 = 32;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 34;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 35;
/// The IRAP NAL unit types (BLA_W_LP .. RSV_IRAP_VCL23): pictures a decoder can start at.
pub const NAL_IRAP: std::ops::RangeInclusive<u8> = 16..=23;

/// Most parameter sets of one kind a record or an access unit may bring (VPS allows 16,
/// SPS 16, PPS 64): a bound on what a publisher makes us hold.
const MAX_PARAMETER_SETS: usize = 64;

/// The start code written before every NAL unit.
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The type of an HEVC NAL unit, from its two-byte header.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3F)
}

/// An HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1), reduced to what the
/// ingest uses: the profile fields of the codec string, the NAL length size of the
/// frames, and the parameter sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// `general_profile_space` (0..=3; 0 everywhere in practice).
    pub profile_space: u8,
    /// `general_tier_flag`: Main (false) or High (true) tier.
    pub tier_high: bool,
    /// `general_profile_idc` (1 Main, 2 Main 10, ...).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flags`, bit 31 for profile 0.
    pub compatibility_flags: u32,
    /// The 48 bits of `general_constraint_indicator_flags`.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc` (30 × the level number: 93 is level 3.1).
    pub level_idc: u8,
    /// `chroma_format_idc` (1 = 4:2:0).
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Size in bytes (1, 2 or 4) of the length prefix of each NAL unit in the frames.
    pub nal_length_size: u8,
    /// Video parameter sets, as NAL units with their headers.
    pub vps: Vec<Bytes>,
    /// Sequence parameter sets.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets.
    pub pps: Vec<Bytes>,
}

impl HevcConfig {
    /// Parses a configuration record (the body of an `hvc1` sequence start). Arrays of
    /// other NAL types (SEI) are skipped; a record without parameter sets is accepted
    /// (the frames must then carry them in-band).
    pub fn parse(record: &[u8]) -> Result<Self, ContainerError> {
        const WHAT: &str = "HEVCDecoderConfigurationRecord";
        if record.len() < 23 {
            return Err(ContainerError::truncated(WHAT, 23, record.len()));
        }
        if record[0] != 1 {
            return Err(ContainerError::malformed(
                WHAT,
                format!("configurationVersion {}", record[0]),
            ));
        }
        let nal_length_size = (record[21] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(ContainerError::malformed(WHAT, "lengthSizeMinusOne 2"));
        }
        let mut config = HevcConfig {
            profile_space: record[1] >> 6,
            tier_high: record[1] & 0x20 != 0,
            profile_idc: record[1] & 0x1F,
            compatibility_flags: u32::from_be_bytes([record[2], record[3], record[4], record[5]]),
            constraint_flags: [
                record[6], record[7], record[8], record[9], record[10], record[11],
            ],
            level_idc: record[12],
            chroma_format_idc: record[16] & 0x03,
            bit_depth_luma: (record[17] & 0x07) + 8,
            bit_depth_chroma: (record[18] & 0x07) + 8,
            nal_length_size,
            vps: Vec::new(),
            sps: Vec::new(),
            pps: Vec::new(),
        };
        let arrays = record[22];
        let mut pos = 23;
        for _ in 0..arrays {
            let header = *record
                .get(pos)
                .ok_or_else(|| ContainerError::truncated(WHAT, pos + 1, record.len()))?;
            let count = record
                .get(pos + 1..pos + 3)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .ok_or_else(|| ContainerError::truncated(WHAT, pos + 3, record.len()))?;
            pos += 3;
            let kind = header & 0x3F;
            for _ in 0..count {
                let len = record
                    .get(pos..pos + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or_else(|| ContainerError::truncated(WHAT, pos + 2, record.len()))?;
                pos += 2;
                let nal = record
                    .get(pos..pos + len)
                    .ok_or_else(|| ContainerError::truncated(WHAT, pos + len, record.len()))?;
                pos += len;
                if nal_type(nal) != Some(kind) {
                    return Err(ContainerError::malformed(
                        WHAT,
                        format!(
                            "a NAL unit of type {:?} in the array of type {kind}",
                            nal_type(nal)
                        ),
                    ));
                }
                let list = match kind {
                    NAL_VPS => &mut config.vps,
                    NAL_SPS => &mut config.sps,
                    NAL_PPS => &mut config.pps,
                    _ => continue,
                };
                if list.len() >= MAX_PARAMETER_SETS {
                    return Err(ContainerError::malformed(
                        WHAT,
                        format!("more than {MAX_PARAMETER_SETS} parameter sets of type {kind}"),
                    ));
                }
                list.push(Bytes::copy_from_slice(nal));
            }
        }
        Ok(config)
    }

    /// The configuration of an encoder that writes its parameter sets in-band (MPEG-TS
    /// from SRT, x265): every VPS, SPS and PPS of one Annex B access unit (an IRAP
    /// picture's), with four-byte NAL lengths; profile, tier, level and bit depths from the
    /// first SPS, which must parse.
    pub fn from_annexb(access_unit: &[u8]) -> Result<Self, ContainerError> {
        const WHAT: &str = "HEVC access unit";
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        for nal in annexb_nals(access_unit) {
            let list = match nal_type(nal) {
                Some(NAL_VPS) => &mut vps,
                Some(NAL_SPS) => &mut sps,
                Some(NAL_PPS) => &mut pps,
                _ => continue,
            };
            if list.len() < MAX_PARAMETER_SETS {
                list.push(Bytes::copy_from_slice(nal));
            }
        }
        let first = sps
            .first()
            .ok_or_else(|| ContainerError::malformed(WHAT, "no SPS"))?;
        if vps.is_empty() || pps.is_empty() {
            return Err(ContainerError::malformed(WHAT, "no VPS or no PPS"));
        }
        let info = HevcSps::parse(first)?;
        Ok(HevcConfig {
            profile_space: info.profile_space,
            tier_high: info.tier_high,
            profile_idc: info.profile_idc,
            compatibility_flags: info.compatibility_flags,
            constraint_flags: info.constraint_flags,
            level_idc: info.level_idc,
            chroma_format_idc: info.chroma_format_idc,
            bit_depth_luma: info.bit_depth_luma,
            bit_depth_chroma: info.bit_depth_chroma,
            nal_length_size: 4,
            vps,
            sps,
            pps,
        })
    }

    /// The configuration record as an MP4 `hvcC` box holds it for an `hvc1` sample entry:
    /// four-byte NAL lengths, and VPS, SPS and PPS arrays marked complete (the samples
    /// carry none; [`annexb_to_hvcc`] leaves them out).
    pub fn record(&self) -> Result<Vec<u8>, ContainerError> {
        let mut out = Vec::with_capacity(
            23 + [&self.vps, &self.sps, &self.pps]
                .iter()
                .flat_map(|l| l.iter())
                .map(|n| n.len() + 5)
                .sum::<usize>(),
        );
        out.push(1);
        out.push(
            (self.profile_space & 0x03) << 6
                | u8::from(self.tier_high) << 5
                | (self.profile_idc & 0x1F),
        );
        out.extend_from_slice(&self.compatibility_flags.to_be_bytes());
        out.extend_from_slice(&self.constraint_flags);
        out.push(self.level_idc);
        out.extend_from_slice(&[0xF0, 0x00]); // min_spatial_segmentation_idc 0
        out.push(0xFC); // parallelismType 0: unknown
        out.push(0xFC | (self.chroma_format_idc & 0x03));
        out.push(0xF8 | (self.bit_depth_luma.saturating_sub(8) & 0x07));
        out.push(0xF8 | (self.bit_depth_chroma.saturating_sub(8) & 0x07));
        out.extend_from_slice(&[0, 0]); // avgFrameRate: unknown
                                        // constantFrameRate 0, numTemporalLayers 0 (unknown), temporalIdNested 0,
                                        // lengthSizeMinusOne 3.
        out.push(0x03);
        let arrays = [
            (NAL_VPS, &self.vps),
            (NAL_SPS, &self.sps),
            (NAL_PPS, &self.pps),
        ];
        out.push(arrays.iter().filter(|(_, l)| !l.is_empty()).count() as u8);
        for (kind, list) in arrays {
            if list.is_empty() {
                continue;
            }
            out.push(0x80 | kind); // array_completeness 1
            let count = u16::try_from(list.len()).map_err(|_| ContainerError::TooLong {
                what: "HEVC parameter set array",
                len: list.len(),
                max: usize::from(u16::MAX),
            })?;
            out.extend_from_slice(&count.to_be_bytes());
            for nal in list.iter() {
                let len = u16::try_from(nal.len()).map_err(|_| ContainerError::TooLong {
                    what: "HEVC parameter set",
                    len: nal.len(),
                    max: usize::from(u16::MAX),
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(nal);
            }
        }
        Ok(out)
    }

    /// RFC 6381 codec string for `CODECS` (ISO/IEC 14496-15 Annex E.3), e.g.
    /// `hvc1.1.6.L93.B0`: profile space and profile, the compatibility flags in reverse
    /// bit order, tier and level, then the constraint bytes without trailing zeros.
    pub fn codec_string(&self) -> String {
        codec_string(
            self.profile_space,
            self.profile_idc,
            self.compatibility_flags,
            self.tier_high,
            self.level_idc,
            &self.constraint_flags,
        )
    }

    /// Picture size from the first SPS, for planning the ladder before any frame arrives.
    pub fn dimensions(&self) -> Result<(u32, u32), ContainerError> {
        let sps = self
            .sps
            .first()
            .ok_or_else(|| ContainerError::malformed("HEVCDecoderConfigurationRecord", "no SPS"))?;
        HevcSps::parse(sps).map(|info| (info.width, info.height))
    }
}

fn codec_string(
    profile_space: u8,
    profile_idc: u8,
    compatibility_flags: u32,
    tier_high: bool,
    level_idc: u8,
    constraint_flags: &[u8; 6],
) -> String {
    let space = match profile_space {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    let mut s = format!(
        "hvc1.{space}{profile_idc}.{:X}.{}{level_idc}",
        compatibility_flags.reverse_bits(),
        if tier_high { 'H' } else { 'L' }
    );
    let kept = constraint_flags
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraint_flags[..kept] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

/// What the ingest reads from an HEVC SPS (H.265 §7.3.2.2): the profile fields and the
/// picture size with the conformance window applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HevcSps {
    /// `general_profile_space`.
    pub profile_space: u8,
    /// `general_tier_flag`.
    pub tier_high: bool,
    /// `general_profile_idc`.
    pub profile_idc: u8,
    /// `general_profile_compatibility_flags`.
    pub compatibility_flags: u32,
    /// `general_constraint_indicator_flags`, 48 bits.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc`.
    pub level_idc: u8,
    /// `chroma_format_idc`.
    pub chroma_format_idc: u8,
    /// Output width, conformance window applied.
    pub width: u32,
    /// Output height, conformance window applied.
    pub height: u32,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
}

impl HevcSps {
    /// Parses an SPS NAL unit (with its two-byte header) up to the bit depths.
    pub fn parse(sps_nal: &[u8]) -> Result<Self, ContainerError> {
        const WHAT: &str = "HEVC SPS";
        if nal_type(sps_nal) != Some(NAL_SPS) {
            return Err(ContainerError::malformed(
                WHAT,
                format!("NAL unit type {:?}, not {NAL_SPS}", nal_type(sps_nal)),
            ));
        }
        let rbsp = unescape_rbsp(sps_nal.get(2..).unwrap_or_default());
        let mut r = BitReader::new(WHAT, &rbsp);
        r.skip(4)?; // sps_video_parameter_set_id
        let max_sub_layers_minus1 = r.bits(3)?;
        if max_sub_layers_minus1 > 6 {
            return Err(ContainerError::malformed(
                WHAT,
                format!("sps_max_sub_layers_minus1 = {max_sub_layers_minus1}"),
            ));
        }
        r.skip(1)?; // sps_temporal_id_nesting_flag
                    // profile_tier_level(1, sps_max_sub_layers_minus1)
        let profile_space = r.bits(2)? as u8;
        let tier_high = r.flag()?;
        let profile_idc = r.bits(5)? as u8;
        let compatibility_flags = r.bits(32)?;
        let mut constraint_flags = [0u8; 6];
        for b in &mut constraint_flags {
            *b = r.bits(8)? as u8;
        }
        let level_idc = r.bits(8)? as u8;
        let mut sub_layers = Vec::with_capacity(max_sub_layers_minus1 as usize);
        for _ in 0..max_sub_layers_minus1 {
            sub_layers.push((r.flag()?, r.flag()?));
        }
        if max_sub_layers_minus1 > 0 {
            r.skip(2 * (8 - max_sub_layers_minus1 as usize))?; // reserved_zero_2bits
        }
        for (profile_present, level_present) in sub_layers {
            if profile_present {
                r.skip(88)?;
            }
            if level_present {
                r.skip(8)?;
            }
        }
        r.ue_max("sps_seq_parameter_set_id", 15)?;
        let chroma_format_idc = r.ue_max("chroma_format_idc", 3)? as u8;
        let separate_colour_plane = chroma_format_idc == 3 && r.flag()?;
        let width = u64::from(r.ue()?);
        let height = u64::from(r.ue()?);
        let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
        if r.flag()? {
            left = r.ue()?.into();
            right = r.ue()?.into();
            top = r.ue()?.into();
            bottom = r.ue()?.into();
        }
        let bit_depth_luma = 8 + r.ue_max("bit_depth_luma_minus8", 8)? as u8;
        let bit_depth_chroma = 8 + r.ue_max("bit_depth_chroma_minus8", 8)? as u8;
        // Table 6-1: the window counts in chroma samples.
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (unit_x, unit_y) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let crop_x = (left + right) * unit_x;
        let crop_y = (top + bottom) * unit_y;
        if width == 0 || height == 0 || crop_x >= width || crop_y >= height {
            return Err(ContainerError::malformed(
                WHAT,
                format!("a {width}x{height} picture cropped by {crop_x}x{crop_y}"),
            ));
        }
        let to_u32 = |v: u64| {
            u32::try_from(v).map_err(|_| ContainerError::malformed(WHAT, format!("size {v}")))
        };
        Ok(HevcSps {
            profile_space,
            tier_high,
            profile_idc,
            compatibility_flags,
            constraint_flags,
            level_idc,
            chroma_format_idc,
            width: to_u32(width - crop_x)?,
            height: to_u32(height - crop_y)?,
            bit_depth_luma,
            bit_depth_chroma,
        })
    }
}

/// Converts one access unit from length-prefixed NAL units (`config.nal_length_size`) to
/// Annex B, appending it to `out`; returns whether it is a random access point (holds an
/// IRAP picture).
///
/// Before an IRAP picture that does not bring its own, the configuration's VPS, SPS and
/// PPS are written, so that every segment (cut at such a picture) is decodable alone and
/// the decoder needs no out-of-band configuration. A length that runs past the end is an
/// error, reported before anything is written.
pub fn to_annexb(
    config: &HevcConfig,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<bool, ContainerError> {
    if !matches!(config.nal_length_size, 1 | 2 | 4) {
        return Err(ContainerError::malformed(
            "HevcConfig",
            format!("NAL length size {}", config.nal_length_size),
        ));
    }
    let size = usize::from(config.nal_length_size);
    let (mut irap, mut has_vps, mut has_sps, mut has_pps) = (false, false, false, false);
    let mut total = 0;
    for nal in avcc_nals(data, size) {
        let nal = nal?;
        match nal_type(nal) {
            Some(NAL_VPS) => has_vps = true,
            Some(NAL_SPS) => has_sps = true,
            Some(NAL_PPS) => has_pps = true,
            Some(t) if NAL_IRAP.contains(&t) => irap = true,
            _ => {}
        }
        total += START_CODE.len() + nal.len();
    }
    out.reserve(total);
    if irap {
        for (has, sets) in [
            (has_vps, &config.vps),
            (has_sps, &config.sps),
            (has_pps, &config.pps),
        ] {
            if !has {
                for nal in sets {
                    out.extend_from_slice(&START_CODE);
                    out.extend_from_slice(nal);
                }
            }
        }
    }
    for nal in avcc_nals(data, size).filter_map(Result::ok) {
        if !nal.is_empty() {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
    }
    Ok(irap)
}

/// Whether an Annex B access unit holds an IRAP picture.
pub fn annexb_is_irap(annexb: &[u8]) -> bool {
    annexb_nals(annexb).any(|nal| nal_type(nal).is_some_and(|t| NAL_IRAP.contains(&t)))
}

/// Converts one Annex B access unit to an `hvc1` sample (four-byte lengths), appending it
/// to `out`: access unit delimiters and parameter sets are left out (the sample entry's
/// `hvcC` holds them, and `hvc1` wants them there alone). Returns whether it is an IRAP.
pub fn annexb_to_hvcc(annexb: &[u8], out: &mut Vec<u8>) -> Result<bool, ContainerError> {
    let mut irap = false;
    for nal in annexb_nals(annexb) {
        match nal_type(nal) {
            Some(NAL_VPS | NAL_SPS | NAL_PPS | NAL_AUD) => continue,
            Some(t) if NAL_IRAP.contains(&t) => irap = true,
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
    Ok(irap)
}

/// RFC 6381 codec string from the first SPS of an Annex B buffer (encoders that put
/// parameter sets in-band).
pub fn codec_string_from_annexb(data: &[u8]) -> Option<String> {
    let sps = annexb_nals(data).find(|nal| nal_type(nal) == Some(NAL_SPS))?;
    let info = HevcSps::parse(sps).ok()?;
    Some(codec_string(
        info.profile_space,
        info.profile_idc,
        info.compatibility_flags,
        info.tier_high,
        info.level_idc,
        &info.constraint_flags,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The hvcC x265 wrote (through ffmpeg 9's FLV muxer) for 320x240 Main at level 2,
    /// without its SEI array.
    fn x265_record() -> Vec<u8> {
        hex(concat!(
            "0101600000009000000000003cf000fcfdf8f800000f03",
            "200001001840010c01ffff01600000030090000003000003003c959409",
            "210001002a42010101600000030090000003000003003ca00a080f16595952930bc05a020000030002000003003c10",
            "22000100064401c073c189",
        ))
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn x265_record_parses() {
        let config = HevcConfig::parse(&x265_record()).expect("valid record");
        assert_eq!((config.profile_idc, config.level_idc), (1, 60));
        assert_eq!(config.nal_length_size, 4);
        assert_eq!(
            (config.vps.len(), config.sps.len(), config.pps.len()),
            (1, 1, 1)
        );
        assert_eq!(config.codec_string(), "hvc1.1.6.L60.90");
        assert_eq!(config.dimensions().expect("SPS parses"), (320, 240));
        // What we write parses back to the same configuration.
        let again = HevcConfig::parse(&config.record().expect("record")).expect("parses");
        assert_eq!(again, config);
    }

    #[test]
    fn codec_strings_follow_annex_e() {
        // Main, level 3.1, progressive source flag: the example of ISO/IEC 14496-15.
        assert_eq!(
            codec_string(0, 1, 0x6000_0000, false, 93, &[0xB0, 0, 0, 0, 0, 0]),
            "hvc1.1.6.L93.B0"
        );
        // Main 10, High tier, profile space 1.
        assert_eq!(
            codec_string(1, 2, 0x2000_0000, true, 120, &[0; 6]),
            "hvc1.A2.4.H120"
        );
    }

    #[test]
    fn parameter_sets_go_before_irap_pictures_only() {
        let config = HevcConfig::parse(&x265_record()).expect("valid");
        // An IDR_W_RADL slice (type 19) and a TRAIL_R slice (type 1).
        let idr = [0, 0, 0, 3, 0x26, 0x01, 0xAF];
        let trail = [0, 0, 0, 3, 0x02, 0x01, 0xD0];
        let mut out = Vec::new();
        assert!(to_annexb(&config, &idr, &mut out).expect("valid"));
        let types: Vec<u8> = annexb_nals(&out).filter_map(nal_type).collect();
        assert_eq!(types, [NAL_VPS, NAL_SPS, NAL_PPS, 19]);
        assert!(annexb_is_irap(&out));
        // Into a sample: the parameter sets leave again.
        let mut sample = Vec::new();
        assert!(annexb_to_hvcc(&out, &mut sample).expect("valid"));
        assert_eq!(sample, idr);
        let mut out = Vec::new();
        assert!(!to_annexb(&config, &trail, &mut out).expect("valid"));
        assert_eq!(
            annexb_nals(&out).filter_map(nal_type).collect::<Vec<_>>(),
            [1]
        );
        // From the in-band sets, the same configuration (with four-byte lengths).
        let mut au = Vec::new();
        to_annexb(&config, &idr, &mut au).expect("valid");
        assert_eq!(HevcConfig::from_annexb(&au).expect("in-band"), config);
        assert_eq!(
            codec_string_from_annexb(&au).as_deref(),
            Some("hvc1.1.6.L60.90")
        );
        // A length past the end: an error, nothing written.
        let mut out = Vec::new();
        assert!(to_annexb(&config, &[0, 0, 0, 9, 0x26], &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn bad_records_are_errors() {
        let record = x265_record();
        for cut in [0, 5, 22, 24, 30, record.len() - 1] {
            assert!(HevcConfig::parse(&record[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_version = record.clone();
        wrong_version[0] = 0;
        assert!(matches!(
            HevcConfig::parse(&wrong_version),
            Err(ContainerError::Malformed { .. })
        ));
        // The VPS array claims to hold SPS units.
        let mut wrong_type = record;
        wrong_type[23] = 0x21;
        assert!(matches!(
            HevcConfig::parse(&wrong_type),
            Err(ContainerError::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = HevcConfig::parse(&bytes);
            let _ = HevcConfig::from_annexb(&bytes);
            let _ = HevcSps::parse(&bytes);
            let _ = codec_string_from_annexb(&bytes);
            let mut out = Vec::new();
            let _ = annexb_to_hvcc(&bytes, &mut out);
            if let Ok(config) = HevcConfig::parse(&x265_record()) {
                let _ = to_annexb(&config, &bytes, &mut out);
            }
        }

        /// Any record we write parses back to what we wrote it from.
        #[test]
        fn records_round_trip(
            profile_idc in 0u8..32, level_idc: u8, flags: u32, constraints: [u8; 6],
            high: bool, depth in 8u8..=12,
            sets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..4),
        ) {
            let nal = |kind: u8, body: &[u8]| {
                let mut n = vec![kind << 1, 1];
                n.extend_from_slice(body);
                Bytes::from(n)
            };
            let config = HevcConfig {
                profile_space: 0,
                tier_high: high,
                profile_idc,
                compatibility_flags: flags,
                constraint_flags: constraints,
                level_idc,
                chroma_format_idc: 1,
                bit_depth_luma: depth,
                bit_depth_chroma: depth,
                nal_length_size: 4,
                vps: sets.iter().map(|s| nal(NAL_VPS, s)).collect(),
                sps: sets.iter().map(|s| nal(NAL_SPS, s)).collect(),
                pps: sets.iter().map(|s| nal(NAL_PPS, s)).collect(),
            };
            let record = config.record().expect("record");
            prop_assert_eq!(HevcConfig::parse(&record).expect("parses"), config);
        }
    }
}
