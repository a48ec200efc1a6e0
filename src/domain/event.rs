//! Audit events as the service accepts them: every rule of a valid event lives here.

use std::net::IpAddr;
use std::time::Duration;

use super::time::{EARLIEST_EVENT_NANOS, LATEST_EVENT_NANOS, UnixNanos};
use crate::error::{Error, Violations};
use crate::proto::audit as pb;

#[cfg(test)]
mod tests;

/// Largest batch `BatchCreateEvents` takes; larger ones are refused whole.
pub const MAX_BATCH_EVENTS: usize = 1000;
const MAX_ID_LEN: usize = 128;
const MAX_ORG_LEN: usize = 128;
const MAX_ACTION_LEN: usize = 128;
const MAX_REF_LEN: usize = 256;
const MAX_USER_AGENT_LEN: usize = 1024;
const MAX_DETAILS_BYTES: usize = 16 * 1024;
/// Deepest nesting of `details`, its own object being level 1; REST bodies are held
/// to the same bound before they are converted.
pub const MAX_DETAILS_DEPTH: usize = 32;
/// Most JSON values (scalars, objects and lists) in one `details`.
pub const MAX_DETAILS_VALUES: usize = 4096;
/// Violations reported per refused batch; past this the client has a systematic bug.
const MAX_REPORTED_VIOLATIONS: usize = 20;
/// How the message of a batch refused for its invalid events opens.
const BATCH_REFUSED: &str = "batch refused, nothing stored";

/// A tenant id: 1-128 printable ASCII characters, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(String);

impl OrgId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > MAX_ORG_LEN {
            return Err(format!("must be at most {MAX_ORG_LEN} characters"));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OrgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `{resource}.{verb}`: two or more dot-separated segments of `[a-z][a-z0-9_]*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Action(String);

impl Action {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let segment_ok = |s: &str| {
            let mut bytes = s.bytes();
            matches!(bytes.next(), Some(b'a'..=b'z')) && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        };
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > MAX_ACTION_LEN {
            return Err(format!("must be at most {MAX_ACTION_LEN} characters"));
        }
        if raw.split('.').count() < 2 || !raw.split('.').all(segment_ok) {
            return Err(r#"must look like "resource.verb": lowercase segments of [a-z0-9_] joined by dots"#.into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            _ => Err(r#"must be "success" or "failure""#.into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// A valid event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub timestamp: UnixNanos,
    pub organization_id: OrgId,
    pub action: Action,
    pub outcome: Outcome,
    pub actor_type: String,
    pub actor_id: String,
    pub target_type: String,
    pub target_id: String,
    pub ip: Option<IpAddr>,
    pub user_agent: String,
    /// `details` as a JSON object, when the caller sent any.
    pub details_json: Option<String>,
}

/// A non-empty batch of valid events, at most [`MAX_BATCH_EVENTS`].
#[derive(Debug, Clone)]
pub struct EventBatch(Vec<NewEvent>);

impl EventBatch {
    pub fn events(&self) -> &[NewEvent] {
        &self.0
    }

    /// Refuses the batch whole when an event is dated more than `max_skew` after
    /// `now`. The caller reads the clock, so that parsing stays a pure function of
    /// the request. Without this bound one writer could date an event months ahead,
    /// where no retention and no monthly partition reaches it yet.
    pub fn refuse_dated_after(&self, now: UnixNanos, max_skew: Duration) -> Result<(), Error> {
        let skew = i128::try_from(max_skew.as_nanos()).unwrap_or(i128::MAX);
        let latest = i128::from(now.get()).saturating_add(skew);
        let late: Vec<usize> = (0..self.0.len()).filter(|&i| i128::from(self.0[i].timestamp.get()) > latest).collect();
        if late.is_empty() {
            return Ok(());
        }
        let latest = UnixNanos::from_nanos(i64::try_from(latest).unwrap_or(i64::MAX));
        let description = format!(
            "must be at most {} seconds after the server's clock, so no later than {}",
            max_skew.as_secs(),
            crate::rfc3339::format(&latest.to_timestamp())
        );
        let mut violations = Violations::default();
        for i in late {
            violations.push(format!("events[{i}].timestamp"), description.clone());
        }
        Err(violations.into_refusal(BATCH_REFUSED, MAX_REPORTED_VIOLATIONS))
    }
}

impl TryFrom<pb::BatchCreateEventsRequest> for EventBatch {
    type Error = Error;

    fn try_from(request: pb::BatchCreateEventsRequest) -> Result<Self, Error> {
        if request.events.is_empty() {
            return Err(Error::invalid("events", "must hold at least one event"));
        }
        if request.events.len() > MAX_BATCH_EVENTS {
            return Err(Error::invalid(
                "events",
                format!("holds {} events; a batch takes at most {MAX_BATCH_EVENTS}", request.events.len()),
            ));
        }
        let mut violations = Violations::default();
        let mut events = Vec::with_capacity(request.events.len());
        for (index, event) in request.events.into_iter().enumerate() {
            match parse_event(event) {
                Ok(event) => events.push(event),
                Err(invalid) => violations.nest(&format!("events[{index}]"), invalid),
            }
        }
        if violations.is_empty() {
            return Ok(Self(events));
        }
        Err(violations.into_refusal(BATCH_REFUSED, MAX_REPORTED_VIOLATIONS))
    }
}

/// One event, its violations named by the event's own field paths.
fn parse_event(event: pb::AuditEvent) -> Result<NewEvent, Violations> {
    let mut violations = Violations::default();
    let v = &mut violations;
    // The typed fields are checked before the free-form ones: the answer lists them in
    // this order and names the first.
    let timestamp = v.check("timestamp", event_time(event.timestamp.as_ref()));
    let organization_id = v.check("organization_id", OrgId::parse(&event.organization_id));
    let action = v.check("action", Action::parse(&event.action));
    let outcome = v.check("result", Outcome::parse(&event.result));
    let ip = v.check("ip", ip_address(&event.ip));
    let details_json = v.check("details", details_as_json(event.details));
    let id = if event.id.is_empty() { uuid::Uuid::now_v7().to_string() } else { event.id };
    let actor = event.actor.unwrap_or_default();
    let target = event.target.unwrap_or_default();
    v.check("id", bounded_printable(&id, MAX_ID_LEN));
    v.check("actor.type", bounded_printable(&actor.r#type, MAX_REF_LEN));
    v.check("actor.id", bounded_printable(&actor.id, MAX_REF_LEN));
    v.check("target.type", bounded_printable(&target.r#type, MAX_REF_LEN));
    v.check("target.id", bounded_printable(&target.id, MAX_REF_LEN));
    v.check("user_agent", user_agent(&event.user_agent));
    if event.log_index != 0 {
        v.push("log_index", "is assigned by the service when the event is stored; leave it out");
    }
    match (timestamp, organization_id, action, outcome, ip, details_json) {
        (Some(timestamp), Some(organization_id), Some(action), Some(outcome), Some(ip), Some(details_json))
            if violations.is_empty() =>
        {
            Ok(NewEvent {
                id,
                timestamp,
                organization_id,
                action,
                outcome,
                actor_type: actor.r#type,
                actor_id: actor.id,
                target_type: target.r#type,
                target_id: target.id,
                ip,
                user_agent: event.user_agent,
                details_json,
            })
        }
        _ => Err(violations),
    }
}

fn event_time(timestamp: Option<&pbjson_types::Timestamp>) -> Result<UnixNanos, String> {
    match timestamp.map(UnixNanos::from_timestamp) {
        None => Err("is required".to_owned()),
        Some(Some(ts)) if (EARLIEST_EVENT_NANOS..LATEST_EVENT_NANOS).contains(&ts.get()) => Ok(ts),
        Some(_) => Err("must lie between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z".to_owned()),
    }
}

fn ip_address(raw: &str) -> Result<Option<IpAddr>, String> {
    match raw {
        "" => Ok(None),
        raw => raw.parse::<IpAddr>().map(Some).map_err(|_| "must be an IPv4 or IPv6 address".to_owned()),
    }
}

fn user_agent(value: &str) -> Result<(), String> {
    if value.len() > MAX_USER_AGENT_LEN || value.chars().any(char::is_control) {
        return Err(format!("must be at most {MAX_USER_AGENT_LEN} bytes without control characters"));
    }
    Ok(())
}

fn details_as_json(details: Option<pbjson_types::Struct>) -> Result<Option<String>, String> {
    match details {
        None => Ok(None),
        Some(details) if shape_of(&details).0 > MAX_DETAILS_DEPTH => {
            Err(format!("is nested deeper than {MAX_DETAILS_DEPTH} levels"))
        }
        Some(details) if shape_of(&details).1 > MAX_DETAILS_VALUES => {
            Err(format!("holds more than {MAX_DETAILS_VALUES} JSON values"))
        }
        Some(details) => match serde_json::to_string(&details) {
            Ok(json) if json.len() <= MAX_DETAILS_BYTES => Ok(Some(json)),
            Ok(_) => Err(format!("must be at most {MAX_DETAILS_BYTES} bytes as JSON")),
            Err(e) => Err(format!("is not representable as JSON: {e}")),
        },
    }
}

fn bounded_printable(value: &str, max: usize) -> Result<(), String> {
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(format!("must be at most {max} bytes without control characters"));
    }
    Ok(())
}

/// Nesting depth of `details` (objects and lists, its own object being level 1)
/// and its number of values, as the REST body budget counts them; walked without
/// recursion so that no input can exhaust the stack.
fn shape_of(details: &pbjson_types::Struct) -> (usize, usize) {
    use pbjson_types::value::Kind;
    let (mut deepest, mut values) = (1, 1);
    // Each pending value with the depth of the container holding it.
    let mut pending: Vec<(&pbjson_types::Value, usize)> = details.fields.values().map(|v| (v, 1)).collect();
    while let Some((value, parent)) = pending.pop() {
        values += 1;
        match &value.kind {
            Some(Kind::StructValue(inner)) => {
                deepest = deepest.max(parent + 1);
                pending.extend(inner.fields.values().map(|v| (v, parent + 1)));
            }
            Some(Kind::ListValue(list)) => {
                deepest = deepest.max(parent + 1);
                pending.extend(list.values.iter().map(|v| (v, parent + 1)));
            }
            _ => {}
        }
    }
    (deepest, values)
}
