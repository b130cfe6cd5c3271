//! What a previous run left on disk, offered again when the recorder starts: the spool
//! itself lives in memory, its files on disk, so a node that stopped (or was killed)
//! before the archive took them archives them now.

use std::fs;
use std::path::{Path, PathBuf};

use archive::{ArchiveKey, RecordingFile};

use super::queue::Write;
use super::spool::Spool;
use crate::recording::recording_dirs;

/// Offers every file of the archive's layout under the recordings directory `root`:
/// per recording its media and statements, then its playlists, then `recording.json`.
/// Everything is offered create-only here: a copy already in the archive may be newer
/// (written by a node that recorded longer).
pub(crate) fn rescan(root: &Path, spool: &Spool) {
    for (stream, id, dir) in recording_dirs(root) {
        let mut files: Vec<(u8, ArchiveKey, PathBuf)> = Vec::new();
        let mut look = |path: PathBuf, relative: String| {
            let Ok(key) = ArchiveKey::parse(&format!("recordings/{stream}/{id}/{relative}")) else {
                return;
            };
            let order = match &key {
                ArchiveKey::Recording { file, .. } => match file {
                    RecordingFile::Statement(..)
                    | RecordingFile::Media(..)
                    | RecordingFile::Thumbnail
                    | RecordingFile::ThumbnailStatement => 0,
                    RecordingFile::MediaPlaylist(..) => 1,
                    RecordingFile::Master => 2,
                    RecordingFile::Info => 3,
                },
                _ => return,
            };
            files.push((order, key, path));
        };
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if path.is_dir() {
                let Ok(inner) = fs::read_dir(&path) else {
                    continue;
                };
                for file in inner.filter_map(Result::ok) {
                    let file_name = file.file_name().to_string_lossy().into_owned();
                    look(file.path(), format!("{name}/{file_name}"));
                }
            } else {
                look(path, name);
            }
        }
        files.sort_by_key(|(order, key, _)| (*order, key.to_string()));
        for (order, key, path) in files {
            let remove_after = order == 0 && !is_init(&key);
            spool.offer(&stream, key, &path, Write::Once, remove_after);
        }
    }
}

/// An init segment or its statement: kept on disk, the recorder looks for it.
pub(crate) fn is_init(key: &ArchiveKey) -> bool {
    matches!(
        key,
        ArchiveKey::Recording {
            file: RecordingFile::Media(_, domain::paths::MediaFile::Init)
                | RecordingFile::Statement(_, domain::paths::MediaFile::Init),
            ..
        }
    )
}
