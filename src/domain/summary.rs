//! The summary read: what a caller asks for, and what the store answers.

use super::event::OrgId;
use super::time::{TimeRange, timestamp_nanos};
use crate::error::{Error, FieldViolation};
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
        let mut violations = Vec::new();
        let mut instant = |field: &str, ts: Option<&pbjson_types::Timestamp>| match ts {
            None => {
                violations.push(FieldViolation::new(field, "is required (RFC 3339, e.g. 2026-01-05T00:00:00Z)"));
                None
            }
            Some(ts) => {
                let nanos = timestamp_nanos(ts);
                if nanos.is_none() {
                    violations.push(FieldViolation::new(field, "is not a valid timestamp"));
                }
                nanos
            }
        };
        let start = instant("start_time", request.start_time.as_ref());
        let end = instant("end_time", request.end_time.as_ref());
        let organization_id = match request.organization_id.as_str() {
            // proto3 cannot tell an empty string from an absent field; both mean "not given".
            "" => None,
            raw => match OrgId::parse(raw) {
                Ok(org) => Some(org),
                Err(description) => {
                    violations.push(FieldViolation::new("organization_id", description));
                    None
                }
            },
        };
        let range = match (start, end) {
            (Some(start), Some(end)) => match TimeRange::new(start, end) {
                Some(range) => Some(range),
                None => {
                    violations.push(FieldViolation::new("end_time", "must be after start_time"));
                    None
                }
            },
            _ => None,
        };
        match range {
            Some(range) if violations.is_empty() => Ok(Self { range, organization_id }),
            _ => {
                let first = &violations[0];
                let message = format!("{} {}", first.field, first.description);
                Err(Error::InvalidArgument { message, violations })
            }
        }
    }
}
