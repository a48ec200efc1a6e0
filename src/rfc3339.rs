//! Strict RFC 3339 parsing and formatting of protobuf `Timestamp`s, for REST query parameters.
//!
//! Accepted grammar (RFC 3339 §5.6 `date-time` with every digit count fixed):
//!
//! ```text
//! timestamp = date sep time [fraction] offset
//! date      = YYYY "-" MM "-" DD               ; year 0001-9999, day valid for the month
//! sep       = "T" / "t" / " "
//! time      = HH ":" MM ":" SS                 ; 00-23 : 00-59 : 00-59
//! fraction  = "." 1*9DIGIT
//! offset    = "Z" / "z" / ("+" / "-" / " ") HH ":" MM   ; 00-23 : 00-59, "-00:00" is UTC
//! ```
//!
//! Only ASCII digits are digits, and nothing may precede or follow the timestamp. The UTC
//! instant must lie within the protobuf `Timestamp` range,
//! 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
//!
//! Where this differs from RFC 3339, and why:
//! - Leap second `60` is rejected: a protobuf `Timestamp` cannot represent it, and folding it
//!   into the next second would silently change the instant.
//! - More than 9 fraction digits are rejected rather than truncated, for the same reason.
//! - A space in place of the offset's `+` is read as `+`. Form-decoding a query string turns
//!   an unencoded `+` into a space, and a space there can mean nothing else, so the instant
//!   is exactly the one the client meant. No other irregularity is tolerated.
//!
//! [`format`] writes what protobuf's JSON mapping writes (UTC, `Z`, 0/3/6/9 fraction digits),
//! so its output is accepted both by [`parse`] and by other protobuf JSON parsers.

use pbjson_types::Timestamp;
use std::fmt;

/// Why a string is not an accepted RFC 3339 timestamp; Display gives a short lowercase
/// human message suitable for an API error, e.g. "month must be 01-12".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc3339Error(&'static str);

impl fmt::Display for Rfc3339Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Rfc3339Error {}

const SHAPE: Rfc3339Error = Rfc3339Error("expected RFC 3339 like 2026-01-05T10:00:00Z");
const BAD_OFFSET: Rfc3339Error = Rfc3339Error("time zone offset must be Z, +HH:MM or -HH:MM");
const TRAILING: &str = "unexpected characters after the time zone offset";
const LEAP: &str = "leap second 60 is not supported (protobuf timestamps cannot represent it)";

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the limits of a protobuf `Timestamp`.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Matches `bytes` against a template in which `0` stands for any ASCII digit and `T` for a
/// date-time separator. Working on bytes means non-ASCII input can never split a char or pass
/// for a digit.
fn fits(bytes: &[u8], template: &[u8]) -> bool {
    bytes.len() == template.len()
        && bytes.iter().zip(template).all(|(&b, &t)| match t {
            b'0' => b.is_ascii_digit(),
            b'T' => matches!(b, b'T' | b't' | b' '),
            _ => b == t,
        })
}

/// Only called on bytes already known to be ASCII digits.
fn digits(bytes: &[u8]) -> i64 {
    bytes.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0'))
}

/// Parses the grammar in the module docs into a normalized UTC `Timestamp`.
pub fn parse(input: &str) -> Result<Timestamp, Rfc3339Error> {
    let fail = |message| Err(Rfc3339Error(message));
    if input.is_empty() {
        return fail("timestamp is empty");
    }
    if input.starts_with(char::is_whitespace) || input.ends_with(char::is_whitespace) {
        return fail("leading or trailing whitespace is not allowed");
    }
    let (head, rest) =
        (input.as_bytes().split_at_checked(19)).filter(|(head, _)| fits(head, b"0000-00-00T00:00:00")).ok_or(SHAPE)?;
    let field = |at: usize| digits(&head[at..at + 2]);
    let (year, month, day) = (digits(&head[..4]), field(5), field(8));
    let (hour, minute, second) = (field(11), field(14), field(17));

    let (nanos, offset) = match rest {
        [b'.', fraction @ ..] => {
            let len = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            match len {
                0 => return fail("fraction needs 1 to 9 digits after '.'"),
                10.. => return fail("fraction has more than 9 digits"),
                _ => (digits(&fraction[..len]) * 10_i64.pow(9 - len as u32), &fraction[len..]),
            }
        }
        _ => (0, rest),
    };

    let (sign, hh_mm) = match offset {
        [] => return fail("missing time zone offset (add Z or +HH:MM)"),
        [b'Z' | b'z'] => (1, &b"00:00"[..]),
        [b'Z' | b'z', ..] => return fail(TRAILING),
        [b'+' | b' ', hh_mm @ ..] => (1, hh_mm),
        [b'-', hh_mm @ ..] => (-1, hh_mm),
        _ => return Err(BAD_OFFSET),
    };
    if !hh_mm.get(..5).is_some_and(|hm| fits(hm, b"00:00")) {
        return Err(BAD_OFFSET);
    }
    if hh_mm.len() > 5 {
        // A space is only known to be a decoded '+' when it ends the string like one.
        return if offset[0] == b' ' { Err(BAD_OFFSET) } else { fail(TRAILING) };
    }
    let (offset_h, offset_m) = (digits(&hh_mm[..2]), digits(&hh_mm[3..5]));

    let day_ok = (1..=days_in_month(year, month)).contains(&day);
    let checks = [
        (year >= 1, "year must be 0001-9999"),
        ((1..=12).contains(&month), "month must be 01-12"),
        (day_ok, "day is out of range for the month"),
        (hour <= 23, "hour must be 00-23"),
        (minute <= 59, "minute must be 00-59"),
        (second != 60, LEAP),
        (second <= 59, "second must be 00-59"),
        (offset_h <= 23, "offset hours must be 00-23"),
        (offset_m <= 59, "offset minutes must be 00-59"),
    ];
    if let Some(&(_, message)) = checks.iter().find(|(ok, _)| !ok) {
        return fail(message);
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    let seconds = local - sign * (offset_h * 3_600 + offset_m * 60);
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
        return fail("timestamp must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z");
    }
    // Lossless: at most 9 digits, so below 10^9.
    Ok(Timestamp { seconds, nanos: nanos as i32 })
}

/// Z-normalized: "2026-01-05T08:00:00Z", fraction written with 3, 6 or 9 digits only when
/// nonzero (like protobuf's JSON mapping: ".123Z", ".123456Z", ".123456789Z").
///
/// Formatting cannot fail, so a `Timestamp` that is not normalized (nanos outside
/// 0..1_000_000_000) is normalized first, and one outside the protobuf range is clamped to
/// its nearest end; the output is therefore always accepted by [`parse`].
pub fn format(ts: &Timestamp) -> String {
    let total = i128::from(ts.seconds) * NANOS_PER_SECOND + i128::from(ts.nanos);
    let lowest = i128::from(MIN_SECONDS) * NANOS_PER_SECOND;
    let highest = (i128::from(MAX_SECONDS) + 1) * NANOS_PER_SECOND - 1;
    let total = total.clamp(lowest, highest);
    // Both casts are lossless: the clamp keeps seconds in range and nanos below 10^9.
    let seconds = total.div_euclid(NANOS_PER_SECOND) as i64;
    let nanos = total.rem_euclid(NANOS_PER_SECOND) as i64;
    format_local(seconds, nanos) + "Z"
}

/// Everything but the offset, so tests can render the same instant in any offset.
fn format_local(seconds: i64, nanos: i64) -> String {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3_600, secs / 60 % 60, secs % 60);
    let fraction = match nanos {
        0 => String::new(),
        n if n % 1_000_000 == 0 => format!(".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => format!(".{:06}", n / 1_000),
        n => format!(".{n:09}"),
    };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{fraction}")
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days: years start on March 1 so the leap day
// is last, and 400-year eras repeat exactly. Days are counted from 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T_2026: i64 = 1_767_600_000; // 2026-01-05T08:00:00Z, checked against `date -u`.

    fn ts(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn accepts() {
        const NS: i32 = 999_999_999;
        let cases = [
            ("1970-01-01T00:00:00Z", 0, 0),
            ("2026-01-05T08:00:00Z", T_2026, 0),
            ("2026-01-05T10:00:00+02:00", T_2026, 0),
            ("2026-01-05T03:00:00-05:00", T_2026, 0),
            ("2026-01-05t08:00:00z", T_2026, 0),
            ("2026-01-05 08:00:00Z", T_2026, 0),
            ("2026-01-05T10:00:00 02:00", T_2026, 0),
            ("2026-01-05T08:00:00-00:00", T_2026, 0),
            ("2026-01-05T08:00:00+00:00", T_2026, 0),
            ("2026-01-05T10:00:00.123456+02:00", T_2026, 123_456_000),
            ("2026-01-05T10:00:00.000000001 02:00", T_2026, 1),
            ("1970-01-01T00:00:00-23:59", 86_340, 0),
            ("1970-01-02T00:00:00+23:59", 60, 0),
            ("2000-02-29T00:00:00Z", 951_782_400, 0),
            ("2024-02-29T00:00:00Z", 1_709_164_800, 0),
            ("0001-01-01T00:00:00Z", MIN_SECONDS, 0),
            ("0001-01-01T01:00:00+01:00", MIN_SECONDS, 0),
            ("9999-12-31T23:59:59.999999999Z", MAX_SECONDS, NS),
            ("9999-12-31T22:59:59.999999999-01:00", MAX_SECONDS, NS),
        ];
        for (input, seconds, nanos) in cases {
            assert_eq!(parse(input), Ok(ts(seconds, nanos)), "{input}");
        }
    }

    #[test]
    fn every_fraction_length() {
        assert_eq!(parse("2026-01-05T08:00:00Z"), Ok(ts(T_2026, 0)));
        for digits in 1..=9 {
            let given = &"123456789"[..digits];
            let nanos = format!("{given:0<9}").parse().unwrap();
            let parsed = parse(&format!("2026-01-05T08:00:00.{given}Z"));
            assert_eq!(parsed, Ok(ts(T_2026, nanos)), "{given}");
        }
    }

    #[test]
    fn rejects() {
        let (shape, offset, day) = (SHAPE.0, BAD_OFFSET.0, "day is out of range for the month");
        let ws = "leading or trailing whitespace is not allowed";
        let missing = "missing time zone offset (add Z or +HH:MM)";
        let no_digits = "fraction needs 1 to 9 digits after '.'";
        let ten_digits = "fraction has more than 9 digits";
        let range = "timestamp must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z";
        let cases = [
            ("", "timestamp is empty"),
            (" 2026-01-05T08:00:00Z", ws),
            ("2026-01-05T08:00:00Z ", ws),
            ("2026-01-05T08:00:00Z\n", ws),
            ("\u{a0}2026-01-05T08:00:00Z", ws),
            ("2026-01-05", shape),
            ("2026-01-05T08:00Z", shape),
            ("26-01-05T08:00:00Z", shape),
            ("+2026-01-05T08:00:00Z", shape),
            ("20260-01-05T08:00:00Z", shape),
            ("2026-1-05T08:00:00Z", shape),
            ("2026/01/05T08:00:00Z", shape),
            ("2026-01-05X08:00:00Z", shape),
            ("2026-01-05_08:00:00Z", shape),
            ("2026-01-05  08:00:00Z", shape),
            ("2026-01-05T8:00:00Z", shape),
            ("\u{ff12}026-01-05T08:00:00Z", shape),
            ("2026-01-05T08:00:0\u{663}Z", shape),
            ("2026-01-05T08:00:00", missing),
            ("2026-01-05T08:00:00.123", missing),
            ("2026-01-05T08:00:00.Z", no_digits),
            ("2026-01-05T08:00:00.1234567890Z", ten_digits),
            ("2026-01-05T08:00:00,5Z", offset),
            ("2026-01-05T08:00:00.5\u{e9}Z", offset),
            ("2026-01-05T08:00:00+0200", offset),
            ("2026-01-05T08:00:00+02", offset),
            ("2026-01-05T08:00:00+2:00", offset),
            ("2026-01-05T08:00:00+\u{663}2:00", offset),
            ("2026-01-05T08:00:00UTC", offset),
            ("2026-01-05T08:00:00 Z", offset),
            ("2026-01-05T08:00:00 02:00x", offset),
            ("2026-01-05T08:00:00 02:00:00", offset),
            ("2026-01-05T08:00:00Zjunk", TRAILING),
            ("2026-01-05T08:00:00+02:00:00", TRAILING),
            ("2026-01-05T08:00:00+24:00", "offset hours must be 00-23"),
            ("2026-01-05T08:00:00-02:60", "offset minutes must be 00-59"),
            ("0000-01-01T00:00:00Z", "year must be 0001-9999"),
            ("0000-12-31T23:00:00-01:00", "year must be 0001-9999"),
            ("2026-00-05T08:00:00Z", "month must be 01-12"),
            ("2026-13-05T08:00:00Z", "month must be 01-12"),
            ("2026-01-00T08:00:00Z", day),
            ("2026-01-32T08:00:00Z", day),
            ("2026-04-31T08:00:00Z", day),
            ("2023-02-29T08:00:00Z", day),
            ("1900-02-29T08:00:00Z", day),
            ("2100-02-29T08:00:00Z", day),
            ("2026-01-05T24:00:00Z", "hour must be 00-23"),
            ("2026-01-05T08:60:00Z", "minute must be 00-59"),
            ("2016-12-31T23:59:60Z", LEAP),
            ("2026-01-05T08:00:61Z", "second must be 00-59"),
            ("0001-01-01T00:00:00+00:01", range),
            ("9999-12-31T23:59:59-00:01", range),
        ];
        for (input, message) in cases {
            let got = parse(input).map_err(|e| e.to_string());
            assert_eq!(got, Err(message.to_owned()), "{input:?}");
        }
        let err: Box<dyn std::error::Error> = Box::new(parse("2026-13-01T00:00:00Z").unwrap_err());
        assert_eq!(err.to_string(), "month must be 01-12");
    }

    #[test]
    fn formats_like_protobuf_json() {
        let max = ts(MAX_SECONDS, 999_999_999);
        let cases = [
            (ts(T_2026, 0), "2026-01-05T08:00:00Z"),
            (ts(T_2026, 123_000_000), "2026-01-05T08:00:00.123Z"),
            (ts(T_2026, 1_000_000), "2026-01-05T08:00:00.001Z"),
            (ts(T_2026, 123_456_000), "2026-01-05T08:00:00.123456Z"),
            (ts(T_2026, 1_000), "2026-01-05T08:00:00.000001Z"),
            (ts(T_2026, 123_456_789), "2026-01-05T08:00:00.123456789Z"),
            (ts(T_2026, 1), "2026-01-05T08:00:00.000000001Z"),
            (ts(MIN_SECONDS, 0), "0001-01-01T00:00:00Z"),
            (max, "9999-12-31T23:59:59.999999999Z"),
            // Not normalized or out of range: normalized, then clamped.
            (ts(0, -1), "1969-12-31T23:59:59.999999999Z"),
            (ts(0, 1_500_000_000), "1970-01-01T00:00:01.500Z"),
            (ts(i64::MAX, i32::MAX), "9999-12-31T23:59:59.999999999Z"),
            (ts(i64::MIN, i32::MIN), "0001-01-01T00:00:00Z"),
        ];
        for (timestamp, expected) in cases {
            assert_eq!(format(&timestamp), expected);
        }
    }

    /// Checks the civil-date algorithms against the plain leap-year rule, day by day.
    #[test]
    fn civil_days_match_the_calendar() {
        let (mut y, mut m, mut d) = (1, 1, 1);
        for days in days_from_civil(1, 1, 1)..=days_from_civil(9999, 12, 31) {
            assert_eq!(civil_from_days(days), (y, m, d));
            assert_eq!(days_from_civil(y, m, d), days);
            d += 1;
            if d > days_in_month(y, m) {
                (m, d) = (m % 12 + 1, 1);
                y += i64::from(m == 1);
            }
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    fn timestamp() -> impl Strategy<Value = Timestamp> {
        let seconds = prop_oneof![
            MIN_SECONDS..=MAX_SECONDS,
            MIN_SECONDS..MIN_SECONDS + 200_000,
            MAX_SECONDS - 200_000..=MAX_SECONDS,
        ];
        let nanos = prop_oneof![
            Just(0),
            (0..1_000).prop_map(|n| n * 1_000_000),
            (0..1_000_000).prop_map(|n| n * 1_000),
            0..1_000_000_000,
        ];
        (seconds, nanos).prop_map(|(seconds, nanos)| ts(seconds, nanos))
    }

    /// The same instant as local time in `offset` minutes east of UTC.
    fn format_in_offset(t: &Timestamp, offset: i64, sep: char, space_for_plus: bool) -> String {
        let mut text = format_local(t.seconds + offset * 60, i64::from(t.nanos));
        text.replace_range(10..11, &sep.to_string());
        let sign = match offset {
            ..0 => '-',
            _ if space_for_plus => ' ',
            _ => '+',
        };
        text + &format!("{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60)
    }

    fn assert_valid_if_ok(input: &str) -> Result<(), TestCaseError> {
        if let Ok(t) = parse(input) {
            prop_assert!((MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds), "{input:?}");
            prop_assert!((0..1_000_000_000).contains(&t.nanos), "{input:?}");
        }
        Ok(())
    }

    fn mutated() -> impl Strategy<Value = String> {
        let ch =
            prop_oneof![any::<char>(), proptest::sample::select(&['0', '9', ' ', '+', '-', ':', '.', 't', 'Z'][..])];
        let edit = (any::<proptest::sample::Index>(), 0..3_u8, ch);
        (timestamp(), proptest::collection::vec(edit, 1..4)).prop_map(|(t, edits)| {
            let mut chars: Vec<char> = format(&t).chars().collect();
            for (index, kind, ch) in edits {
                let i = index.index(chars.len() + 1);
                match kind {
                    0 => chars.insert(i, ch),
                    1 if i < chars.len() => chars[i] = ch,
                    _ if i < chars.len() => drop(chars.remove(i)),
                    _ => {}
                }
            }
            chars.into_iter().collect()
        })
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(t in timestamp()) {
            prop_assert_eq!(parse(&format(&t)), Ok(t));
        }

        #[test]
        fn any_offset_gives_the_same_instant(
            t in timestamp(),
            offset in -(23 * 60 + 59)..=23 * 60 + 59_i64,
            sep in proptest::sample::select(&['T', 't', ' '][..]),
            space_for_plus: bool,
        ) {
            prop_assume!((MIN_SECONDS..=MAX_SECONDS).contains(&(t.seconds + offset * 60)));
            let text = format_in_offset(&t, offset, sep, space_for_plus);
            prop_assert_eq!(parse(&text), Ok(t), "{}", text);
        }

        #[test]
        fn never_panics_on_arbitrary_strings(input in ".*") {
            assert_valid_if_ok(&input)?;
        }

        #[test]
        fn never_panics_on_mutated_timestamps(input in mutated()) {
            assert_valid_if_ok(&input)?;
        }
    }
}
