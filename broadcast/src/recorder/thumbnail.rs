//! A recording's thumbnail: the first verified thumbnail of the recording's own session
//! (the session that started it, whose id the recording bears and viewers check the
//! statement against), kept as `thumbnail.jpg` with its signed statement beside it as
//! `thumbnail.jpg.sig` (written first, as every sidecar), and offered to the archive like
//! the media: once, create-only, immutable. The first rather than the last so that it is
//! written once and never replaced (the archive keeps each object as first written), and
//! so that a recording in progress has one from its first seconds.

use archive::RecordingFile;
use bytes::Bytes;
use domain::paths::{PublicPath, THUMBNAIL_FILE, THUMBNAIL_STATEMENT_FILE};
use domain::SessionId;

use super::disk::write_atomically;
use super::Recording;
use crate::archiving::Write;

impl Recording {
    /// Keeps `jpeg` (and its statement `signed`) as the recording's thumbnail if it is of
    /// the recording's session and the recording has none yet.
    pub(super) fn keep_thumbnail(&mut self, session: SessionId, jpeg: &Bytes, signed: &Bytes) {
        if session != self.id {
            return;
        }
        let path = self.dir.join(THUMBNAIL_FILE);
        if path.exists() {
            return;
        }
        let sidecar = self.dir.join(THUMBNAIL_STATEMENT_FILE);
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| write_atomically(&sidecar, signed))
            .and_then(|()| write_atomically(&path, jpeg));
        if written.is_ok() {
            self.offer(
                &sidecar,
                RecordingFile::ThumbnailStatement,
                Write::Once,
                false,
            );
            self.offer(&path, RecordingFile::Thumbnail, Write::Once, false);
        }
        self.note(written, &path);
    }

    /// Where the recording's thumbnail is served, if it has one.
    pub(super) fn thumbnail_url(&self) -> Option<String> {
        self.dir
            .join(THUMBNAIL_FILE)
            .exists()
            .then(|| PublicPath::VodThumbnail(self.stream.clone(), self.id).to_string())
    }
}
