//! The publisher's video as the pipeline keeps it: its codec's configuration record,
//! parsed ([`SourceVideo`]), and what follows from it: the picture size the ladder is
//! planned from, the RFC 6381 codec string of the `src` rung, each access unit in the form
//! the segmenter, the muxers and the decoder take, and whether the `src` rung can carry
//! the codec as it is in the ladder's container.
//!
//! | codec | configuration | access units for the segmenter | `src` in CMAF | `src` in MPEG-TS |
//! |---|---|---|---|---|
//! | H.264 | avcC | Annex B, SPS/PPS before every IDR | `avc1` | passed through |
//! | HEVC | hvcC | Annex B, VPS/SPS/PPS before every IRAP | `hvc1` | passed through (`stream_type` 0x24) |
//! | AV1 | av1C | OBUs, the sequence header before every key frame | `av01` | re-encoded to H.264 |
//! | VP9 | vpcC | frames as they are | `vp09` | re-encoded to H.264 |
//!
//! AV1 and VP9 have no MPEG-TS mapping HLS players read, so a TS ladder encodes its `src`
//! rung at the source's size instead (said once in the log).

use bytes::Bytes;
use container::av1::{self, Av1Config};
use container::h264::{self, AvcConfig};
use container::hevc::{self, HevcConfig};
use container::vp9::{self, Vp9Config};
use container::ContainerError;
use domain::SegmentFormat;
use intake::media::VideoCodec;

/// The publisher's video configuration, parsed.
#[derive(Debug, Clone)]
pub(crate) enum SourceVideo {
    /// H.264.
    H264(AvcConfig),
    /// HEVC.
    Hevc(HevcConfig),
    /// AV1.
    Av1(Av1Config),
    /// VP9.
    Vp9(Vp9Config),
}

impl SourceVideo {
    /// Parses the configuration a publisher sent for `codec`.
    pub(crate) fn parse(codec: VideoCodec, config: &Bytes) -> Result<Self, ContainerError> {
        Ok(match codec {
            VideoCodec::H264 => SourceVideo::H264(AvcConfig::parse(config)?),
            VideoCodec::Hevc => SourceVideo::Hevc(HevcConfig::parse(config)?),
            VideoCodec::Av1 => SourceVideo::Av1(Av1Config::parse(config)?),
            VideoCodec::Vp9 => SourceVideo::Vp9(Vp9Config::parse(config)?),
        })
    }

    /// The codec.
    pub(crate) fn codec(&self) -> VideoCodec {
        match self {
            SourceVideo::H264(_) => VideoCodec::H264,
            SourceVideo::Hevc(_) => VideoCodec::Hevc,
            SourceVideo::Av1(_) => VideoCodec::Av1,
            SourceVideo::Vp9(_) => VideoCodec::Vp9,
        }
    }

    /// The RFC 6381 codec string of the `src` rung when it passes the codec through.
    pub(crate) fn codec_string(&self) -> String {
        match self {
            SourceVideo::H264(c) => c.codec_string(),
            SourceVideo::Hevc(c) => c.codec_string(),
            SourceVideo::Av1(c) => c.codec_string(),
            SourceVideo::Vp9(c) => c.codec_string(),
        }
    }

    /// Whether the `src` rung carries this codec as it is in `format`.
    pub(crate) fn passes_through(&self, format: SegmentFormat) -> bool {
        match format {
            SegmentFormat::Cmaf => true,
            SegmentFormat::Ts => matches!(self, SourceVideo::H264(_) | SourceVideo::Hevc(_)),
        }
    }

    /// The picture size, from the configuration or, where it has none (VP9, an AV1
    /// record without a sequence header), from the first key frame (`first`, as the
    /// publisher sent it).
    pub(crate) fn dimensions(&self, first: &[u8]) -> Result<(u32, u32), ContainerError> {
        match self {
            SourceVideo::H264(c) => {
                let sps = c.sps.first().ok_or_else(|| {
                    ContainerError::malformed("AVCDecoderConfigurationRecord", "no SPS")
                })?;
                h264::sps_dimensions(sps)
            }
            SourceVideo::Hevc(c) => c.dimensions(),
            SourceVideo::Av1(c) => c.dimensions(first),
            SourceVideo::Vp9(_) => vp9::keyframe_dimensions(first),
        }
    }

    /// One access unit as the publisher sent it, in the form the segmenter, the muxers and
    /// the decoder take (the table above), appended to `out`. `keyframe` is the publisher's
    /// flag.
    pub(crate) fn access_unit(
        &self,
        data: &[u8],
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ContainerError> {
        match self {
            SourceVideo::H264(c) => h264::avcc_to_annexb(c, data, out),
            SourceVideo::Hevc(c) => hevc::to_annexb(c, data, out).map(drop),
            SourceVideo::Av1(c) => {
                // A segment must start decodable on its own: its key frame brings the
                // sequence header, from the record when the publisher left it out.
                if keyframe && av1::sequence_header(data).is_none() {
                    out.extend_from_slice(&c.config_obus);
                }
                out.extend_from_slice(data);
                Ok(())
            }
            SourceVideo::Vp9(_) => {
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_h264_and_hevc_pass_through_mpeg_ts() {
        let av1 = SourceVideo::parse(
            VideoCodec::Av1,
            &Bytes::from_static(
                b"\x81\x00\x0c\x00\x0a\x0b\x02\x00\x00\x05\x21\xe7\xfd\xe0\x17\xc0\x02",
            ),
        )
        .expect("valid av1C");
        assert!(av1.passes_through(SegmentFormat::Cmaf));
        assert!(!av1.passes_through(SegmentFormat::Ts));
        assert_eq!(av1.codec_string(), "av01.0.00M.08");
        assert_eq!(av1.dimensions(&[]).expect("size"), (320, 240));
        // A key frame without its sequence header gets the record's.
        let mut out = Vec::new();
        av1.access_unit(b"\x12\x00\x32\x01\xcc", true, &mut out)
            .expect("valid");
        assert!(av1::sequence_header(&out).is_some());
        let mut out = Vec::new();
        av1.access_unit(b"\x32\x01\xcc", false, &mut out)
            .expect("valid");
        assert_eq!(out, b"\x32\x01\xcc");
        let vp9 = SourceVideo::parse(
            VideoCodec::Vp9,
            &Bytes::from_static(b"\x01\x00\x00\x00\x00\x14\x82\x02\x02\x02\x00\x00"),
        )
        .expect("valid vpcC");
        assert!(!vp9.passes_through(SegmentFormat::Ts));
        assert_eq!(
            vp9.dimensions(b"\x82\x49\x83\x42\x00\x13\xf0\x0e\xf6")
                .expect("size"),
            (320, 240)
        );
    }
}
