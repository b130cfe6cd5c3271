//! The values in a playlist's tags, read strictly: attribute lists, URIs, decimal
//! integers, decimal seconds (exactly, never through a float) and ISO 8601 date-times.
//! Each refusal is a reason; `read` names the line.

use std::time::Duration;

/// The most attributes one tag may carry.
pub const MAX_ATTRIBUTES: usize = 32;
/// The longest URI read (a private stream's URIs carry its viewer's token).
pub const MAX_URI: usize = 2048;
/// The longest duration believed, in seconds (a day).
const MAX_SECONDS: u64 = 86_400;

/// An attribute list (`KEY=VALUE,KEY="quoted, value"`), quotes removed.
pub(super) fn attributes(list: &str) -> Result<Vec<(&str, &str)>, &'static str> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        if out.len() >= MAX_ATTRIBUTES {
            return Err("too many attributes");
        }
        let (key, after) = rest.split_once('=').ok_or("an attribute without =")?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            quoted
                .split_once('"')
                .ok_or("an unterminated quoted attribute")?
        } else {
            after.split_at(after.find(',').unwrap_or(after.len()))
        };
        out.push((key.trim(), value));
        rest = match next.strip_prefix(',') {
            Some(r) => r,
            None if next.is_empty() => next,
            None => return Err("garbage after an attribute"),
        };
    }
    Ok(out)
}

pub(super) fn uri(s: &str) -> Result<String, &'static str> {
    if s.is_empty() || s.len() > MAX_URI {
        return Err("a URI that is empty or too long");
    }
    Ok(s.to_owned())
}

/// A decimal integer of at most 20 digits.
pub(super) fn integer(s: &str) -> Result<u64, &'static str> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal integer");
    }
    s.parse().map_err(|_| "an integer out of range")
}

/// Decimal seconds (`2`, `2.002`, `.5`), 0 to a day, exact to the nanosecond (digits
/// after the ninth are dropped).
pub(super) fn seconds(s: &str) -> Result<Duration, &'static str> {
    const BAD: &str = "not a duration in seconds";
    let s = s.trim();
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if s.len() > 32 || (whole.is_empty() && fraction.is_empty()) || !digits(whole) {
        return Err(BAD);
    }
    if !digits(fraction) {
        return Err(BAD);
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| BAD)?
    };
    let mut nanos = 0u32;
    for (i, b) in fraction.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    let d = Duration::new(secs.min(MAX_SECONDS + 1), nanos);
    if d > Duration::from_secs(MAX_SECONDS) {
        return Err(BAD);
    }
    Ok(d)
}

/// An ISO 8601 date-time as `EXT-X-PROGRAM-DATE-TIME` writes it
/// (`YYYY-MM-DDThh:mm:ss[.fff…][Z|±hh:mm|±hhmm]`), in milliseconds since the Unix epoch.
pub(super) fn date_time_ms(s: &str) -> Result<i64, &'static str> {
    const BAD: &str = "not an ISO 8601 date-time";
    let s = s.trim();
    if s.len() < 20 || s.len() > 40 || !s.is_ascii() {
        return Err(BAD);
    }
    let b = s.as_bytes();
    if b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(BAD);
    }
    let num = |from: usize, to: usize| -> Result<i64, &'static str> {
        let part = &s[from..to];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(BAD);
        }
        part.parse().map_err(|_| BAD)
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(BAD);
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(BAD);
        }
        let first3 = &fraction[..digits.min(3)];
        let scale = 10i64.pow(3 - first3.len() as u32);
        millis = first3.parse::<i64>().map_err(|_| BAD)? * scale;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(BAD),
            };
            let hm = rest[1..].replace(':', "");
            if hm.len() != 4 || !hm.bytes().all(|c| c.is_ascii_digit()) {
                return Err(BAD);
            }
            let h: i64 = hm[..2].parse().map_err(|_| BAD)?;
            let m: i64 = hm[2..].parse().map_err(|_| BAD)?;
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
