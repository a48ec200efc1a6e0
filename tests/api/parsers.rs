//! Property tests of the parsers the fuzz targets cover (`fuzz/`), on stable so that
//! CI runs them: RFC 3339 parsing normalizes through `format`, the REST query
//! binder never panics and binds exactly what a well-formed query says, and the
//! gRPC frame guard follows frames split at any point.

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

/// RFC 3339 strings in every spelling the parser accepts: any offset, separator
/// and fraction length, in the protobuf range.
fn rfc3339_text() -> impl Strategy<Value = String> {
    (
        1..=9999_i32,
        1..=12_u32,
        1..=28_u32,
        0..24_u32,
        0..60_u32,
        0..60_u32,
        proptest::option::of("[0-9]{1,9}"),
        prop_oneof![
            Just("Z".to_owned()),
            Just("z".to_owned()),
            (0..24_u32, 0..60_u32, any::<bool>())
                .prop_map(|(h, m, plus)| format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' }))
        ],
        proptest::sample::select(vec!['T', 't', ' ']),
    )
        .prop_map(|(y, mo, d, h, mi, s, fraction, offset, sep)| {
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{fraction}{offset}")
        })
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
    fn format_of_parse_is_canonical_and_stable(text in rfc3339_text()) {
        if let Ok(t) = parse(&text) {
            let canonical = format(&t);
            prop_assert!(is_canonical(&canonical), "{} → {}", text, canonical);
            prop_assert_eq!(parse(&canonical), Ok(t));
            prop_assert_eq!(format(&parse(&canonical).unwrap()), canonical);
        }
    }

    #[test]
    fn the_query_binder_never_panics_on_arbitrary_queries(query in "[a-zA-Z_.=&%+0-9:TZ-]{0,80}|.{0,40}") {
        let mut message = DynamicMessage::new(summary_request());
        let _ = bind_query(&mut message, &query, &Bound { whole_body: false, fields: &HashSet::new() });
    }

    #[test]
    fn a_well_formed_query_binds_exactly_its_values(
        start in rfc3339_text(),
        end in rfc3339_text(),
        org in "[a-z_]{1,20}",
        camel: bool,
    ) {
        let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let (start_key, end_key, org_key) =
            if camel { ("startTime", "endTime", "organizationId") } else { ("start_time", "end_time", "organization_id") };
        let query = format!("{start_key}={}&{end_key}={}&{org_key}={org}", encode(&start), encode(&end));
        let mut message = DynamicMessage::new(summary_request());
        let result = bind_query(&mut message, &query, &Bound { whole_body: false, fields: &HashSet::new() });
        match (parse(&start), parse(&end)) {
            (Ok(s), Ok(e)) => {
                prop_assert!(result.is_ok(), "{}: {:?}", query, result.err());
                prop_assert_eq!(bound_timestamp(&message, "start_time"), Some((s.seconds, s.nanos)));
                prop_assert_eq!(bound_timestamp(&message, "end_time"), Some((e.seconds, e.nanos)));
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
