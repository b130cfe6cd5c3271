//! The master playlist: one variant per rendition, with what a player chooses by.

use m3u8_rs::{MasterPlaylist, Resolution, VariantStream};

use super::write_to_string;
use crate::segment::RenditionInfo;

/// A variant line of the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// What the rendition is.
    pub info: RenditionInfo,
    /// Measured peak bitrate (bit/s), audio included.
    pub peak_bps: u64,
    /// Measured average bitrate (bit/s), audio included.
    pub average_bps: u64,
}

/// Renders the master playlist: one variant per rendition, in the order given.
pub fn render_master(variants: &[Variant]) -> String {
    let playlist = MasterPlaylist {
        version: Some(3),
        independent_segments: true,
        variants: variants
            .iter()
            .map(|v| VariantStream {
                uri: format!("{}/index.m3u8", v.info.name),
                bandwidth: v.peak_bps.max(1),
                average_bandwidth: Some(v.average_bps.max(1)),
                codecs: Some(v.info.codecs.to_string()),
                resolution: Some(Resolution {
                    width: u64::from(v.info.width),
                    height: u64::from(v.info.height),
                }),
                frame_rate: Some((v.info.frame_rate * 1000.0).round() / 1000.0),
                ..VariantStream::default()
            })
            .collect(),
        ..MasterPlaylist::default()
    };
    write_to_string(|w| playlist.write_to(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RenditionName;

    #[test]
    fn master_lists_every_variant_with_its_attributes() {
        let info = RenditionInfo {
            name: RenditionName::new("720p").expect("valid"),
            width: 1280,
            height: 720,
            frame_rate: 29.97002997,
            codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
            init: None,
            part_target_us: None,
        };
        let text = render_master(&[Variant {
            info,
            peak_bps: 3_200_000,
            average_bps: 2_900_000,
        }]);
        for needle in [
            "BANDWIDTH=3200000",
            "AVERAGE-BANDWIDTH=2900000",
            "RESOLUTION=1280x720",
            "FRAME-RATE=29.97",
            "CODECS=\"avc1.64001f,mp4a.40.2\"",
            "720p/index.m3u8",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
    }
}
