//! Listing in pages, pure: what one page holds and where the next one starts.
//!
//! Both backends list in the byte order of rendered keys (S3's order) from just after a
//! cursor, and feed what they find to a [`PageBuilder`] until it says the page is full. A
//! page is bounded twice: at most `limit` objects of ours, and at most [`SCAN_FACTOR`]
//! times that many entries looked at, so that a folder full of objects that are not ours
//! (another tool's files in the bucket, temporary files) cannot make one call unbounded.
//! The cursor is the last entry *looked at*, ours or not, so the next page never looks at
//! it again.

use crate::key::{ArchiveKey, MAX_KEY_LEN};

/// The most objects one page may hold (S3 lists 1,000 a request).
pub const MAX_PAGE: usize = 1000;

/// How many entries a page may look at for each object it may hold.
pub(crate) const SCAN_FACTOR: usize = 4;

/// One object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: ArchiveKey,
    /// Its size in bytes.
    pub size: u64,
}

/// Where the next page starts: after this rendered key. Only a listing makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor(String);

impl ListCursor {
    /// The key (rendered) the next page starts after.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The objects of ours found, in key order.
    pub objects: Vec<ObjectInfo>,
    /// Where the next page starts; `None` when the listing is complete.
    pub next: Option<ListCursor>,
}

/// Collects one page from entries offered in key order.
#[derive(Debug)]
pub(crate) struct PageBuilder {
    /// The most objects of ours this page holds.
    limit: usize,
    /// The most entries this page looks at.
    scan_limit: usize,
    /// Entries looked at so far.
    scanned: usize,
    /// The objects of ours so far.
    objects: Vec<ObjectInfo>,
    /// The last entry looked at: the next page's cursor.
    last: Option<String>,
    /// Whether an entry was left for the next page.
    more: bool,
}

impl PageBuilder {
    /// A page of at most `limit` objects (clamped to 1..=[`MAX_PAGE`]).
    pub(crate) fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, MAX_PAGE);
        Self {
            limit,
            scan_limit: limit * SCAN_FACTOR,
            scanned: 0,
            objects: Vec::with_capacity(limit),
            last: None,
            more: false,
        }
    }

    /// Offers the next entry (its raw key and size). `false`: the page is full and this
    /// entry was not taken; stop listing.
    pub(crate) fn offer(&mut self, raw_key: &str, size: u64) -> bool {
        if self.objects.len() == self.limit || self.scanned == self.scan_limit {
            self.more = true;
            return false;
        }
        self.scanned += 1;
        if raw_key.len() <= MAX_KEY_LEN {
            if let Ok(key) = ArchiveKey::parse(raw_key) {
                self.objects.push(ObjectInfo { key, size });
            }
        }
        // A foreign key longer than ours still moves the cursor: the store lists it again
        // otherwise. Its length is the store's bound (1,024 bytes on S3).
        self.last = Some(raw_key.to_owned());
        true
    }

    /// The page.
    pub(crate) fn finish(self) -> Page {
        Page {
            objects: self.objects,
            next: self.last.filter(|_| self.more).map(ListCursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// A store's listing: entries after `after`, in order.
    fn list_after<'a>(
        all: &'a BTreeSet<String>,
        after: Option<&'a ListCursor>,
    ) -> impl Iterator<Item = &'a String> {
        all.iter()
            .filter(move |k| after.is_none_or(|c| k.as_str() > c.as_str()))
    }

    fn entry() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..40).prop_map(|n| format!("recordings/demo/0000000000000007/src/{n}.ts")),
            (0u64..40).prop_map(|n| format!("recordings/demo/0000000000000007/src/{n}.ts.sig")),
            (0u64..20).prop_map(|n| format!("recordings/demo/0000000000000007/src/.{n}.tmp")),
            (0u64..20).prop_map(|n| format!("recordings/demo/0000000000000007/src/0{n}.ts")),
        ]
    }

    proptest! {
        #[test]
        fn pages_cover_every_object_once_in_order(
            entries in proptest::collection::btree_set(entry(), 0..120),
            limits in proptest::collection::vec(1usize..9, 1..10),
        ) {
            let ours: Vec<String> = entries
                .iter()
                .filter(|k| ArchiveKey::parse(k).is_ok())
                .cloned()
                .collect();
            let mut seen = Vec::new();
            let mut cursor = None;
            for round in 0.. {
                prop_assert!(round <= entries.len() + 1, "the listing does not end");
                let mut page = PageBuilder::new(limits[round % limits.len()]);
                for k in list_after(&entries, cursor.as_ref()) {
                    if !page.offer(k, 1) {
                        break;
                    }
                }
                let page = page.finish();
                seen.extend(page.objects.iter().map(|o| o.key.to_string()));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            prop_assert_eq!(seen, ours);
        }
    }

    #[test]
    fn a_full_page_with_nothing_left_has_no_cursor() {
        let mut page = PageBuilder::new(1);
        assert!(page.offer("probes/0000000000000001", 3));
        let page = page.finish();
        assert_eq!(page.objects.len(), 1);
        assert_eq!(page.next, None);
    }
}
