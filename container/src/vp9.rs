//! VP9 as E-RTMP's `vp09` carries it: a VPCodecConfigurationRecord once (the payload of an
//! MP4 `vpcC` box, with or without the box's version and flags: senders differ), then one
//! frame (or superframe) per message, which is also what an MP4 sample holds.
//!
//! Read here: the record (profile, level, bit depth, colour fields for the `vpcC` the
//! init segment writes and the codec string) and, since the record has no picture size,
//! the size from a key frame's uncompressed header (VP9 §6.2).

use bytes::{BufMut, Bytes, BytesMut};

use super::bits::BitReader;
use super::ContainerError;

/// A VPCodecConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp9Config {
    /// `profile` (0..=3).
    pub profile: u8,
    /// `level` (10 × the level: 31 is level 3.1).
    pub level: u8,
    /// `bitDepth`.
    pub bit_depth: u8,
    /// `chromaSubsampling` (1 = 4:2:0 colocated with luma).
    pub chroma_subsampling: u8,
    /// `videoFullRangeFlag`.
    pub full_range: bool,
    /// `colourPrimaries`, `transferCharacteristics`, `matrixCoefficients`.
    pub colour: [u8; 3],
}

impl Vp9Config {
    /// Parses a record, with or without the `vpcC` box's version 1 and flags in front.
    pub fn parse(record: &[u8]) -> Result<Self, ContainerError> {
        const WHAT: &str = "VPCodecConfigurationRecord";
        // A record proper starts with the profile (0..=3) and a level of at least 10; the
        // box form starts with version 1 and three zero bytes of flags.
        let body = match record {
            [1, 0, 0, 0, rest @ ..] if rest.len() >= 8 => rest,
            _ => record,
        };
        if body.len() < 8 {
            return Err(ContainerError::truncated(WHAT, 8, body.len()));
        }
        let bit_depth = body[2] >> 4;
        if body[0] > 3 || !matches!(bit_depth, 8 | 10 | 12) {
            return Err(ContainerError::malformed(
                WHAT,
                format!("profile {} with bit depth {bit_depth}", body[0]),
            ));
        }
        Ok(Vp9Config {
            profile: body[0],
            level: body[1],
            bit_depth,
            chroma_subsampling: (body[2] >> 1) & 0x07,
            full_range: body[2] & 0x01 != 0,
            colour: [body[3], body[4], body[5]],
        })
    }

    /// The `vpcC` box payload (version 1 and flags first, no codec initialisation data).
    pub fn vpcc(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(12);
        out.put_u32(0x0100_0000); // version 1, flags 0
        out.put_u8(self.profile);
        out.put_u8(self.level);
        out.put_u8(
            self.bit_depth << 4 | (self.chroma_subsampling & 0x07) << 1 | u8::from(self.full_range),
        );
        out.put_slice(&self.colour);
        out.put_u16(0); // codecIntializationDataSize
        out.freeze()
    }

    /// RFC 6381 codec string for `CODECS` (VP codec ISO-BMFF binding, the short form):
    /// `vp09.PP.LL.DD`, e.g. `vp09.00.31.08`.
    pub fn codec_string(&self) -> String {
        format!(
            "vp09.{:02}.{:02}.{:02}",
            self.profile, self.level, self.bit_depth
        )
    }
}

/// The picture size of a VP9 key frame, from its uncompressed header. Errors for anything
/// that is not a key frame.
pub fn keyframe_dimensions(frame: &[u8]) -> Result<(u32, u32), ContainerError> {
    const WHAT: &str = "VP9 frame header";
    let mut r = BitReader::new(WHAT, frame);
    if r.bits(2)? != 2 {
        return Err(ContainerError::malformed(WHAT, "frame marker"));
    }
    let low = r.bits(1)?;
    let profile = (r.bits(1)? << 1) | low;
    if profile == 3 {
        r.skip(1)?;
    }
    if r.flag()? {
        return Err(ContainerError::malformed(
            WHAT,
            "show_existing_frame, not a key frame",
        ));
    }
    if r.flag()? {
        return Err(ContainerError::malformed(
            WHAT,
            "an inter frame, not a key frame",
        ));
    }
    r.skip(2)?; // show_frame, error_resilient_mode
    if r.bits(24)? != 0x49_8342 {
        return Err(ContainerError::malformed(WHAT, "frame sync code"));
    }
    if profile >= 2 {
        r.skip(1)?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.skip(1)?; // color_range
        if profile == 1 || profile == 3 {
            r.skip(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        r.skip(1)?;
    }
    let width = r.bits(16)? + 1;
    let height = r.bits(16)? + 1;
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ffmpeg_record_and_key_frame() {
        // What ffmpeg 9 sends: the box form, profile 0, level 2.0, 8 bit 4:2:0, BT.709.
        let config =
            Vp9Config::parse(b"\x01\x00\x00\x00\x00\x14\x82\x02\x02\x02\x00\x00").expect("valid");
        assert_eq!(config.codec_string(), "vp09.00.20.08");
        assert_eq!(
            &config.vpcc()[..],
            b"\x01\x00\x00\x00\x00\x14\x82\x02\x02\x02\x00\x00"
        );
        // Without the version and flags, the same record.
        assert_eq!(
            Vp9Config::parse(b"\x00\x14\x82\x02\x02\x02\x00\x00").expect("valid"),
            config
        );
        assert_eq!(
            keyframe_dimensions(b"\x82\x49\x83\x42\x00\x13\xf0\x0e\xf6").expect("key frame"),
            (320, 240)
        );
        // An inter frame (frame_type 1).
        assert!(keyframe_dimensions(b"\x86\x00").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Vp9Config::parse(&bytes).map(|c| c.vpcc());
            let _ = keyframe_dimensions(&bytes);
        }
    }
}
