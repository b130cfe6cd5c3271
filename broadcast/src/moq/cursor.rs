//! Which parts of one rendition go out over MoQ next, and where each group begins: the
//! sans-IO core of the publisher ([`Cursor`]).
//!
//! A group is a segment (its MoQ sequence is the segment's media sequence number) and an
//! object is a part, so a subscriber that joins mid-stream starts at the newest segment's
//! first part, which begins with a keyframe. A group is only ever sent whole from its
//! part 0 on and without a hole: when a part is missing (it never verified on this edge,
//! or slid out of the window before it was seen) the open group ends short and nothing
//! goes out until the next segment begins, so a viewer never decodes from the middle of a
//! run of parts.

/// One thing to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// End the open group, if any, and open group `sequence` (a segment's number).
    Group(u64),
    /// Send part `index` of segment `sequence` as the open group's next object.
    Object(u64, u32),
}

/// Where a rendition's MoQ track stands: what was sent last and what was looked at.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    /// The last part sent while a group is open; `None` between groups.
    open: Option<(u64, u32)>,
    /// The newest part looked at, sent or skipped; nothing older is looked at again.
    seen: Option<(u64, u32)>,
}

impl Cursor {
    /// The steps that send what is new among `held`, the `(segment, index)` of every part
    /// the rendition holds now, ascending. The first call starts at the newest part 0.
    pub(crate) fn advance(&mut self, held: impl IntoIterator<Item = (u64, u32)>) -> Vec<Step> {
        let fresh: Vec<(u64, u32)> = held
            .into_iter()
            .filter(|part| self.seen.is_none_or(|seen| *part > seen))
            .collect();
        let start = match self.seen {
            Some(_) => 0,
            None => match fresh.iter().rposition(|(_, index)| *index == 0) {
                Some(newest_start) => newest_start,
                // Nothing to begin a group with yet: look at everything again next time.
                None => return Vec::new(),
            },
        };
        let mut steps = Vec::new();
        for &(sequence, index) in &fresh[start..] {
            match self.open {
                Some((open, last)) if open == sequence && last.checked_add(1) == Some(index) => {
                    steps.push(Step::Object(sequence, index));
                    self.open = Some((sequence, index));
                }
                _ if index == 0 => {
                    steps.push(Step::Group(sequence));
                    steps.push(Step::Object(sequence, 0));
                    self.open = Some((sequence, 0));
                }
                // A hole: the open group ends here; wait for the next segment's start.
                _ => self.open = None,
            }
            self.seen = Some((sequence, index));
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn starts_at_the_newest_segment_start_and_follows_on() {
        let mut cursor = Cursor::default();
        assert!(cursor.advance([(4, 1), (4, 2)]).is_empty(), "no part 0 yet");
        assert_eq!(
            cursor.advance([(4, 2), (5, 0), (5, 1), (6, 0)]),
            [Step::Group(6), Step::Object(6, 0)]
        );
        assert_eq!(
            cursor.advance([(6, 0), (6, 1), (6, 2), (7, 0)]),
            [
                Step::Object(6, 1),
                Step::Object(6, 2),
                Step::Group(7),
                Step::Object(7, 0)
            ]
        );
        assert!(cursor.advance([(6, 2), (7, 0)]).is_empty(), "nothing new");
    }

    #[test]
    fn a_hole_ends_the_group_until_the_next_segment() {
        let mut cursor = Cursor::default();
        cursor.advance([(1, 0)]);
        assert_eq!(cursor.advance([(1, 0), (1, 2), (1, 3)]), []);
        assert_eq!(
            cursor.advance([(1, 3), (2, 1), (3, 0)]),
            [Step::Group(3), Step::Object(3, 0)]
        );
    }

    /// A rendition's life: every part in order, whether each is ever held (false: a
    /// hole), the strides between snapshots, and the window's length in parts.
    type Life = (Vec<(u64, u32)>, Vec<bool>, Vec<usize>, usize);

    /// A rendition's life: parts appear in order, some never (a hole), and the window
    /// slides, seen through snapshots taken at arbitrary moments.
    fn lives() -> impl Strategy<Value = Life> {
        (1u32..5, 1usize..40).prop_flat_map(|(per_segment, count)| {
            let parts: Vec<(u64, u32)> = (0..count)
                .map(|i| {
                    let i = i as u64;
                    let per = u64::from(per_segment);
                    (i / per, (i % per) as u32)
                })
                .collect();
            (
                Just(parts),
                proptest::collection::vec(proptest::bool::weighted(0.85), count),
                proptest::collection::vec(1usize..6, 1..40),
                1usize..12,
            )
        })
    }

    proptest! {
        #[test]
        fn groups_are_whole_runs_from_part_zero_each_part_at_most_once(
            (parts, present, strides, window) in lives()
        ) {
            let parts: Vec<(u64, u32)> = parts
                .into_iter()
                .zip(&present)
                .filter_map(|(p, keep)| keep.then_some(p))
                .collect();
            let mut cursor = Cursor::default();
            let mut steps = Vec::new();
            let mut upto = 0;
            for stride in strides.iter().cycle().take(parts.len() + strides.len()) {
                upto = (upto + stride).min(parts.len());
                let from = upto.saturating_sub(window);
                steps.extend(cursor.advance(parts[from..upto].iter().copied()));
                if upto == parts.len() {
                    break;
                }
            }
            let mut sent = BTreeSet::new();
            let mut open: Option<(u64, u32)> = None;
            let mut last_object = None;
            for step in &steps {
                match *step {
                    Step::Group(sequence) => open = Some((sequence, u32::MAX)),
                    Step::Object(sequence, index) => {
                        let (group, last) = open.expect("an object outside a group");
                        prop_assert_eq!(group, sequence);
                        prop_assert_eq!(last.wrapping_add(1), index, "a hole inside a group");
                        prop_assert!(parts.contains(&(sequence, index)), "never held");
                        prop_assert!(sent.insert((sequence, index)), "sent twice");
                        prop_assert!(last_object < Some((sequence, index)), "out of order");
                        last_object = Some((sequence, index));
                        open = Some((sequence, index));
                    }
                }
            }
            // With every part present and seen, all from the first group on goes out.
            if present.iter().all(|p| *p) && window >= 6 {
                if let Some(first) = steps.iter().find_map(|s| match s {
                    Step::Object(q, i) => Some((*q, *i)),
                    Step::Group(_) => None,
                }) {
                    let expected: BTreeSet<_> = parts.iter().copied().filter(|p| *p >= first).collect();
                    prop_assert_eq!(sent, expected);
                }
            }
        }
    }
}
