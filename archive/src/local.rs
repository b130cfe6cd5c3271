//! The local backend: objects are files under a root directory, at their rendered key.
//!
//! Every operation runs on tokio's blocking pool (file I/O never runs on the executor).
//! Writes are atomic: the bytes go to a temporary file in the object's own directory
//! (`.{name}.{random}.tmp`, a name no key renders, so a listing skips it), are synced, and
//! are then renamed into place ([`Local::put`]) or hard-linked there ([`Local::put_if_absent`]:
//! `link` fails with `EEXIST` when the name is taken, so exactly one of several racing
//! writers wins and the file holds its bytes, whole); the directory is synced after.
//! Keys render only relative paths of [`std::path::Component::Normal`] parts (`key`'s
//! property test), so no key reaches outside the root.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::key::{ArchiveKey, ArchivePrefix};
use crate::page::{ListCursor, Page, PageBuilder};
use crate::ArchiveError;

/// A directory holding the archive.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    /// The directory; every object lies under it.
    root: Arc<PathBuf>,
}

impl Local {
    /// The archive in `root`, created if missing.
    pub(crate) fn open(root: PathBuf) -> Result<Self, ArchiveError> {
        fs::create_dir_all(&root).map_err(|e| ArchiveError::Config {
            reason: format!("archive directory {}: {e}", root.display()),
        })?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    /// The root directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &impl ToString) -> PathBuf {
        self.root.join(key.to_string())
    }

    /// Runs `f` on the blocking pool; its I/O error is classified against `what`.
    async fn blocking<T: Send + 'static>(
        what: String,
        f: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
    ) -> Result<T, ArchiveError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ArchiveError::Unavailable {
                key: what,
                reason: format!("the file task failed: {e}"),
            })?
    }

    pub(crate) async fn put(&self, key: &ArchiveKey, bytes: Bytes) -> Result<(), ArchiveError> {
        let path = self.path(key);
        let name = key.to_string();
        Self::blocking(name.clone(), move || {
            write_new(&path, &bytes, Place::Replace).map_err(|e| ArchiveError::from_io(name, &e))
        })
        .await
    }

    pub(crate) async fn put_if_absent(
        &self,
        key: &ArchiveKey,
        bytes: Bytes,
    ) -> Result<(), ArchiveError> {
        let path = self.path(key);
        let name = key.to_string();
        Self::blocking(name.clone(), move || {
            write_new(&path, &bytes, Place::IfAbsent).map_err(|e| ArchiveError::from_io(name, &e))
        })
        .await
    }

    pub(crate) async fn get(&self, key: &ArchiveKey, limit: u64) -> Result<Bytes, ArchiveError> {
        let path = self.path(key);
        let name = key.to_string();
        Self::blocking(name.clone(), move || {
            let io = |e: io::Error| ArchiveError::from_io(&name, &e);
            let file = fs::File::open(&path).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            if size > limit {
                return Err(ArchiveError::TooLarge {
                    key: name.clone(),
                    limit,
                });
            }
            // The size read above bounds the buffer; `take` bounds the read should the file
            // have grown since (objects are immutable, but the directory is not ours alone).
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.take(limit.saturating_add(1))
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if bytes.len() as u64 > limit {
                return Err(ArchiveError::TooLarge {
                    key: name.clone(),
                    limit,
                });
            }
            Ok(Bytes::from(bytes))
        })
        .await
    }

    pub(crate) async fn get_range(
        &self,
        key: &ArchiveKey,
        range: Range<u64>,
    ) -> Result<Bytes, ArchiveError> {
        let path = self.path(key);
        let name = key.to_string();
        Self::blocking(name.clone(), move || {
            let io = |e: io::Error| ArchiveError::from_io(&name, &e);
            let mut file = fs::File::open(&path).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            check_range(&name, &range, size)?;
            file.seek(SeekFrom::Start(range.start)).map_err(io)?;
            let len = range.end - range.start;
            let mut bytes = vec![0; usize::try_from(len).unwrap_or(0)];
            file.read_exact(&mut bytes).map_err(io)?;
            Ok(Bytes::from(bytes))
        })
        .await
    }

    pub(crate) async fn head(&self, key: &ArchiveKey) -> Result<u64, ArchiveError> {
        let path = self.path(key);
        let name = key.to_string();
        Self::blocking(name.clone(), move || {
            let meta = fs::metadata(&path).map_err(|e| ArchiveError::from_io(&name, &e))?;
            if !meta.is_file() {
                return Err(ArchiveError::NotFound { key: name });
            }
            Ok(meta.len())
        })
        .await
    }

    pub(crate) async fn list(
        &self,
        prefix: &ArchivePrefix,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<Page, ArchiveError> {
        let root = Arc::clone(&self.root);
        let folder = prefix.to_string();
        let after = after.map(|c| c.as_str().to_owned());
        Self::blocking(folder.clone(), move || {
            let mut page = PageBuilder::new(limit);
            let dir = root.join(&folder);
            match walk(&dir, &folder, after.as_deref(), &mut page) {
                Ok(_) => Ok(page.finish()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(page.finish()),
                Err(e) => Err(ArchiveError::from_io(folder, &e)),
            }
        })
        .await
    }

    pub(crate) async fn delete_prefix(&self, prefix: &ArchivePrefix) -> Result<u64, ArchiveError> {
        let dir = self.root.join(prefix.to_string());
        let name = prefix.to_string();
        Self::blocking(name.clone(), move || {
            let io = |e: io::Error| ArchiveError::from_io(&name, &e);
            let count = match count_files(&dir) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(io(e)),
            };
            match fs::remove_dir_all(&dir) {
                Ok(()) => Ok(count),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(io(e)),
            }
        })
        .await
    }
}

/// Whether `range` lies inside an object of `size` bytes and is not empty.
pub(crate) fn check_range(key: &str, range: &Range<u64>, size: u64) -> Result<(), ArchiveError> {
    if range.start >= range.end || range.end > size {
        return Err(ArchiveError::Refused {
            key: key.to_owned(),
            reason: format!(
                "range {}..{} is empty or beyond the object's {size} bytes",
                range.start, range.end
            ),
        });
    }
    Ok(())
}

/// How a new file takes its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Rename over whatever is there.
    Replace,
    /// Link, failing with `AlreadyExists` if the name is taken.
    IfAbsent,
}

/// Writes `bytes` to `path` through a synced temporary file beside it.
fn write_new(path: &Path, bytes: &[u8], place: Place) -> io::Result<()> {
    let dir = path.parent().ok_or(io::ErrorKind::InvalidInput)?;
    let name = path.file_name().ok_or(io::ErrorKind::InvalidInput)?;
    fs::create_dir_all(dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{:016x}.tmp", rand::random::<u64>()));
    let tmp = dir.join(tmp_name);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_data()
        });
    let placed = written.and_then(|()| match place {
        Place::Replace => fs::rename(&tmp, path),
        Place::IfAbsent => fs::hard_link(&tmp, path),
    });
    if place == Place::IfAbsent || placed.is_err() {
        // Linked (the name now holds the bytes) or failed: the temporary name goes either way.
        let _ = fs::remove_file(&tmp);
    }
    placed?;
    fs::File::open(dir)?.sync_all()
}

/// Walks `dir` (the folder `key` of the layout) in the byte order of rendered keys,
/// offering files after `after` to `page`. `false`: the page is full.
fn walk(dir: &Path, key: &str, after: Option<&str>, page: &mut PageBuilder) -> io::Result<bool> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // Not UTF-8: no key of ours.
        };
        if name.starts_with('.') {
            continue; // A temporary file (or one that is not ours).
        }
        let is_dir = entry.file_type()?.is_dir();
        // Keys order as strings: a directory's keys continue with `/`, so `a-b` (a file)
        // lists before `a/…` (in a directory `a`), which lists before `a.ts`.
        let order = if is_dir { format!("{name}/") } else { name };
        entries.push((order, is_dir, entry.path()));
    }
    entries.sort();
    for (order, is_dir, path) in entries {
        let full = format!("{key}/{order}");
        if is_dir {
            if after.is_some_and(|a| a > full.as_str() && !a.starts_with(&full)) {
                continue; // Everything in it is at or before the cursor.
            }
            if !walk(&path, full.trim_end_matches('/'), after, page)? {
                return Ok(false);
            }
        } else {
            if after.is_some_and(|a| full.as_str() <= a) {
                continue;
            }
            let size = fs::metadata(&path)?.len();
            if !page.offer(&full, size) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// How many files `dir` holds, at any depth.
fn count_files(dir: &Path) -> io::Result<u64> {
    let mut n = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            n += count_files(&entry.path())?;
        } else {
            n += 1;
        }
    }
    Ok(n)
}
