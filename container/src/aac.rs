//! AAC as it arrives over RTMP (raw frames plus an AudioSpecificConfig) and as MPEG-TS
//! wants it (ADTS: a seven-byte header in front of every frame, stream_type 0x0F).

use super::bits::BitReader;
use super::ContainerError;

/// Sampling frequencies by `samplingFrequencyIndex` (ISO/IEC 14496-3 Table 1.18).
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
/// `samplingFrequencyIndex` meaning "an explicit 24-bit frequency follows".
const EXPLICIT_FREQUENCY: u8 = 15;
/// Object type of SBR (HE-AAC v1) when signalled explicitly.
const AOT_SBR: u8 = 5;
/// Object type of Parametric Stereo (HE-AAC v2) when signalled explicitly.
const AOT_PS: u8 = 29;
/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;
/// Largest ADTS frame, header included: `frame_length` has 13 bits.
const ADTS_MAX_FRAME_LEN: usize = (1 << 13) - 1;

/// The decoded AudioSpecificConfig of an AAC stream: what ADTS headers, codec strings and
/// timestamps need.
///
/// For HE-AAC (v1 or v2) signalled explicitly, the fields describe the *core* AAC-LC stream,
/// because that is what ADTS carries (decoders find SBR/PS in the payload), and
/// [`AacConfig::extension_object_type`] remembers the extension for the codec string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type of the core codec (2 = AAC-LC).
    pub object_type: u8,
    /// Index into the standard table of rates of the core codec; 15 means "explicit", which
    /// ADTS cannot express.
    pub sampling_frequency_index: u8,
    /// Sample rate of the core codec in Hz.
    pub sample_rate: u32,
    /// `channelConfiguration` (1 = mono, 2 = stereo, ...; 0 = described by a PCE).
    pub channel_config: u8,
    /// Samples per frame: 1024, or 960 when the GASpecificConfig sets `frameLengthFlag`.
    pub samples_per_frame: u16,
    /// 5 (SBR) or 29 (PS) when the config signals HE-AAC explicitly.
    pub extension_object_type: Option<u8>,
}

impl AacConfig {
    /// Parses an AudioSpecificConfig (the body of an AAC sequence header tag).
    pub fn parse(asc: &[u8]) -> Result<Self, ContainerError> {
        const WHAT: &str = "AudioSpecificConfig";
        let mut r = BitReader::new(WHAT, asc);
        let mut object_type = read_object_type(&mut r)?;
        let (sampling_frequency_index, sample_rate) = read_sample_rate(&mut r)?;
        let channel_config = r.bits(4)? as u8;
        let mut extension_object_type = None;
        if object_type == AOT_SBR || object_type == AOT_PS {
            // Explicit hierarchical signalling (§1.6.2.1): the rate read so far is the core
            // rate; the SBR output rate and the core object type follow.
            extension_object_type = Some(object_type);
            read_sample_rate(&mut r)?;
            object_type = read_object_type(&mut r)?;
            if object_type == 22 {
                r.skip(4)?; // extensionChannelConfiguration (ER BSAC)
            }
        }
        if object_type == 0 {
            return Err(ContainerError::malformed(
                WHAT,
                "audio object type 0 (null)",
            ));
        }
        // GASpecificConfig starts with frameLengthFlag for the general-audio types.
        let general_audio = matches!(object_type, 1..=4 | 6 | 7 | 17 | 19..=23);
        let samples_per_frame = if general_audio && r.flag().unwrap_or(false) {
            960
        } else {
            1024
        };
        Ok(Self {
            object_type,
            sampling_frequency_index,
            sample_rate,
            channel_config,
            samples_per_frame,
            extension_object_type,
        })
    }

    /// RFC 6381 codec string, e.g. `"mp4a.40.2"` (AAC-LC) or `"mp4a.40.5"` (HE-AAC).
    pub fn codec_string(&self) -> String {
        format!(
            "mp4a.40.{}",
            self.extension_object_type.unwrap_or(self.object_type)
        )
    }

    /// The ADTS header (no CRC) for one raw frame of `payload_len` bytes.
    ///
    /// Fails if the config cannot be expressed in ADTS (object types beyond AAC-LTP, an
    /// explicit sampling frequency, channels described by a PCE) or if the frame does not
    /// fit the 13-bit length field.
    pub fn adts_header(&self, payload_len: usize) -> Result<[u8; ADTS_HEADER_LEN], ContainerError> {
        const WHAT: &str = "ADTS header";
        if !(1..=4).contains(&self.object_type) {
            return Err(ContainerError::Unsupported {
                what: WHAT,
                detail: format!("audio object type {}", self.object_type),
            });
        }
        if usize::from(self.sampling_frequency_index) >= SAMPLE_RATES.len() {
            return Err(ContainerError::Unsupported {
                what: WHAT,
                detail: format!("sample rate {} Hz outside the table", self.sample_rate),
            });
        }
        if !(1..=7).contains(&self.channel_config) {
            return Err(ContainerError::Unsupported {
                what: WHAT,
                detail: format!("channel configuration {}", self.channel_config),
            });
        }
        let frame_len = payload_len
            .checked_add(ADTS_HEADER_LEN)
            .filter(|&len| len <= ADTS_MAX_FRAME_LEN)
            .ok_or(ContainerError::TooLong {
                what: "ADTS frame payload",
                len: payload_len,
                max: ADTS_MAX_FRAME_LEN - ADTS_HEADER_LEN,
            })?;
        let profile = self.object_type - 1;
        let sf = self.sampling_frequency_index;
        let ch = self.channel_config;
        // Checked above: fits in 13 bits.
        let len = frame_len as u16;
        Ok([
            0xFF,
            // syncword low bits, MPEG-4, layer 0, protection_absent.
            0xF1,
            (profile << 6) | (sf << 2) | (ch >> 2),
            ((ch & 0x03) << 6) | ((len >> 11) as u8),
            ((len >> 3) & 0xFF) as u8,
            (((len & 0x07) as u8) << 5) | 0x1F,
            // buffer fullness 0x7FF (variable bitrate), one raw data block.
            0xFC,
        ])
    }

    /// Duration of `frames` frames in 90 kHz ticks, rounded down, computed exactly.
    ///
    /// Timestamp frame `k` of a run as `start + frames_to_90k(k)`: one frame is a
    /// fraction of a tick at most rates (2089.79… at 44.1 kHz), and adding a rounded
    /// per-frame duration would drift by a tick every few frames.
    pub fn frames_to_90k(&self, frames: u64) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        let ticks = u128::from(frames) * u128::from(self.samples_per_frame) * 90_000
            / u128::from(self.sample_rate);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// Duration of one frame in 90 kHz ticks, as a float, for display and estimates.
    pub fn frame_duration_90k(&self) -> f64 {
        f64::from(self.samples_per_frame) * 90_000.0 / f64::from(self.sample_rate.max(1))
    }
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, ContainerError> {
    let aot = r.bits(5)? as u8;
    if aot == 31 {
        Ok(32 + r.bits(6)? as u8)
    } else {
        Ok(aot)
    }
}

fn read_sample_rate(r: &mut BitReader<'_>) -> Result<(u8, u32), ContainerError> {
    const WHAT: &str = "AudioSpecificConfig";
    let index = r.bits(4)? as u8;
    let rate = if index == EXPLICIT_FREQUENCY {
        r.bits(24)?
    } else {
        *SAMPLE_RATES.get(usize::from(index)).ok_or_else(|| {
            ContainerError::malformed(WHAT, format!("sampling frequency index {index}"))
        })?
    };
    if rate == 0 {
        return Err(ContainerError::malformed(WHAT, "sample rate 0"));
    }
    Ok((index, rate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_aac_lc() {
        // What ffmpeg's aac encoder writes for 44.1 kHz stereo.
        let config = AacConfig::parse(&[0x12, 0x10]).expect("valid");
        assert_eq!(
            config,
            AacConfig {
                object_type: 2,
                sampling_frequency_index: 4,
                sample_rate: 44_100,
                channel_config: 2,
                samples_per_frame: 1024,
                extension_object_type: None,
            }
        );
        assert_eq!(config.codec_string(), "mp4a.40.2");
        // 48 kHz mono, 960-sample frames.
        let config = AacConfig::parse(&[0x11, 0x8C]).expect("valid");
        assert_eq!((config.sample_rate, config.channel_config), (48_000, 1));
        assert_eq!(config.samples_per_frame, 960);
    }

    #[test]
    fn parses_explicit_he_aac() {
        // AOT 5, core 22.05 kHz, stereo, SBR output 44.1 kHz, core AOT 2 (AAC-LC).
        let config = AacConfig::parse(&[0x2B, 0x92, 0x08, 0x00]).expect("valid");
        assert_eq!(config.extension_object_type, Some(5));
        assert_eq!(config.object_type, 2);
        assert_eq!(config.sample_rate, 22_050);
        assert_eq!(config.sampling_frequency_index, 7);
        assert_eq!(config.codec_string(), "mp4a.40.5");
        assert_eq!(config.adts_header(10).expect("valid")[2] >> 6, 1);
    }

    #[test]
    fn parses_escaped_object_type_and_explicit_rate() {
        // AOT 31 + 6 bits (= 32 + 10 = 42), index 15, rate 0x00AC44 (44100), 2 channels.
        let mut w: u64 = 0;
        let mut n = 0;
        for (v, bits) in [(31u64, 5), (10, 6), (15, 4), (44_100, 24), (2, 4)] {
            w = (w << bits) | v;
            n += bits;
        }
        w <<= 64 - n;
        let bytes = w.to_be_bytes();
        let config = AacConfig::parse(&bytes[..6]).expect("valid");
        assert_eq!(config.object_type, 42);
        assert_eq!(config.sample_rate, 44_100);
        assert_eq!(config.sampling_frequency_index, 15);
        assert!(config.adts_header(1).is_err());
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(matches!(
            AacConfig::parse(&[]),
            Err(ContainerError::Truncated { .. })
        ));
        assert!(matches!(
            AacConfig::parse(&[0x12]),
            Err(ContainerError::Truncated { .. })
        ));
        // Object type 0.
        assert!(matches!(
            AacConfig::parse(&[0x02, 0x10]),
            Err(ContainerError::Malformed { .. })
        ));
        // Reserved sampling frequency index 13.
        assert!(matches!(
            AacConfig::parse(&[0x16, 0x90]),
            Err(ContainerError::Malformed { .. })
        ));
    }

    #[test]
    fn adts_header_matches_ffmpeg() {
        // ffmpeg 5.1 -c:a aac -ar 44100 -ac 2 -f adts: first frame, 332 bytes with header.
        let config = AacConfig::parse(&[0x12, 0x10]).expect("valid");
        assert_eq!(
            config.adts_header(332 - 7).expect("fits"),
            [0xFF, 0xF1, 0x50, 0x80, 0x29, 0x9F, 0xFC]
        );
        assert!(config.adts_header(8184).is_ok());
        assert!(matches!(
            config.adts_header(8185),
            Err(ContainerError::TooLong {
                len: 8185,
                max: 8184,
                ..
            })
        ));
        let pce = AacConfig {
            channel_config: 0,
            ..config
        };
        assert!(matches!(
            pce.adts_header(10),
            Err(ContainerError::Unsupported { .. })
        ));
    }

    #[test]
    fn frame_durations_do_not_drift() {
        let config = AacConfig::parse(&[0x12, 0x10]).expect("valid");
        assert_eq!(config.frames_to_90k(1), 2089);
        // 44100 frames of 1024 samples at 44.1 kHz are exactly 1024 seconds.
        assert_eq!(config.frames_to_90k(44_100), 1024 * 90_000);
        assert!((config.frame_duration_90k() - 2_089.795_918).abs() < 1e-3);
        let config = AacConfig::parse(&[0x11, 0x90]).expect("valid 48 kHz");
        assert_eq!(config.frames_to_90k(1), 1920);
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(config) = AacConfig::parse(&bytes) {
                let _ = config.adts_header(100);
                let _ = config.codec_string();
                let _ = config.frames_to_90k(u64::MAX);
            }
        }

        /// The header decodes back to the fields it was made from.
        #[test]
        fn adts_header_round_trips(
            object_type in 1u8..=4, sf in 0u8..13, ch in 1u8..=7, len in 0usize..=8184,
        ) {
            let config = AacConfig {
                object_type,
                sampling_frequency_index: sf,
                sample_rate: SAMPLE_RATES[usize::from(sf)],
                channel_config: ch,
                samples_per_frame: 1024,
                extension_object_type: None,
            };
            let h = config.adts_header(len).expect("fits");
            prop_assert_eq!(h[0], 0xFF);
            prop_assert_eq!(h[1], 0xF1);
            prop_assert_eq!((h[2] >> 6) + 1, object_type);
            prop_assert_eq!((h[2] >> 2) & 0x0F, sf);
            prop_assert_eq!(((h[2] & 1) << 2) | (h[3] >> 6), ch);
            let frame_len = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3)
                | usize::from(h[5] >> 5);
            prop_assert_eq!(frame_len, len + 7);
            prop_assert_eq!(((u16::from(h[5] & 0x1F)) << 6) | u16::from(h[6] >> 2), 0x7FF);
        }
    }
}
