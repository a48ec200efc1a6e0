//! Property tests of the parsers the fuzz targets cover (`fuzz/`), on stable so that
//! CI runs them: RFC 3339 parsing yields the instant computed here by plain
//! arithmetic (and refuses exactly the ones out of range), `format` is canonical,
//! the REST query binder never panics and binds exactly what a well-formed query
//! says, and the gRPC frame guard follows frames split at any point.

use std::collections::HashSet;

use audit_service::proto::FILE_DESCRIPTOR_SET;
use audit_service::rest::binding::{Bound, bind_query};
use audit_service::rfc3339::{format, parse};
use audit_service::server::limits::message::FrameGuard;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};

fn summary_request() -> MessageDescriptor {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .unwrap()
        .get_message_by_name("avnology.audit.v1.GetEventsSummaryRequest")
        .unwrap()
}

/// First and last second of the protobuf range (0001-01-01 to 9999-12-31).
const FIRST_SECOND: i64 = -62_135_596_800;
const LAST_SECOND: i64 = 253_402_300_799;

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar,
/// counted year by year and month by month: slow, but obviously right.
fn days_since_epoch(year: i32, month: u32, day: u32) -> i64 {
    let leap = |y: i32| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let year_days = |y: i32| if leap(y) { 366 } else { 365 };
    let mut days: i64 =
        if year >= 1970 { (1970..year).map(year_days).sum() } else { -(year..1970).map(year_days).sum::<i64>() };
    let month_days = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    days += month_days[..month as usize - 1].iter().sum::<i64>();
    days + i64::from(day) - 1
}

/// An RFC 3339 text in one of the spellings the parser accepts (any offset,
/// separator and fraction length), with the instant it names as computed here:
/// `None` when that instant lies outside the protobuf range.
#[derive(Debug, Clone)]
struct Sample {
    text: String,
    instant: Option<(i64, i32)>,
}

fn rfc3339_sample() -> impl Strategy<Value = Sample> {
    (
        prop_oneof![1..=9999_i32, Just(1), Just(9999), 1969..=1971_i32],
        1..=12_u32,
        1..=28_u32,
        0..24_u32,
        0..60_u32,
        0..60_u32,
        proptest::option::of("[0-9]{1,9}"),
        proptest::option::of((0..24_u32, 0..60_u32, any::<bool>(), any::<bool>())),
        proptest::sample::select(vec!['T', 't', ' ']),
    )
        .prop_map(|(y, mo, d, h, mi, s, fraction, offset, sep)| {
            let (offset_text, offset_seconds) = match offset {
                None => ("Z".to_owned(), 0),
                Some((0, 0, _, lower)) => ((if lower { "z" } else { "Z" }).to_owned(), 0),
                Some((oh, om, plus, _)) => {
                    let seconds = i64::from(oh * 3600 + om * 60);
                    (format!("{}{oh:02}:{om:02}", if plus { '+' } else { '-' }), if plus { seconds } else { -seconds })
                }
            };
            let nanos = fraction.as_ref().map_or(0, |f| format!("{f:0<9}").parse::<i32>().unwrap());
            let local = days_since_epoch(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s);
            let seconds = local - offset_seconds;
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            Sample {
                text: format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{fraction}{offset_text}"),
                instant: (FIRST_SECOND..=LAST_SECOND).contains(&seconds).then_some((seconds, nanos)),
            }
        })
}

#[test]
fn the_day_counting_oracle_agrees_with_known_instants() {
    assert_eq!(days_since_epoch(1970, 1, 1), 0);
    assert_eq!(days_since_epoch(2000, 3, 1), 11_017);
    assert_eq!(days_since_epoch(1969, 12, 31), -1);
    assert_eq!(days_since_epoch(1, 1, 1) * 86_400, FIRST_SECOND);
    assert_eq!(days_since_epoch(9999, 12, 31) * 86_400 + 86_399, LAST_SECOND);
}

fn is_canonical(text: &str) -> bool {
    let Some(body) = text.strip_suffix('Z') else { return false };
    match body.split_once('.') {
        None => body.len() == 19,
        Some((head, fraction)) => head.len() == 19 && [3, 6, 9].contains(&fraction.len()),
    }
}

fn bound_timestamp(message: &DynamicMessage, field: &str) -> Option<(i64, i32)> {
    let Value::Message(ts) = message.get_field_by_name(field)?.into_owned() else { return None };
    let seconds = ts.get_field_by_name("seconds")?.as_i64()?;
    let nanos = ts.get_field_by_name("nanos")?.as_i32()?;
    Some((seconds, nanos))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_yields_the_computed_instant_and_format_is_canonical(sample in rfc3339_sample()) {
        let parsed = parse(&sample.text);
        match sample.instant {
            Some((seconds, nanos)) => {
                let t = parsed.map_err(|e| TestCaseError::fail(format!("{}: refused: {e}", sample.text)))?;
                prop_assert_eq!((t.seconds, t.nanos), (seconds, nanos), "{}", sample.text);
                let canonical = format(&t);
                prop_assert!(is_canonical(&canonical), "{} → {}", sample.text, canonical);
                prop_assert_eq!(parse(&canonical), Ok(t));
            }
            None => prop_assert!(parsed.is_err(), "{} is out of range: {:?}", sample.text, parsed),
        }
    }

    #[test]
    fn the_query_binder_never_panics_on_arbitrary_queries(query in "[a-zA-Z_.=&%+0-9:TZ-]{0,80}|.{0,40}") {
        let mut message = DynamicMessage::new(summary_request());
        let _ = bind_query(&mut message, &query, &Bound { whole_body: false, fields: &HashSet::new() });
    }

    #[test]
    fn a_well_formed_query_binds_exactly_its_values(
        start in rfc3339_sample(),
        end in rfc3339_sample(),
        org in "[a-z_]{1,20}",
        camel: bool,
    ) {
        let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let (start_key, end_key, org_key) =
            if camel { ("startTime", "endTime", "organizationId") } else { ("start_time", "end_time", "organization_id") };
        let query =
            format!("{start_key}={}&{end_key}={}&{org_key}={org}", encode(&start.text), encode(&end.text));
        let mut message = DynamicMessage::new(summary_request());
        let result = bind_query(&mut message, &query, &Bound { whole_body: false, fields: &HashSet::new() });
        match (start.instant, end.instant) {
            (Some(s), Some(e)) => {
                prop_assert!(result.is_ok(), "{}: {:?}", query, result.err());
                prop_assert_eq!(bound_timestamp(&message, "start_time"), Some(s));
                prop_assert_eq!(bound_timestamp(&message, "end_time"), Some(e));
                let bound_org = message.get_field_by_name("organization_id").unwrap().into_owned();
                prop_assert_eq!(bound_org.as_str(), Some(org.as_str()));
            }
            _ => prop_assert!(result.is_err(), "{}", query),
        }
    }

    #[test]
    fn the_frame_guard_follows_frames_split_anywhere(
        lengths in proptest::collection::vec(0..300_u32, 1..6),
        splits in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
        limit in 0..400_usize,
    ) {
        let mut stream = Vec::new();
        for len in &lengths {
            stream.push(0);
            stream.extend_from_slice(&len.to_be_bytes());
            stream.extend(std::iter::repeat_n(0xAB, *len as usize));
        }
        let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(0);
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut guard = FrameGuard::new((), limit);
        let mut refused = false;
        for pair in cuts.windows(2) {
            if guard.inspect(&stream[pair[0]..pair[1]]).is_err() {
                refused = true;
                break;
            }
        }
        prop_assert_eq!(refused, lengths.iter().any(|&len| len as usize > limit));
    }
}
