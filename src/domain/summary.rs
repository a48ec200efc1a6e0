//! The summary read: what a caller asks for, and what the store answers.

use super::event::OrgId;
use super::time::{TimeRange, timestamp_nanos};
use crate::error::{Error, Violations};
use crate::proto::audit as pb;

/// A summary request as the caller sent it, before tenancy is applied.
#[derive(Debug, Clone)]
pub struct SummaryRequest {
    pub range: TimeRange,
    pub organization_id: Option<OrgId>,
}

/// Which organizations a summary counts, after tenancy was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgScope {
    One(OrgId),
    All,
}

#[derive(Debug, Clone)]
pub struct SummaryQuery {
    pub range: TimeRange,
    pub scope: OrgScope,
}

/// One bucket of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionCount {
    pub action: String,
    pub count: i64,
    pub failure_count: i64,
}

impl TryFrom<pb::GetEventsSummaryRequest> for SummaryRequest {
    type Error = Error;

    fn try_from(request: pb::GetEventsSummaryRequest) -> Result<Self, Error> {
        let mut violations = Violations::default();
        let start = violations.check("start_time", instant(request.start_time.as_ref()));
        let end = violations.check("end_time", instant(request.end_time.as_ref()));
        let organization_id = match request.organization_id.as_str() {
            // proto3 cannot tell an empty string from an absent field; both mean "not given".
            "" => None,
            raw => violations.check("organization_id", OrgId::parse(raw)),
        };
        let range = match (start, end) {
            (Some(start), Some(end)) => violations
                .check("end_time", TimeRange::new(start, end).ok_or_else(|| "must be after start_time".to_owned())),
            _ => None,
        };
        match range {
            Some(range) if violations.is_empty() => Ok(Self { range, organization_id }),
            // Every way to lack a range noted a violation.
            _ => Err(violations.into_error()),
        }
    }
}

/// One end of the range, in nanoseconds since the epoch.
fn instant(ts: Option<&pbjson_types::Timestamp>) -> Result<i128, String> {
    let ts = ts.ok_or("is required (RFC 3339, e.g. 2026-01-05T00:00:00Z)")?;
    timestamp_nanos(ts).ok_or_else(|| "is not a valid timestamp".to_owned())
}
