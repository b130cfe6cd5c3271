//! The journal of a recording in progress: one line per playlist entry, appended and
//! synced as the recorder writes, so that a node killed mid-stream can rebuild the
//! recording's playlists on its next start and carry on.
//!
//! ```text
//! B {started_at}                                         first line: unix seconds
//! E {rendition} {seq} {duration_us} {dseq} {disc} {gap}  one per segment or gap
//! ```
//!
//! Reading is bounded (line length, entry count) and stops at the first line that does
//! not parse: the last append may have been cut by the crash; everything before it was
//! synced and stays.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use domain::hls::Entry;
use domain::RenditionName;

/// The journal's file name in a recording's directory. While it is there, the recording
/// can be resumed (it is in progress, or was finished only because its node stopped).
pub(crate) use crate::recording::JOURNAL_FILE;

/// The longest line read back.
const MAX_LINE: usize = 256;

/// The most entries read back (a week of 2 s segments for five renditions).
const MAX_ENTRIES: usize = 1_600_000;

/// What a journal holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Journaled {
    /// When the recording started (unix seconds).
    pub(crate) started_at: u64,
    /// Each rendition's entries, in the order they were written.
    pub(crate) entries: HashMap<RenditionName, Vec<Entry>>,
}

/// An open journal, appended to.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
}

impl Journal {
    /// Creates the journal of a new recording (or opens an existing one to carry on),
    /// writing the start line if the file is new.
    pub(crate) fn open(dir: &Path, started_at: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        if file.metadata()?.len() == 0 {
            file.write_all(format!("B {started_at}\n").as_bytes())?;
            file.sync_data()?;
            super::disk::sync_dir(dir)?;
        }
        Ok(Journal { file })
    }

    /// Appends one entry and syncs it to disk.
    pub(crate) fn append(&mut self, rendition: &RenditionName, entry: &Entry) -> io::Result<()> {
        self.file.write_all(line(rendition, entry).as_bytes())?;
        self.file.sync_data()
    }
}

/// The journal line of an entry.
fn line(rendition: &RenditionName, e: &Entry) -> String {
    format!(
        "E {rendition} {} {} {} {} {}\n",
        e.sequence,
        e.duration.as_micros(),
        e.discontinuity_sequence,
        u8::from(e.discontinuity),
        u8::from(e.gap)
    )
}

/// Reads a journal back; `None` if it has no valid start line.
pub(crate) fn read(path: &Path) -> io::Result<Option<Journaled>> {
    let file = File::open(path)?;
    Ok(parse(BufReader::new(file)))
}

/// Parses journal text, stopping at the first line that is too long or does not parse.
fn parse(reader: impl BufRead) -> Option<Journaled> {
    let mut lines = BoundedLines { reader };
    let first = lines.next()?;
    let started_at = first.strip_prefix("B ")?.parse().ok()?;
    let mut journaled = Journaled {
        started_at,
        entries: HashMap::new(),
    };
    let mut count = 0;
    while let Some(text) = lines.next() {
        let Some((rendition, entry)) = parse_entry(&text) else {
            break;
        };
        count += 1;
        if count > MAX_ENTRIES {
            break;
        }
        journaled.entries.entry(rendition).or_default().push(entry);
    }
    Some(journaled)
}

fn parse_entry(line: &str) -> Option<(RenditionName, Entry)> {
    let mut fields = line.strip_prefix("E ")?.split(' ');
    let rendition = RenditionName::new(fields.next()?).ok()?;
    let sequence = fields.next()?.parse().ok()?;
    let duration = Duration::from_micros(fields.next()?.parse().ok()?);
    let discontinuity_sequence = fields.next()?.parse().ok()?;
    let flag = |f: Option<&str>| match f {
        Some("0") => Some(false),
        Some("1") => Some(true),
        _ => None,
    };
    let discontinuity = flag(fields.next())?;
    let gap = flag(fields.next())?;
    if fields.next().is_some() {
        return None;
    }
    Some((
        rendition,
        Entry {
            sequence,
            duration,
            discontinuity_sequence,
            discontinuity,
            gap,
        },
    ))
}

/// Lines of at most [`MAX_LINE`] bytes that end in a newline; ends at the first that does
/// not (too long, cut off, not UTF-8).
struct BoundedLines<R> {
    reader: R,
}

impl<R: BufRead> BoundedLines<R> {
    fn next(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .ok()?;
        if read == 0 || buf.last() != Some(&b'\n') {
            return None;
        }
        buf.pop();
        String::from_utf8(buf).ok()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(sequence: u64, gap: bool) -> Entry {
        Entry {
            sequence,
            duration: Duration::from_micros(2_002_000),
            discontinuity_sequence: 3,
            discontinuity: sequence == 5,
            gap,
        }
    }

    #[test]
    fn entries_come_back_as_written_and_a_torn_last_line_is_dropped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = RenditionName::new("src").expect("valid");
        let p720 = RenditionName::new("720p").expect("valid");
        {
            let mut journal = Journal::open(tmp.path(), 1234).expect("opens");
            journal.append(&src, &entry(4, false)).expect("appends");
            journal.append(&p720, &entry(4, false)).expect("appends");
            journal.append(&src, &entry(5, true)).expect("appends");
        }
        // Reopened to carry on: no second start line.
        Journal::open(tmp.path(), 9999)
            .expect("opens")
            .append(&src, &entry(6, false))
            .expect("appends");
        let path = tmp.path().join(JOURNAL_FILE);
        let mut text = std::fs::read(&path).expect("read");
        text.extend_from_slice(b"E src 7 2000"); // cut by a crash
        std::fs::write(&path, &text).expect("write");

        let back = read(&path).expect("reads").expect("valid");
        assert_eq!(back.started_at, 1234);
        assert_eq!(
            back.entries[&src],
            [entry(4, false), entry(5, true), entry(6, false)]
        );
        assert_eq!(back.entries[&p720], [entry(4, false)]);
    }

    proptest! {
        /// Whatever the bytes, reading neither panics nor returns more than was there.
        #[test]
        fn reading_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let mut text = b"B 1\n".to_vec();
            text.extend_from_slice(&bytes);
            if let Some(j) = parse(&text[..]) {
                let n: usize = j.entries.values().map(Vec::len).sum();
                prop_assert!(n <= text.len() / 12);
            }
        }

        /// Every entry a journal can hold reads back equal.
        #[test]
        fn lines_round_trip(seq in any::<u64>(), us in 0u64..u64::MAX / 2, dseq in any::<u64>(),
                            disc in any::<bool>(), gap in any::<bool>()) {
            let rendition = RenditionName::new("360p").expect("valid");
            let e = Entry {
                sequence: seq,
                duration: Duration::from_micros(us),
                discontinuity_sequence: dseq,
                discontinuity: disc,
                gap,
            };
            let text = line(&rendition, &e);
            prop_assert_eq!(parse_entry(text.trim_end()), Some((rendition, e)));
        }
    }
}
