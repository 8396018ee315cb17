//! The field parsers both formats share: decimal numbers read exactly into integer
//! nanoseconds, durations, the three timestamp forms, and statuses. Each returns its
//! error message without the field's name; the caller prefixes it.

use super::Recorded;

pub(super) const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Why a number did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Num {
    /// Not `digits[.digits]`.
    Bad,
    /// Too large for `u64` nanoseconds.
    TooBig,
}

/// `digits[.digits]` times `unit` (a power of ten), read exactly in integers; digits
/// below a nanosecond are dropped. No sign, exponent, `inf` or `NaN`.
pub(super) fn decimal(s: &[u8], unit: u64) -> Result<u64, Num> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if int.is_empty() || !int.iter().all(u8::is_ascii_digit) {
        return Err(Num::Bad);
    }
    if let Some(f) = frac
        && (f.is_empty() || !f.iter().all(u8::is_ascii_digit))
    {
        return Err(Num::Bad);
    }
    let mut whole = 0u64;
    for &d in int {
        whole = whole.checked_mul(10).and_then(|w| w.checked_add(u64::from(d - b'0'))).ok_or(Num::TooBig)?;
    }
    let mut total = whole.checked_mul(unit).ok_or(Num::TooBig)?;
    let mut scale = unit;
    for &d in frac.unwrap_or_default() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        total = total.checked_add(u64::from(d - b'0') * scale).ok_or(Num::TooBig)?;
    }
    Ok(total)
}

/// A CSV latency: `12ms`, `1.5s`, `250us` (or `µs`), or bare milliseconds; nanoseconds.
pub(super) fn latency(s: &str) -> Result<u64, String> {
    let (digits, unit) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1_000_000)
    } else if let Some(d) = s.strip_suffix("us").or_else(|| s.strip_suffix("µs")) {
        (d, 1_000)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, NANOS_PER_SEC)
    } else {
        (s, 1_000_000)
    };
    match decimal(digits.as_bytes(), unit) {
        Ok(ns) => Ok(ns),
        Err(Num::TooBig) => Err(format!("`{}` is out of range", show(s))),
        Err(Num::Bad) if s.starts_with('-') && decimal(&digits.as_bytes()[1..], unit).is_ok() => {
            Err(format!("`{}` is negative", show(s)))
        }
        Err(Num::Bad) => Err(format!("`{}` is not a duration (12ms, 1.5s, 250us or milliseconds)", show(s))),
    }
}

/// An access log's request time: seconds when it has a `.` (nginx `$request_time`),
/// else whole microseconds (Apache `%D`); nanoseconds.
pub(super) fn request_time(s: &str) -> Result<u64, String> {
    let unit = if s.contains('.') { NANOS_PER_SEC } else { 1_000 };
    match decimal(s.as_bytes(), unit) {
        Ok(ns) => Ok(ns),
        Err(Num::TooBig) => Err(format!("`{}` is out of range", show(s))),
        Err(Num::Bad) => Err(format!(
            "`{}` is not seconds with a decimal point (0.012, nginx $request_time) or whole microseconds (12000, Apache %D)",
            show(s)
        )),
    }
}

/// A CSV timestamp, Unix seconds or RFC 3339: nanoseconds since the Unix epoch.
pub(super) fn timestamp(s: &str) -> Result<i64, String> {
    const EXPECTED: &str = "Unix seconds such as 1700000000.125, or RFC 3339 such as 2026-12-01T10:00:00.250Z";
    let b = s.as_bytes();
    let parsed = if b.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        decimal(b, NANOS_PER_SEC).map(|ns| i64::try_from(ns).map_err(|_| Num::TooBig)).and_then(|r| r)
    } else {
        rfc3339(b)
    };
    parsed.map_err(|e| match e {
        Num::TooBig => format!("`{}` is out of range (1678 to 2262; Unix seconds, not milliseconds)", show(s)),
        Num::Bad => format!("`{}` is not a timestamp ({EXPECTED})", show(s)),
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `t`, a space, `z` allowed (RFC 3339 5.6).
fn rfc3339(b: &[u8]) -> Result<i64, Num> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(Num::Bad);
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (time_len, secs) = clock(&b[11..])?;
    let rest = &b[11 + time_len..];
    let (frac, zone) = fraction(rest)?;
    let offset = match zone {
        [b'Z' | b'z'] => 0,
        [sign, h1, h2, b':', m1, m2] => zone_offset(*sign, [*h1, *h2], [*m1, *m2])?,
        _ => return Err(Num::Bad),
    };
    to_nanos(y as i64, mo, d, secs, frac, offset)
}

/// A zone offset `±HH:MM` or `±HHMM` in seconds, from its sign and digit pairs.
fn zone_offset(sign: u8, hours: [u8; 2], minutes: [u8; 2]) -> Result<i64, Num> {
    let (h, m) = (digits(&hours)?, digits(&minutes)?);
    if h > 23 || m > 59 {
        return Err(Num::Bad);
    }
    let off = i64::from(h * 3600 + m * 60);
    match sign {
        b'+' => Ok(off),
        b'-' => Ok(-off),
        _ => Err(Num::Bad),
    }
}

/// An access log's `10/Oct/2000:13:55:36 -0700` (`.frac` after the seconds allowed).
pub(super) fn clf_time(s: &str) -> Result<i64, String> {
    clf(s.as_bytes()).map_err(|e| match e {
        Num::TooBig => format!("`{}` is out of range (1678 to 2262)", show(s)),
        Num::Bad => format!("`{}` is not a log time (as 10/Oct/2000:13:55:36 -0700)", show(s)),
    })
}

fn clf(b: &[u8]) -> Result<i64, Num> {
    if b.len() < 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return Err(Num::Bad);
    }
    const MONTHS: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let d = digits(&b[0..2])?;
    let mo = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(&b[3..6])).ok_or(Num::Bad)? as u32 + 1;
    let y = digits(&b[7..11])?;
    let (time_len, secs) = clock(&b[12..])?;
    let (frac, zone) = fraction(&b[12 + time_len..])?;
    let offset = match zone {
        [b' ', sign, h1, h2, m1, m2] => zone_offset(*sign, [*h1, *h2], [*m1, *m2])?,
        _ => return Err(Num::Bad),
    };
    to_nanos(y as i64, mo, d, secs, frac, offset)
}

/// `HH:MM:SS` at the start of `b`: its length (8) and the seconds into the day. A leap
/// second (`:60`) is accepted and counts as the next minute's first.
fn clock(b: &[u8]) -> Result<(usize, u32), Num> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return Err(Num::Bad);
    }
    let (h, m, s) = (digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    if h > 23 || m > 59 || s > 60 {
        return Err(Num::Bad);
    }
    Ok((8, h * 3600 + m * 60 + s))
}

/// An optional `.digits` at the start of `b`: its nanoseconds and what follows.
fn fraction(b: &[u8]) -> Result<(u64, &[u8]), Num> {
    match b.split_first() {
        Some((b'.', rest)) => {
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(Num::Bad);
            }
            let mut ns = 0;
            let mut scale = NANOS_PER_SEC;
            for &d in &rest[..n] {
                scale /= 10;
                ns += u64::from(d - b'0') * scale;
            }
            Ok((ns, &rest[n..]))
        }
        _ => Ok((0, b)),
    }
}

fn digits(b: &[u8]) -> Result<u32, Num> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(Num::Bad);
    }
    Ok(b.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// Nanoseconds since the epoch of a civil date and time at `offset` seconds east of UTC.
fn to_nanos(y: i64, mo: u32, d: u32, secs: u32, frac: u64, offset: i64) -> Result<i64, Num> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return Err(Num::Bad);
    }
    let s = days_from_civil(y, mo, d) * 86_400 + i64::from(secs) - offset;
    s.checked_mul(NANOS_PER_SEC as i64).and_then(|n| n.checked_add(frac as i64)).ok_or(Num::TooBig)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A status, `100..=599`.
pub(super) fn status(s: &str) -> Option<u16> {
    if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|s| (100..=599).contains(s))
}

/// A CSV outcome: a status or a word.
pub(super) fn outcome(s: &str) -> Result<(Recorded, Option<u16>), String> {
    if let Some(code) = status(s) {
        return Ok((Recorded::from_status(code), Some(code)));
    }
    let word = |w: &str| s.eq_ignore_ascii_case(w);
    let recorded = if word("success") || word("ok") {
        Recorded::Success
    } else if word("failure") || word("error") {
        Recorded::Failure
    } else if word("overloaded") || word("timeout") {
        Recorded::Overloaded
    } else if word("ignored") {
        Recorded::Ignored
    } else {
        return Err(format!(
            "`{}` is not an HTTP status (100..=599) or one of success, ok, failure, error, overloaded, timeout, ignored",
            show(s)
        ));
    };
    Ok((recorded, None))
}

/// A field's text for a message: at most 40 characters, so that a runaway field does
/// not make a runaway message.
pub(super) fn show(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Nanoseconds as seconds for a message: `1.5s`, `75s`, `0.000001s`.
pub(super) fn secs(ns: u64) -> String {
    let (s, frac) = (ns / NANOS_PER_SEC, ns % NANOS_PER_SEC);
    if frac == 0 {
        return format!("{s}s");
    }
    let f = format!("{frac:09}");
    format!("{s}.{}s", f.trim_end_matches('0'))
}
