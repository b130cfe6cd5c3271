//! Writing files so that a crash leaves each whole or absent.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it into place and
/// syncs the directory: after a crash the file is either whole or absent.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_data()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        // A partial file left behind on a full disk would take the room the playlists
        // and recording.json still need to finish the recording.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent)
}

/// Syncs a directory, so that the names created or renamed in it survive a crash.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
