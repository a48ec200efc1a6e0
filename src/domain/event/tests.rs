//! The future bound of a batch, against a fixed clock.

use std::time::Duration;

use super::EventBatch;
use crate::domain::UnixNanos;
use crate::error::Error;
use crate::proto::audit as pb;

const NOW_S: i64 = 1_790_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn batch(offsets_ns: &[i64]) -> EventBatch {
    let events = offsets_ns
        .iter()
        .enumerate()
        .map(|(i, offset)| {
            let at = NOW_S * 1_000_000_000 + offset;
            pb::AuditEvent {
                id: format!("e{i}"),
                timestamp: Some(UnixNanos::from_nanos(at).to_timestamp()),
                organization_id: "org_a".into(),
                action: "session.login".into(),
                result: "success".into(),
                ..Default::default()
            }
        })
        .collect();
    EventBatch::try_from(pb::BatchCreateEventsRequest { events }).expect("valid events")
}

fn now() -> UnixNanos {
    UnixNanos::from_nanos(NOW_S * 1_000_000_000)
}

fn refused_fields(result: Result<(), Error>) -> Vec<String> {
    match result {
        Err(Error::InvalidArgument { violations, .. }) => violations.into_iter().map(|v| v.field).collect(),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[test]
fn the_bound_itself_is_accepted_and_a_nanosecond_past_it_refused() {
    let hour_ns = 3_600_000_000_000;
    assert!(batch(&[-hour_ns, 0, hour_ns]).refuse_dated_after(now(), HOUR).is_ok());
    assert_eq!(refused_fields(batch(&[0, hour_ns + 1]).refuse_dated_after(now(), HOUR)), ["events[1].timestamp"]);
}

#[test]
fn every_late_event_is_named_and_the_message_says_the_bound() {
    let result = batch(&[0, 7_200_000_000_000, 0, 7_200_000_000_000]).refuse_dated_after(now(), HOUR);
    let Err(Error::InvalidArgument { message, violations }) = result else { panic!("refused") };
    let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["events[1].timestamp", "events[3].timestamp"]);
    assert!(message.starts_with("batch refused, nothing stored: events[1].timestamp"), "{message}");
    assert!(message.contains("3600 seconds") && message.contains("2026-09-21T15:13:20Z"), "{message}");
}

#[test]
fn no_skew_refuses_anything_after_now_and_a_huge_one_does_not_overflow() {
    assert_eq!(refused_fields(batch(&[1]).refuse_dated_after(now(), Duration::ZERO)), ["events[0].timestamp"]);
    assert!(batch(&[0]).refuse_dated_after(now(), Duration::ZERO).is_ok());
    assert!(batch(&[i64::from(u32::MAX) * 1_000_000_000]).refuse_dated_after(now(), Duration::MAX).is_ok());
}
