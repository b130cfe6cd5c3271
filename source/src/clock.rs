//! The burnt-in clock: a seven-segment font, its layout on the frame, drawing onto
//! yuv420p planes and reading it back.
//!
//! Everything here is pure: it works on plain byte slices with a stride, so it is
//! tested without FFmpeg, and the same code can read the clock out of a decoded frame
//! (an end-to-end test can measure glass-to-glass latency from it).
//!
//! The overlay is a black box with two white lines: the UTC time of day the frame was
//! produced (`HH:MM:SS.mmm`) and the frame number (`F 000123`). Chroma inside the box
//! is set to neutral so the text is pure black and white.

use std::time::Duration;

/// Luma of the box behind the text (video-range black).
const BACKGROUND_Y: u8 = 16;
/// Luma of lit segments (video-range white).
const FOREGROUND_Y: u8 = 235;
/// Neutral chroma: no colour inside the box.
const NEUTRAL_CHROMA: u8 = 128;
/// Reading threshold halfway between background and foreground.
const READ_THRESHOLD: u8 = 126;

/// Glyph cell of a seven-segment character, in font units.
const CELL_W: usize = 5;
const CELL_H: usize = 9;
/// Width of `:` and `.`, in font units.
const NARROW_W: usize = 1;
/// Space between glyphs, in font units.
const GAP: usize = 1;

/// The widest time string; the layout is sized for it.
const TIME_TEMPLATE: &str = "00:00:00.000";

/// Segment rectangles `(x, y, w, h)` in font units, in bit order a..g:
/// a top, b upper right, c lower right, d bottom, e lower left, f upper left, g middle.
const SEGMENTS: [(usize, usize, usize, usize); 7] = [
    (0, 0, 5, 1),
    (4, 0, 1, 5),
    (4, 4, 1, 5),
    (0, 8, 5, 1),
    (0, 4, 1, 5),
    (0, 0, 1, 5),
    (0, 4, 5, 1),
];

/// Lit segments per digit, bit `i` = `SEGMENTS[i]`.
const DIGITS: [u8; 10] = [0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F];
/// `F`: a, e, f, g.
const LETTER_F: u8 = 0x71;
/// `-`: g.
const MINUS: u8 = 0x40;

/// How one character is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glyph {
    /// A full-width cell with these segments lit (0 = blank, i.e. a space).
    Segments(u8),
    /// Two dots, narrow.
    Colon,
    /// One dot at the baseline, narrow.
    Dot,
}

impl Glyph {
    /// Characters outside the font draw as a blank cell, so a caller's typo shows as a
    /// gap rather than failing a live stream.
    fn of(c: char) -> Self {
        match c {
            '0'..='9' => Self::Segments(DIGITS[c as usize - '0' as usize]),
            'F' => Self::Segments(LETTER_F),
            '-' => Self::Segments(MINUS),
            ':' => Self::Colon,
            '.' => Self::Dot,
            _ => Self::Segments(0),
        }
    }

    fn width(self) -> usize {
        match self {
            Self::Segments(_) => CELL_W,
            Self::Colon | Self::Dot => NARROW_W,
        }
    }

    /// The lit rectangles, in font units relative to the glyph's top-left corner.
    fn rects(self) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let (mask, dots): (u8, &'static [(usize, usize, usize, usize)]) = match self {
            Self::Segments(mask) => (mask, &[]),
            Self::Colon => (0, &[(0, 2, 1, 1), (0, 6, 1, 1)]),
            Self::Dot => (0, &[(0, 8, 1, 1)]),
        };
        SEGMENTS
            .iter()
            .enumerate()
            .filter(move |(i, _)| mask & (1 << i) != 0)
            .map(|(_, r)| *r)
            .chain(dots.iter().copied())
    }
}

fn char_for_mask(mask: u8) -> Option<char> {
    match mask {
        0 => Some(' '),
        LETTER_F => Some('F'),
        MINUS => Some('-'),
        _ => DIGITS
            .iter()
            .position(|&d| d == mask)
            .and_then(|i| char::from_digit(i as u32, 10)),
    }
}

/// Width of `text` in font units.
fn text_units(text: &str) -> usize {
    let glyphs: usize = text.chars().map(|c| Glyph::of(c).width() + GAP).sum();
    glyphs.saturating_sub(GAP)
}

/// A pixel rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl Rect {
    /// Whether pixel `(x, y)` lies inside.
    pub fn contains(&self, x: usize, y: usize) -> bool {
        x >= self.x && x < self.x + self.width && y >= self.y && y < self.y + self.height
    }

    fn intersect(&self, other: &Rect) -> Rect {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = (self.x + self.width).min(other.x + other.width);
        let bottom = (self.y + self.height).min(other.y + other.height);
        Rect {
            x,
            y,
            width: right.saturating_sub(x),
            height: bottom.saturating_sub(y),
        }
    }
}

/// A writable image plane: `width` x `height` 8-bit samples, rows `stride` bytes apart.
#[derive(Debug)]
pub struct PlaneMut<'a> {
    data: &'a mut [u8],
    stride: usize,
    width: usize,
    height: usize,
}

impl<'a> PlaneMut<'a> {
    /// `None` when `data` is too short for the geometry or `stride < width`.
    pub fn new(data: &'a mut [u8], stride: usize, width: usize, height: usize) -> Option<Self> {
        plane_fits(data.len(), stride, width, height).then_some(Self {
            data,
            stride,
            width,
            height,
        })
    }

    /// Fills `rect`, clipped to the plane.
    pub(crate) fn fill(&mut self, rect: Rect, value: u8) {
        let r = rect.intersect(&Rect {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        });
        for row in r.y..r.y + r.height {
            let start = row * self.stride + r.x;
            self.data[start..start + r.width].fill(value);
        }
    }
}

/// A read-only image plane, as [`PlaneMut`].
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    data: &'a [u8],
    stride: usize,
    width: usize,
    height: usize,
}

impl<'a> Plane<'a> {
    /// `None` when `data` is too short for the geometry or `stride < width`.
    pub fn new(data: &'a [u8], stride: usize, width: usize, height: usize) -> Option<Self> {
        plane_fits(data.len(), stride, width, height).then_some(Self {
            data,
            stride,
            width,
            height,
        })
    }

    /// The sample at `(x, y)`, if inside the plane.
    pub(crate) fn at(&self, x: usize, y: usize) -> Option<u8> {
        (x < self.width && y < self.height).then(|| self.data[y * self.stride + x])
    }
}

fn plane_fits(len: usize, stride: usize, width: usize, height: usize) -> bool {
    stride >= width && (height == 0 || len >= stride * (height - 1) + width)
}

/// One line of text: where it starts and how big a font unit is, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    x: usize,
    y: usize,
    unit: usize,
}

/// Where the clock goes on a frame of a given size. Computed once per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOverlay {
    bounds: Rect,
    time: Line,
    label: Line,
}

impl ClockOverlay {
    /// Lays the clock out for a `width` x `height` frame: about 60 % of the width (less
    /// if the frame is short), centred, in the lower part of the picture. The box has
    /// even coordinates and size so it maps exactly onto 4:2:0 chroma.
    pub fn new(width: u32, height: u32) -> Self {
        let (width, height) = (width as usize, height as usize);
        let pad = 2; // units around and between the lines
        let time_units = text_units(TIME_TEMPLATE);
        // Box height in time-line units, counting the half-size label line as 4.5.
        let by_width = width * 6 / (10 * (time_units + 2 * pad));
        let by_height = height * 2 / (3 * 2 * (3 * pad + CELL_H) + 3 * CELL_H);
        let unit = by_width.min(by_height).max(1);
        let label_unit = (unit / 2).max(1);

        let box_w = (time_units + 2 * pad) * unit;
        let box_h = 3 * pad * unit + CELL_H * unit + CELL_H * label_unit;
        let box_w = (box_w + 1) & !1;
        let box_h = (box_h + 1) & !1;
        let box_w = box_w.min(width & !1);
        let box_h = box_h.min(height & !1);
        let x = (width.saturating_sub(box_w) / 2) & !1;
        let y = (height.saturating_sub(box_h + height / 12)) & !1;
        let bounds = Rect {
            x,
            y,
            width: box_w,
            height: box_h,
        };
        let time = Line {
            x: x + pad * unit,
            y: y + pad * unit,
            unit,
        };
        let label = Line {
            x: time.x,
            y: time.y + CELL_H * unit + pad * unit,
            unit: label_unit,
        };
        Self {
            bounds,
            time,
            label,
        }
    }

    /// The box, in luma pixels; nothing outside it is ever touched.
    pub fn bounds(&self) -> Rect {
        self.bounds
    }

    /// Paints the box and both lines onto the luma plane. `time` is normally
    /// [`time_of_day_utc`]'s output and `label` [`frame_label`]'s; anything too long
    /// is clipped at the box edge.
    pub fn draw_luma(&self, luma: &mut PlaneMut<'_>, time: &str, label: &str) {
        luma.fill(self.bounds, BACKGROUND_Y);
        self.draw_line(luma, self.time, time);
        self.draw_line(luma, self.label, label);
    }

    /// Neutralises one chroma plane (U or V, half size) under the box.
    pub fn draw_chroma(&self, chroma: &mut PlaneMut<'_>) {
        let b = self.bounds;
        chroma.fill(
            Rect {
                x: b.x / 2,
                y: b.y / 2,
                width: b.width / 2,
                height: b.height / 2,
            },
            NEUTRAL_CHROMA,
        );
    }

    fn draw_line(&self, luma: &mut PlaneMut<'_>, line: Line, text: &str) {
        let mut x = line.x;
        for c in text.chars() {
            let glyph = Glyph::of(c);
            for (rx, ry, rw, rh) in glyph.rects() {
                let rect = Rect {
                    x: x + rx * line.unit,
                    y: line.y + ry * line.unit,
                    width: rw * line.unit,
                    height: rh * line.unit,
                };
                luma.fill(rect.intersect(&self.bounds), FOREGROUND_Y);
            }
            x += (glyph.width() + GAP) * line.unit;
        }
    }

    /// Reads the time line back from a luma plane of the size this overlay was laid
    /// out for: `Some("12:34:56.789")`, or `None` if any digit is unreadable.
    pub fn read_time(&self, luma: &Plane<'_>) -> Option<String> {
        let mut x = self.time.x;
        let mut out = String::with_capacity(TIME_TEMPLATE.len());
        for c in TIME_TEMPLATE.chars() {
            let glyph = Glyph::of(c);
            match glyph {
                Glyph::Segments(_) => out.push(read_cell(luma, x, self.time.y, self.time.unit)?),
                _ => out.push(c),
            }
            x += (glyph.width() + GAP) * self.time.unit;
        }
        Some(out)
    }

    /// Reads the frame number back from the label line, if it is legible.
    pub fn read_frame_number(&self, luma: &Plane<'_>) -> Option<u64> {
        let step = (CELL_W + GAP) * self.label.unit;
        let right = self.bounds.x + self.bounds.width;
        let mut text = String::new();
        let mut x = self.label.x;
        while x + CELL_W * self.label.unit <= right {
            text.push(read_cell(luma, x, self.label.y, self.label.unit)?);
            x += step;
        }
        text.trim().strip_prefix('F')?.trim().parse().ok()
    }
}

/// Samples the centre of each segment of the cell at `(x, y)`.
fn read_cell(luma: &Plane<'_>, x: usize, y: usize, unit: usize) -> Option<char> {
    let mut mask = 0u8;
    for (i, (sx, sy, sw, sh)) in SEGMENTS.iter().enumerate() {
        let px = x + sx * unit + sw * unit / 2;
        let py = y + sy * unit + sh * unit / 2;
        if luma.at(px, py)? > READ_THRESHOLD {
            mask |= 1 << i;
        }
    }
    char_for_mask(mask)
}

/// `HH:MM:SS.mmm` of the UTC day for a time given as the offset from the Unix epoch
/// (UTC days are exactly 86 400 s: Unix time has no leap seconds).
pub fn time_of_day_utc(since_epoch: Duration) -> String {
    let ms_of_day = since_epoch.as_millis() % 86_400_000;
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// The second line: `F` and the zero-padded frame number.
pub fn frame_label(frame: u64) -> String {
    format!("F {frame:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILL: u8 = 77;

    /// A yuv420p picture with row padding, like FFmpeg allocates.
    struct Picture {
        width: usize,
        height: usize,
        luma_stride: usize,
        chroma_stride: usize,
        planes: [Vec<u8>; 3],
    }

    impl Picture {
        fn new(width: usize, height: usize) -> Self {
            let luma_stride = width + 32;
            let chroma_stride = width / 2 + 16;
            Self {
                width,
                height,
                luma_stride,
                chroma_stride,
                planes: [
                    vec![FILL; luma_stride * height],
                    vec![FILL; chroma_stride * height / 2],
                    vec![FILL; chroma_stride * height / 2],
                ],
            }
        }

        fn draw(&mut self, overlay: &ClockOverlay, time: &str, label: &str) {
            let [y, u, v] = &mut self.planes;
            let mut luma =
                PlaneMut::new(y, self.luma_stride, self.width, self.height).expect("luma geometry");
            overlay.draw_luma(&mut luma, time, label);
            for plane in [u, v] {
                let mut chroma =
                    PlaneMut::new(plane, self.chroma_stride, self.width / 2, self.height / 2)
                        .expect("chroma geometry");
                overlay.draw_chroma(&mut chroma);
            }
        }

        fn luma(&self) -> Plane<'_> {
            Plane::new(&self.planes[0], self.luma_stride, self.width, self.height)
                .expect("luma geometry")
        }
    }

    #[test]
    fn time_of_day_formats_utc() {
        let t = Duration::from_millis(45_296_789);
        assert_eq!(time_of_day_utc(t), "12:34:56.789");
        // Days wrap; sub-millisecond parts are truncated.
        let t = Duration::from_secs(20_000 * 86_400) + Duration::from_micros(45_296_789_999);
        assert_eq!(time_of_day_utc(t), "12:34:56.789");
        assert_eq!(time_of_day_utc(Duration::ZERO), "00:00:00.000");
        assert_eq!(
            time_of_day_utc(Duration::from_millis(86_399_999)),
            "23:59:59.999"
        );
    }

    #[test]
    fn every_digit_has_a_distinct_shape() {
        for (i, a) in DIGITS.iter().enumerate() {
            for b in &DIGITS[i + 1..] {
                assert_ne!(a, b);
            }
            assert_eq!(char_for_mask(*a), char::from_digit(i as u32, 10));
        }
    }

    #[test]
    fn drawing_changes_pixels_inside_the_box_only() {
        let (w, h) = (320, 240);
        let overlay = ClockOverlay::new(w as u32, h as u32);
        let b = overlay.bounds();
        let mut pic = Picture::new(w, h);
        pic.draw(&overlay, "12:34:56.789", &frame_label(42));

        let (mut lit, mut dark) = (0, 0);
        for (i, &px) in pic.planes[0].iter().enumerate() {
            let (x, y) = (i % pic.luma_stride, i / pic.luma_stride);
            if x < w && b.contains(x, y) {
                lit += usize::from(px == FOREGROUND_Y);
                dark += usize::from(px == BACKGROUND_Y);
                assert!(px == FOREGROUND_Y || px == BACKGROUND_Y, "({x},{y})={px}");
            } else {
                assert_eq!(px, FILL, "luma changed outside the box at ({x},{y})");
            }
        }
        assert!(lit > 0 && dark > 0, "lit {lit}, dark {dark}");

        for plane in &pic.planes[1..] {
            for (i, &px) in plane.iter().enumerate() {
                let (x, y) = (i % pic.chroma_stride, i / pic.chroma_stride);
                let inside = x < w / 2 && b.contains(x * 2, y * 2);
                let expected = if inside { NEUTRAL_CHROMA } else { FILL };
                assert_eq!(px, expected, "chroma at ({x},{y})");
            }
        }
    }

    #[test]
    fn drawn_clock_reads_back() {
        for (w, h) in [(64, 64), (320, 240), (640, 360), (1280, 720), (1920, 1080)] {
            let overlay = ClockOverlay::new(w as u32, h as u32);
            let mut pic = Picture::new(w, h);
            pic.draw(&overlay, "12:34:56.789", &frame_label(1234));
            assert_eq!(
                overlay.read_time(&pic.luma()).as_deref(),
                Some("12:34:56.789"),
                "{w}x{h}"
            );
            if w >= 320 {
                assert_eq!(
                    overlay.read_frame_number(&pic.luma()),
                    Some(1234),
                    "{w}x{h}"
                );
            }
            pic.draw(&overlay, "07:08:09.000", &frame_label(0));
            assert_eq!(
                overlay.read_time(&pic.luma()).as_deref(),
                Some("07:08:09.000")
            );
        }
    }

    #[test]
    fn a_blank_frame_has_no_clock() {
        let overlay = ClockOverlay::new(320, 240);
        let pic = Picture::new(320, 240);
        // FILL (77) is below the threshold: every cell reads as a space.
        assert_eq!(
            overlay.read_time(&pic.luma()).as_deref(),
            Some("  :  :  .   ")
        );
        assert_eq!(overlay.read_frame_number(&pic.luma()), None);
    }

    #[test]
    fn layout_fits_every_allowed_size_and_is_chroma_aligned() {
        for (w, h) in [
            (64, 64),
            (64, 4320),
            (7680, 64),
            (320, 240),
            (1280, 720),
            (1920, 1080),
            (7680, 4320),
        ] {
            let b = ClockOverlay::new(w, h).bounds();
            assert!(
                b.x + b.width <= w as usize && b.y + b.height <= h as usize,
                "{w}x{h}"
            );
            assert!(b.width > 0 && b.height > 0);
            assert_eq!((b.x | b.y | b.width | b.height) % 2, 0, "{w}x{h}: {b:?}");
        }
        // Large and legible: at 720p the digits are 108 px tall.
        let o = ClockOverlay::new(1280, 720);
        assert_eq!(o.time.unit, 12);
    }

    #[test]
    fn short_planes_are_refused() {
        let mut data = vec![0u8; 10];
        assert!(PlaneMut::new(&mut data, 4, 4, 3).is_none());
        assert!(PlaneMut::new(&mut data, 3, 4, 2).is_none());
        assert!(PlaneMut::new(&mut data, 4, 2, 3).is_some());
    }
}
