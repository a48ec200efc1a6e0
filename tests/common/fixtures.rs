//! What the tests send: timestamps, events, the week the fixtures fall in, and a
//! batch over the size limit. Shared by the api, api_env and telemetry test targets.

// Each target uses only part of it.
#![allow(dead_code)]

use audit_service::proto::audit as pb;

/// The summary query of the week the fixtures fall in.
pub const WEEK: &str = "start_time=2026-03-02T00:00:00Z&end_time=2026-03-09T00:00:00Z";

/// The summary request of [`WEEK`], platform-wide.
pub fn week() -> pb::GetEventsSummaryRequest {
    pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-03-02T00:00:00Z")),
        end_time: Some(ts("2026-03-09T00:00:00Z")),
        organization_id: String::new(),
    }
}

/// Ten events with 1000-byte user agents: a batch over a 4096-byte size limit.
pub fn oversized_batch() -> pb::BatchCreateEventsRequest {
    pb::BatchCreateEventsRequest {
        events: (0..10)
            .map(|i| pb::AuditEvent {
                user_agent: "x".repeat(1000),
                ..event(&format!("big{i}"), "org_a", "session.login", "success", "2026-03-02T10:00:00Z")
            })
            .collect(),
    }
}

/// Parses an RFC 3339 time for fixtures.
pub fn ts(text: &str) -> pbjson_types::Timestamp {
    audit_service::rfc3339::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn event(id: &str, org: &str, action: &str, result: &str, at: &str) -> pb::AuditEvent {
    pb::AuditEvent {
        id: id.into(),
        timestamp: Some(ts(at)),
        organization_id: org.into(),
        action: action.into(),
        actor: Some(pb::Actor { r#type: "identity".into(), id: "usr_4f18acec".into() }),
        target: Some(pb::Target { r#type: "session".into(), id: "ses_1".into() }),
        result: result.into(),
        ip: "192.0.2.10".into(),
        user_agent: "test".into(),
        details: None,
        log_index: 0,
    }
}

/// The instant `seconds` after the Unix epoch.
pub fn unix(seconds: i64) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds, nanos: 0 }
}
