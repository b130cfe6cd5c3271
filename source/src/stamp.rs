//! The machine-readable clock: the Unix time in milliseconds when a frame was made, as a
//! band of black and white cells across the top of the picture, which a player reads
//! back from the frame it is showing to measure glass-to-glass latency.
//!
//! The band is two rows of [`COLUMNS`] cells spanning the frame's width, each cell
//! `width / 32` wide and `width / 48` tall. Everything is laid out in proportion to the
//! width, so a rendition scaled down by the ladder reads back with the same arithmetic
//! (`web/src/player.js` has the same reader). The 64 cells, row by row, left to right:
//!
//! ```text
//! 1 0            sync: white then black, the reader's reference levels
//! 48 bits        Unix milliseconds, most significant first
//! 8 bits         CRC-8 (polynomial 0x07) of the six bytes of milliseconds
//! 1 0 1 0 1 0    trailer
//! ```
//!
//! A white cell is video-range white, a black one video-range black, chroma neutral; a
//! reader samples the middle half of each cell and needs at least [`MIN_CONTRAST`]
//! between the sync cells.

use crate::clock::{Plane, PlaneMut, Rect};

/// Cells per row.
pub const COLUMNS: usize = 32;
/// Rows of cells.
const ROWS: usize = 2;
/// Luma of a 1 cell.
const WHITE: u8 = 235;
/// Luma of a 0 cell.
const BLACK: u8 = 16;
/// Neutral chroma.
const NEUTRAL_CHROMA: u8 = 128;
/// The least difference between the sync cells' levels a reader accepts.
pub const MIN_CONTRAST: u8 = 64;
/// The trailer's bits.
const TRAILER: [bool; 6] = [true, false, true, false, true, false];

/// The band on a frame of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockStamp {
    width: usize,
    height: usize,
}

impl ClockStamp {
    /// The band for a `width` x `height` frame. Frames narrower than 64 pixels or shorter
    /// than the band get none (drawing and reading do nothing).
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width: width as usize,
            height: height as usize,
        }
    }

    fn cell_height(&self) -> usize {
        self.width / 48
    }

    fn usable(&self) -> bool {
        self.width >= 2 * COLUMNS
            && self.cell_height() >= 1
            && ROWS * self.cell_height() <= self.height
    }

    /// The band, in luma pixels (even-sized, so it maps onto 4:2:0 chroma).
    pub fn bounds(&self) -> Rect {
        let height = if self.usable() {
            (ROWS * self.cell_height() + 1) & !1
        } else {
            0
        };
        Rect {
            x: 0,
            y: 0,
            width: self.width & !1,
            height: height.min(self.height & !1),
        }
    }

    /// Cell `i`'s rectangle: columns split the width exactly, so the cells cover it.
    fn cell(&self, i: usize) -> Rect {
        let (row, column) = (i / COLUMNS, i % COLUMNS);
        let x = column * self.width / COLUMNS;
        let next = (column + 1) * self.width / COLUMNS;
        Rect {
            x,
            y: row * self.cell_height(),
            width: next - x,
            height: self.cell_height(),
        }
    }

    /// Paints `unix_ms` onto the luma plane.
    pub fn draw_luma(&self, luma: &mut PlaneMut<'_>, unix_ms: u64) {
        if !self.usable() {
            return;
        }
        luma.fill(self.bounds(), BLACK);
        for (i, bit) in bits(unix_ms).iter().enumerate() {
            if *bit {
                luma.fill(self.cell(i), WHITE);
            }
        }
    }

    /// Neutralises one chroma plane (U or V, half size) under the band.
    pub fn draw_chroma(&self, chroma: &mut PlaneMut<'_>) {
        let b = self.bounds();
        chroma.fill(
            Rect {
                x: 0,
                y: 0,
                width: b.width / 2,
                height: b.height / 2,
            },
            NEUTRAL_CHROMA,
        );
    }

    /// Reads the time back from a luma plane of this size: `None` if there is no band, its
    /// contrast is too low, or its check fails.
    pub fn read(&self, luma: &Plane<'_>) -> Option<u64> {
        if !self.usable() {
            return None;
        }
        let levels: Vec<u8> = (0..ROWS * COLUMNS)
            .map(|i| cell_level(luma, self.cell(i)))
            .collect::<Option<_>>()?;
        let (white, black) = (levels[0], levels[1]);
        if white < black.saturating_add(MIN_CONTRAST) {
            return None;
        }
        let threshold = black + (white - black) / 2;
        let read: Vec<bool> = levels.iter().map(|l| *l > threshold).collect();
        decode(&read)
    }
}

/// The mean luma of the middle half of `cell`.
fn cell_level(luma: &Plane<'_>, cell: Rect) -> Option<u8> {
    let (x0, x1) = (
        cell.x + cell.width / 4,
        cell.x + (3 * cell.width).div_ceil(4),
    );
    let (y0, y1) = (
        cell.y + cell.height / 4,
        cell.y + (3 * cell.height).div_ceil(4),
    );
    let (mut sum, mut count) = (0u64, 0u64);
    for y in y0..y1.max(y0 + 1) {
        for x in x0..x1.max(x0 + 1) {
            sum += u64::from(luma.at(x, y)?);
            count += 1;
        }
    }
    u8::try_from(sum / count.max(1)).ok()
}

/// The 64 cells for `unix_ms` (the low 48 bits of it).
fn bits(unix_ms: u64) -> [bool; ROWS * COLUMNS] {
    let mut out = [false; ROWS * COLUMNS];
    out[0] = true;
    let bytes = &unix_ms.to_be_bytes()[2..];
    for i in 0..48 {
        out[2 + i] = (unix_ms >> (47 - i)) & 1 == 1;
    }
    let crc = crc8(bytes);
    for i in 0..8 {
        out[50 + i] = (crc >> (7 - i)) & 1 == 1;
    }
    out[58..].copy_from_slice(&TRAILER);
    out
}

/// The milliseconds in 64 cells, if sync, check and trailer agree.
fn decode(cells: &[bool]) -> Option<u64> {
    if cells.len() != ROWS * COLUMNS || !cells[0] || cells[1] || cells[58..] != TRAILER {
        return None;
    }
    let ms = cells[2..50]
        .iter()
        .fold(0u64, |acc, b| (acc << 1) | u64::from(*b));
    let crc = cells[50..58]
        .iter()
        .fold(0u8, |acc, b| (acc << 1) | u8::from(*b));
    (crc8(&ms.to_be_bytes()[2..]) == crc).then_some(ms)
}

/// CRC-8 with polynomial 0x07, initial value 0 (CRC-8/SMBUS).
fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for byte in bytes {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A luma frame of mid grey with the stamp drawn.
    fn stamped(width: usize, height: usize, ms: u64) -> Vec<u8> {
        let mut luma = vec![128u8; width * height];
        let mut plane = PlaneMut::new(&mut luma, width, width, height).expect("geometry");
        ClockStamp::new(width as u32, height as u32).draw_luma(&mut plane, ms);
        luma
    }

    /// Box-filter downscale by `factor` (as a ladder rung would, more or less).
    fn downscale(luma: &[u8], width: usize, height: usize, factor: usize) -> Vec<u8> {
        let (w, h) = (width / factor, height / factor);
        let mut out = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0u32;
                for dy in 0..factor {
                    for dx in 0..factor {
                        sum += u32::from(luma[(y * factor + dy) * width + x * factor + dx]);
                    }
                }
                out[y * w + x] = (sum / (factor * factor) as u32) as u8;
            }
        }
        out
    }

    fn read(luma: &[u8], width: usize, height: usize) -> Option<u64> {
        let plane = Plane::new(luma, width, width, height).expect("geometry");
        ClockStamp::new(width as u32, height as u32).read(&plane)
    }

    #[test]
    fn the_check_value_is_crc8_smbus() {
        assert_eq!(crc8(b"123456789"), 0xF4);
    }

    #[test]
    fn reads_back_at_every_ladder_size_and_scaled_down() {
        let ms = 1_795_359_845_007;
        for (w, h) in [
            (1920, 1080),
            (1280, 720),
            (854, 480),
            (640, 360),
            (426, 240),
            (320, 240),
        ] {
            let luma = stamped(w, h, ms);
            assert_eq!(read(&luma, w, h), Some(ms), "{w}x{h}");
        }
        let luma = stamped(1280, 720, ms);
        for factor in [2, 3] {
            let small = downscale(&luma, 1280, 720, factor);
            assert_eq!(
                read(&small, 1280 / factor, 720 / factor),
                Some(ms),
                "1280x720 scaled down {factor}x"
            );
        }
    }

    #[test]
    fn no_band_no_reading() {
        let grey = vec![128u8; 320 * 240];
        assert_eq!(read(&grey, 320, 240), None);
        // A data cell painted over (cell 10: first row, x 100..110, y 0..6) fails the check.
        let mut luma = stamped(320, 240, 0);
        for y in 0..6 {
            luma[y * 320 + 100..y * 320 + 110].fill(235);
        }
        assert_eq!(read(&luma, 320, 240), None);
        assert_eq!(
            read(&stamped(40, 40, 1), 40, 40),
            None,
            "too small for a band"
        );
    }

    proptest! {
        #[test]
        fn every_time_round_trips(ms in 0u64..(1 << 48)) {
            prop_assert_eq!(decode(&bits(ms)), Some(ms));
            prop_assert_eq!(read(&stamped(640, 360, ms), 640, 360), Some(ms));
        }

        /// One flipped data or check cell is caught.
        #[test]
        fn one_flipped_cell_is_caught(ms in 0u64..(1 << 48), cell in 2usize..58) {
            let mut cells = bits(ms);
            cells[cell] = !cells[cell];
            prop_assert_eq!(decode(&cells), None);
        }
    }
}
