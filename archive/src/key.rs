//! The archive's key layout, pure: what an object is called in the store, built only from
//! validated parts and parsed back by the same rules.
//!
//! A recording's files keep the layout of its `/vod/` URLs under `recordings/`:
//!
//! ```text
//! recordings/{stream}/{recording}/master.m3u8
//! recordings/{stream}/{recording}/recording.json
//! recordings/{stream}/{recording}/thumbnail.jpg                  (and thumbnail.jpg.sig)
//! recordings/{stream}/{recording}/{rendition}/index.m3u8
//! recordings/{stream}/{recording}/{rendition}/{media file}        (n.ts, init.mp4, n.m4s)
//! recordings/{stream}/{recording}/{rendition}/{media file}.sig
//! probes/{nonce}                                                  (see Archive::probe_conditional_create)
//! listing/{!recording}/{stream}/recording.json                    (a finished recording, listed)
//! ```
//!
//! `listing/` holds one small object per finished recording (a copy of its
//! `recording.json`), named by the recording id's bitwise complement in 16 hex digits: ids
//! order as their sessions' starts, so the store's key order lists the newest recording
//! first, and a listing of the newest few reads only those objects, however many segments
//! the archive holds.
//!
//! Every part is a `domain` name, a [`SessionId`] or a [`MediaFile`], none of which can hold
//! `/`, `..` or a leading `-`; so a rendered key is relative, has no empty or dot segment,
//! and stays under the archive's root whatever the parts were. Media file names are parsed
//! by [`PublicPath::parse`], the URL layout's one parser, so a key and its `/vod/` URL agree.

use std::fmt;

use domain::paths::{MediaFile, PublicPath, THUMBNAIL_FILE, THUMBNAIL_STATEMENT_FILE};
use domain::{RenditionName, SessionId, StreamName};

use crate::ArchiveError;

/// The top folder of recordings.
const RECORDINGS: &str = "recordings";
/// The top folder of [`ArchiveKey::Probe`] objects.
const PROBES: &str = "probes";
/// The top folder of [`ArchiveKey::Listed`] objects.
const LISTING: &str = "listing";
/// A recording's master playlist.
const MASTER_FILE: &str = "master.m3u8";
/// A recording's facts (`recording.json`).
const INFO_FILE: &str = "recording.json";
/// A rendition's media playlist.
const MEDIA_FILE: &str = "index.m3u8";
/// The suffix of a media file's signed statement.
const STATEMENT_SUFFIX: &str = ".sig";

/// The longest key this module renders (for bounds elsewhere): `recordings/` + a 64-byte
/// stream + `/` + 16 hex digits + `/` + a 64-byte rendition + `/` + the longest media file
/// (`{u64}.m4s.sig`).
pub const MAX_KEY_LEN: usize = 11 + 64 + 1 + 16 + 1 + 64 + 1 + 28;

/// One file of a recording, relative to the recording's folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordingFile {
    /// `master.m3u8`
    Master,
    /// `recording.json`
    Info,
    /// `{rendition}/index.m3u8`
    MediaPlaylist(RenditionName),
    /// `{rendition}/{file}`: a segment (`n.ts`, `n.m4s`) or an `init.mp4`. Recordings hold
    /// no parts, so [`MediaFile::Part`] is refused.
    Media(RenditionName, MediaFile),
    /// `{rendition}/{file}.sig`: the signed statement of a media file.
    Statement(RenditionName, MediaFile),
    /// `thumbnail.jpg`: the recording's thumbnail.
    Thumbnail,
    /// `thumbnail.jpg.sig`: its signed statement.
    ThumbnailStatement,
}

/// The name of one object in the archive. The only way to name one: there is no
/// constructor from a raw string other than [`ArchiveKey::parse`], which applies the same
/// rules as the constructors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArchiveKey {
    /// A file of a recording.
    Recording {
        /// The stream recorded.
        stream: StreamName,
        /// The recording (the publish session it recorded).
        recording: SessionId,
        /// Which file.
        file: RecordingFile,
    },
    /// A throwaway object that checks what the store supports.
    Probe(u64),
    /// The listing entry of a finished recording (a copy of its `recording.json`).
    Listed {
        /// The stream recorded.
        stream: StreamName,
        /// The recording.
        recording: SessionId,
    },
}

impl ArchiveKey {
    /// A file of recording `recording` of `stream`. Refuses a part
    /// ([`MediaFile::Part`]): recordings keep whole segments only.
    pub fn recording(
        stream: &StreamName,
        recording: SessionId,
        file: RecordingFile,
    ) -> Result<Self, ArchiveError> {
        if let RecordingFile::Media(_, MediaFile::Part(..))
        | RecordingFile::Statement(_, MediaFile::Part(..)) = file
        {
            return Err(ArchiveError::InvalidKey {
                reason: "recordings hold no parts",
            });
        }
        Ok(Self::Recording {
            stream: stream.clone(),
            recording,
            file,
        })
    }

    /// Parses a rendered key (as a store lists it). Anything [`Display`](fmt::Display)
    /// would not have rendered is refused.
    pub fn parse(key: &str) -> Result<Self, ArchiveError> {
        let parsed = Self::parse_loosely(key)?;
        // `01.ts` would parse as `1.ts`: a name the layout never writes, refused so that one
        // key names one object.
        if parsed.to_string() != key {
            return Err(ArchiveError::InvalidKey {
                reason: "not a key of the archive's layout",
            });
        }
        Ok(parsed)
    }

    fn parse_loosely(key: &str) -> Result<Self, ArchiveError> {
        const NOT_OURS: ArchiveError = ArchiveError::InvalidKey {
            reason: "not a key of the archive's layout",
        };
        if key.len() > MAX_KEY_LEN {
            return Err(NOT_OURS);
        }
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            [PROBES, nonce] => parse_nonce(nonce).map(Self::Probe).ok_or(NOT_OURS),
            [LISTING, inverted, stream, INFO_FILE] => Ok(Self::Listed {
                stream: StreamName::new(*stream).map_err(|_| NOT_OURS)?,
                recording: SessionId(!parse_nonce(inverted).ok_or(NOT_OURS)?),
            }),
            [RECORDINGS, stream, recording, INFO_FILE] => Ok(Self::Recording {
                stream: StreamName::new(*stream).map_err(|_| NOT_OURS)?,
                recording: recording.parse().map_err(|_| NOT_OURS)?,
                file: RecordingFile::Info,
            }),
            [RECORDINGS, stream, recording, rest @ ..] if !rest.is_empty() && rest.len() <= 2 => {
                // The rest is exactly a /vod/ URL's tail: let the URL parser judge it.
                let url = format!("/vod/{stream}/{recording}/{}", rest.join("/"));
                let (stream, recording, file) = match PublicPath::parse(&url).ok_or(NOT_OURS)? {
                    PublicPath::VodMaster(s, id) => (s, id, RecordingFile::Master),
                    PublicPath::VodMedia(s, id, r) => (s, id, RecordingFile::MediaPlaylist(r)),
                    PublicPath::VodSegment(s, id, r, n) => {
                        (s, id, RecordingFile::Media(r, MediaFile::Ts(n)))
                    }
                    PublicPath::VodInit(s, id, r) => {
                        (s, id, RecordingFile::Media(r, MediaFile::Init))
                    }
                    PublicPath::VodFragment(s, id, r, n) => {
                        (s, id, RecordingFile::Media(r, MediaFile::Fragment(n)))
                    }
                    PublicPath::VodSignature(s, id, r, m) => {
                        (s, id, RecordingFile::Statement(r, m))
                    }
                    PublicPath::VodThumbnail(s, id) => (s, id, RecordingFile::Thumbnail),
                    PublicPath::VodThumbnailSignature(s, id) => {
                        (s, id, RecordingFile::ThumbnailStatement)
                    }
                    _ => return Err(NOT_OURS),
                };
                Ok(Self::Recording {
                    stream,
                    recording,
                    file,
                })
            }
            _ => Err(NOT_OURS),
        }
    }
}

/// A probe's nonce: exactly 16 lowercase hex digits, as rendered.
fn parse_nonce(s: &str) -> Option<u64> {
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (s.len() == 16 && s.bytes().all(lower_hex))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

impl fmt::Display for ArchiveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Probe(nonce) => write!(f, "{PROBES}/{nonce:016x}"),
            Self::Listed { stream, recording } => {
                write!(f, "{LISTING}/{:016x}/{stream}/{INFO_FILE}", !recording.0)
            }
            Self::Recording {
                stream,
                recording,
                file,
            } => {
                write!(f, "{RECORDINGS}/{stream}/{recording}/")?;
                match file {
                    RecordingFile::Master => f.write_str(MASTER_FILE),
                    RecordingFile::Info => f.write_str(INFO_FILE),
                    RecordingFile::MediaPlaylist(r) => write!(f, "{r}/{MEDIA_FILE}"),
                    RecordingFile::Media(r, m) => write!(f, "{r}/{m}"),
                    RecordingFile::Statement(r, m) => write!(f, "{r}/{m}{STATEMENT_SUFFIX}"),
                    RecordingFile::Thumbnail => f.write_str(THUMBNAIL_FILE),
                    RecordingFile::ThumbnailStatement => f.write_str(THUMBNAIL_STATEMENT_FILE),
                }
            }
        }
    }
}

/// A folder of the layout: what a listing or a deletion covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArchivePrefix {
    /// Every recording.
    Recordings,
    /// Every recording of a stream.
    Stream(StreamName),
    /// One recording.
    Recording(StreamName, SessionId),
    /// One rendition of one recording.
    Rendition(StreamName, SessionId, RenditionName),
    /// The probes.
    Probes,
    /// Every listing entry ([`ArchiveKey::Listed`]), newest recording first.
    Listing,
    /// The listing entry of one recording.
    Listed(StreamName, SessionId),
}

impl ArchivePrefix {
    /// Whether `key` lies under this prefix.
    pub fn contains(&self, key: &ArchiveKey) -> bool {
        let folder = self.to_string();
        key.to_string()
            .strip_prefix(&folder)
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Renders the folder without a trailing `/` (`recordings/demo`); a key under it starts
/// with the folder and a `/`.
impl fmt::Display for ArchivePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Recordings => f.write_str(RECORDINGS),
            Self::Probes => f.write_str(PROBES),
            Self::Listing => f.write_str(LISTING),
            Self::Listed(s, id) => write!(f, "{LISTING}/{:016x}/{s}", !id.0),
            Self::Stream(s) => write!(f, "{RECORDINGS}/{s}"),
            Self::Recording(s, id) => write!(f, "{RECORDINGS}/{s}/{id}"),
            Self::Rendition(s, id, r) => write!(f, "{RECORDINGS}/{s}/{id}/{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Component, Path};

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}"
    }

    fn media() -> impl Strategy<Value = MediaFile> {
        prop_oneof![
            any::<u64>().prop_map(MediaFile::Ts),
            Just(MediaFile::Init),
            any::<u64>().prop_map(MediaFile::Fragment),
        ]
    }

    fn file() -> impl Strategy<Value = RecordingFile> {
        let r = || name().prop_map(|n| RenditionName::new(n).expect("valid"));
        prop_oneof![
            Just(RecordingFile::Master),
            Just(RecordingFile::Info),
            r().prop_map(RecordingFile::MediaPlaylist),
            (r(), media()).prop_map(|(r, m)| RecordingFile::Media(r, m)),
            (r(), media()).prop_map(|(r, m)| RecordingFile::Statement(r, m)),
        ]
    }

    fn key() -> impl Strategy<Value = ArchiveKey> {
        prop_oneof![
            any::<u64>().prop_map(ArchiveKey::Probe),
            (name(), any::<u64>()).prop_map(|(s, id)| ArchiveKey::Listed {
                stream: StreamName::new(s).expect("valid"),
                recording: SessionId(id),
            }),
            (name(), any::<u64>(), file()).prop_map(|(s, id, file)| {
                let stream = StreamName::new(s).expect("valid");
                ArchiveKey::recording(&stream, SessionId(id), file).expect("no parts")
            }),
        ]
    }

    #[test]
    fn renders_the_vod_layout() {
        let s = StreamName::new("demo").expect("valid");
        let r = RenditionName::new("720p").expect("valid");
        let key = |file| ArchiveKey::recording(&s, SessionId(7), file).expect("valid");
        assert_eq!(
            key(RecordingFile::Master).to_string(),
            "recordings/demo/0000000000000007/master.m3u8"
        );
        assert_eq!(
            key(RecordingFile::Statement(r.clone(), MediaFile::Ts(12))).to_string(),
            "recordings/demo/0000000000000007/720p/12.ts.sig"
        );
        assert_eq!(
            ArchivePrefix::Rendition(s.clone(), SessionId(7), r).to_string(),
            "recordings/demo/0000000000000007/720p"
        );
        assert_eq!(
            ArchiveKey::Probe(255).to_string(),
            "probes/00000000000000ff"
        );
        let listed = ArchiveKey::Listed {
            stream: s.clone(),
            recording: SessionId(7),
        };
        assert_eq!(
            listed.to_string(),
            "listing/fffffffffffffff8/demo/recording.json"
        );
        assert!(ArchivePrefix::Listed(s.clone(), SessionId(7)).contains(&listed));
        assert!(ArchivePrefix::Listing.contains(&listed));
        // Newer recordings (larger ids) list first in key order.
        let newer = ArchiveKey::Listed {
            stream: s,
            recording: SessionId(8),
        };
        assert!(newer.to_string() < listed.to_string());
    }

    #[test]
    fn refuses_parts_and_foreign_keys() {
        let s = StreamName::new("demo").expect("valid");
        let r = RenditionName::new("src").expect("valid");
        assert!(ArchiveKey::recording(
            &s,
            SessionId(1),
            RecordingFile::Media(r, MediaFile::Part(1, 2))
        )
        .is_err());
        for bad in [
            "",
            "/recordings/demo/0000000000000007/master.m3u8",
            "recordings/demo/0000000000000007/master.m3u8/",
            "recordings//0000000000000007/master.m3u8",
            "recordings/../0000000000000007/master.m3u8",
            "recordings/demo/0000000000000007/../master.m3u8",
            "recordings/demo/7/master.m3u8",
            "recordings/demo/0000000000000007/src/1.0.m4s",
            "recordings/demo/0000000000000007/src/1.0.m4s.sig",
            "recordings/demo/0000000000000007/src/journal",
            "recordings/demo/0000000000000007/private",
            "recordings/demo/0000000000000007/src/x/1.ts",
            "recordings/demo/0000000000000007",
            "probes/FF",
            "probes/00000000000000ff/x",
            "other/demo",
        ] {
            assert!(ArchiveKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_prefix_holds_only_its_own_folder() {
        let a = StreamName::new("a").expect("valid");
        let ab = StreamName::new("ab").expect("valid");
        let key = ArchiveKey::recording(&ab, SessionId(1), RecordingFile::Info).expect("valid");
        assert!(!ArchivePrefix::Stream(a).contains(&key));
        assert!(ArchivePrefix::Stream(ab).contains(&key));
        assert!(ArchivePrefix::Recordings.contains(&key));
        assert!(!ArchivePrefix::Probes.contains(&key));
    }

    proptest! {
        #[test]
        fn keys_round_trip_through_their_rendering(key in key()) {
            let text = key.to_string();
            prop_assert!(text.len() <= MAX_KEY_LEN, "{text}");
            prop_assert_eq!(ArchiveKey::parse(&text).expect("parses"), key);
        }

        #[test]
        fn any_key_stays_under_the_root(key in key()) {
            let text = key.to_string();
            let path = Path::new("/archive").join(&text);
            prop_assert!(path.starts_with("/archive"));
            prop_assert!(Path::new(&text)
                .components()
                .all(|c| matches!(c, Component::Normal(_))), "{text}");
            prop_assert!(text.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
        }

        #[test]
        fn whatever_parses_renders_back_the_same(text in "[a-z0-9./_-]{0,80}") {
            if let Ok(key) = ArchiveKey::parse(&text) {
                prop_assert_eq!(key.to_string(), text);
            }
        }
    }
}
