//! What a WHIP offer asks for, read before str0m parses it in full: bounded (size, lines,
//! media sections), so that an offer too big or too odd is refused with a 400 before any
//! session exists, and so that an offer without H.264 is told so (422) rather than
//! answered with its video rejected. The same reading checks str0m's answer: the video
//! section must have been accepted with H.264.
//!
//! Parsed here, so fuzzed (`fuzzing::whip_offer`): it never panics, whatever the bytes.

/// Largest offer taken: a browser's offer with every codec it knows is 6 to 10 KB.
pub const MAX_OFFER_BYTES: usize = 32 * 1024;
/// Most lines taken.
const MAX_LINES: usize = 1024;
/// Most media sections (`m=` lines) taken: one video and one audio are used.
pub const MAX_MEDIA: usize = 8;

/// Why an offer is refused as malformed (400; one without H.264 is read, and refused
/// with 422 by its [`Summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferRefusal {
    /// Not an SDP session description we read, and why.
    Malformed(&'static str),
}

/// What an offer (or answer) holds that the ingest cares about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// A video section offers (or an answer keeps) H.264, packetization mode 1.
    pub h264: bool,
    /// An audio section offers (or an answer keeps) Opus.
    pub opus: bool,
    /// Media sections.
    pub media: usize,
}

/// One media section being read.
#[derive(Debug, Default)]
struct Section<'a> {
    kind: &'a str,
    rejected: bool,
    formats: Vec<&'a str>,
    h264: Vec<&'a str>,
    mode1: Vec<&'a str>,
    opus: bool,
}

impl Section<'_> {
    fn finish(&self, summary: &mut Summary) {
        if self.rejected {
            return;
        }
        if self.kind == "video"
            && self
                .h264
                .iter()
                .any(|pt| self.mode1.contains(pt) && self.formats.contains(pt))
        {
            summary.h264 = true;
        }
        if self.kind == "audio" && self.opus {
            summary.opus = true;
        }
    }
}

/// Reads an SDP offer or answer.
pub fn summarize(sdp: &[u8]) -> Result<Summary, OfferRefusal> {
    if sdp.len() > MAX_OFFER_BYTES {
        return Err(OfferRefusal::Malformed("larger than 32 KiB"));
    }
    let text = std::str::from_utf8(sdp).map_err(|_| OfferRefusal::Malformed("not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    if lines.next() != Some("v=0") {
        return Err(OfferRefusal::Malformed("does not start with v=0"));
    }
    let mut summary = Summary::default();
    let mut section: Option<Section<'_>> = None;
    for (n, line) in lines.enumerate() {
        if n >= MAX_LINES {
            return Err(OfferRefusal::Malformed("too many lines"));
        }
        if line.is_empty() {
            continue;
        }
        let Some((kind, value)) = line.split_once('=') else {
            return Err(OfferRefusal::Malformed("a line without '='"));
        };
        if kind.len() != 1 {
            return Err(OfferRefusal::Malformed(
                "a line whose type is not one letter",
            ));
        }
        match kind {
            "m" => {
                if let Some(done) = section.take() {
                    done.finish(&mut summary);
                }
                summary.media += 1;
                if summary.media > MAX_MEDIA {
                    return Err(OfferRefusal::Malformed("too many media sections"));
                }
                let mut fields = value.split(' ');
                let media_kind = fields.next().unwrap_or_default();
                let port = fields.next().unwrap_or_default();
                let _proto = fields.next();
                section = Some(Section {
                    kind: media_kind,
                    rejected: port == "0",
                    formats: fields.filter(|f| !f.is_empty()).take(64).collect(),
                    ..Section::default()
                });
            }
            "a" => {
                if let Some(current) = section.as_mut() {
                    attribute(current, value);
                }
            }
            _ => {}
        }
    }
    if let Some(done) = section.take() {
        done.finish(&mut summary);
    }
    if summary.media == 0 {
        return Err(OfferRefusal::Malformed("no media section"));
    }
    Ok(summary)
}

/// Reads the attributes of a media section that say which codecs it has.
fn attribute<'a>(section: &mut Section<'a>, value: &'a str) {
    const MAX_CODECS: usize = 64;
    if let Some(rtpmap) = value.strip_prefix("rtpmap:") {
        let Some((pt, encoding)) = rtpmap.split_once(' ') else {
            return;
        };
        let name = encoding.split('/').next().unwrap_or_default();
        if name.eq_ignore_ascii_case("H264")
            && encoding.ends_with("/90000")
            && section.h264.len() < MAX_CODECS
        {
            section.h264.push(pt);
        }
        if name.eq_ignore_ascii_case("opus") {
            section.opus = true;
        }
    } else if let Some(fmtp) = value.strip_prefix("fmtp:") {
        let Some((pt, parameters)) = fmtp.split_once(' ') else {
            return;
        };
        let mode1 = parameters.split(';').any(|p| {
            p.trim()
                .split_once('=')
                .is_some_and(|(k, v)| k.eq_ignore_ascii_case("packetization-mode") && v == "1")
        });
        if mode1 && section.mode1.len() < MAX_CODECS {
            section.mode1.push(pt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FFmpeg 9's WHIP muxer's offer, audio and video (its own text, ufrag and keys
    /// shortened).
    const FFMPEG: &str = "v=0\r\no=FFmpeg 4489045141692799359 2 IN IP4 127.0.0.1\r\ns=FFmpegPublishSession\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:36c740b1\r\na=ice-pwd:a6a2cf52cd7521748535cf92255a14ef\r\na=fingerprint:sha-256 85:06\r\na=setup:passive\r\na=mid:0\r\na=sendonly\r\na=msid:FFmpeg audio\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:442299852 cname:FFmpeg\r\nm=video 9 UDP/TLS/RTP/SAVPF 106\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:36c740b1\r\na=ice-pwd:a6a2cf52cd7521748535cf92255a14ef\r\na=setup:passive\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

    #[test]
    fn an_ffmpeg_offer_has_h264_and_opus() {
        assert_eq!(
            summarize(FFMPEG.as_bytes()),
            Ok(Summary {
                h264: true,
                opus: true,
                media: 2
            })
        );
    }

    #[test]
    fn offers_without_usable_h264_are_told_apart_from_malformed_ones() {
        let vp8 = FFMPEG.replace("H264/90000", "VP8/90000").replace(
            "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
            "",
        );
        assert_eq!(summarize(vp8.as_bytes()).map(|s| s.h264), Ok(false));
        let mode0 = FFMPEG.replace("packetization-mode=1", "packetization-mode=0");
        assert_eq!(summarize(mode0.as_bytes()).map(|s| s.h264), Ok(false));
        let rejected = FFMPEG.replace("m=video 9 ", "m=video 0 ");
        assert_eq!(summarize(rejected.as_bytes()).map(|s| s.h264), Ok(false));
        let audio_only = &FFMPEG[..FFMPEG.find("m=video").expect("video")];
        assert_eq!(
            summarize(audio_only.as_bytes()),
            Ok(Summary {
                h264: false,
                opus: true,
                media: 1
            })
        );
        for junk in [
            &b""[..],
            b"hello",
            b"v=0\r\n",
            b"v=0\r\nthis is not sdp\r\n",
            b"v=0\r\nxy=1\r\nm=video 9 RTP 96\r\n",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(summarize(junk), Err(OfferRefusal::Malformed(_))),
                "{junk:?}"
            );
        }
        let big = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_OFFER_BYTES / 5));
        assert!(matches!(
            summarize(big.as_bytes()),
            Err(OfferRefusal::Malformed(_))
        ));
        let many = format!("v=0\r\n{}", "m=audio 9 RTP 0\r\n".repeat(MAX_MEDIA + 1));
        assert!(matches!(
            summarize(many.as_bytes()),
            Err(OfferRefusal::Malformed(_))
        ));
    }
}
