//! What GetEvent and ListEvents callers ask for, parsed from their requests before
//! tenancy is applied, and a stored event as it is read back. Here rather than in
//! `domain`: a listing's filter is a tree of the filter language, which is itself
//! built on the domain.

use crate::domain::{OrgId, StoredEvent};
use crate::error::{Error, Violations};
use crate::filter::Filter;
use crate::paging::MAX_PAGE_TOKEN_CHARS;
use crate::proto::audit as pb;

/// Events on a page when the caller asks for none (`page_size` 0 or absent).
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Most events on a page; a larger `page_size` is read as this.
pub const MAX_PAGE_SIZE: usize = 500;
/// Longest event id, as `BatchCreateEvents` takes them.
const MAX_ID_LEN: usize = 128;

/// GetEvent as the caller sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRequest {
    pub id: String,
    pub organization_id: Option<OrgId>,
}

/// ListEvents as the caller sent it.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// 1 to [`MAX_PAGE_SIZE`].
    pub page_size: usize,
    pub page_token: Option<String>,
    pub filter: Option<Filter>,
    pub organization_id: Option<OrgId>,
}

impl TryFrom<pb::GetEventRequest> for EventRequest {
    type Error = Error;

    fn try_from(request: pb::GetEventRequest) -> Result<Self, Error> {
        let mut violations = Violations::default();
        let id = violations.check("id", event_id(request.id));
        let organization_id = organization(&mut violations, &request.organization_id);
        match id {
            Some(id) if violations.is_empty() => Ok(Self { id, organization_id }),
            _ => Err(violations.into_error()),
        }
    }
}

impl TryFrom<pb::ListEventsRequest> for ListRequest {
    type Error = Error;

    fn try_from(request: pb::ListEventsRequest) -> Result<Self, Error> {
        let mut violations = Violations::default();
        let page_size = violations.check("page_size", page_size(request.page_size));
        let page_token = match request.page_token {
            token if token.is_empty() => None,
            token if token.len() > MAX_PAGE_TOKEN_CHARS => {
                violations.push("page_token", format!("must be at most {MAX_PAGE_TOKEN_CHARS} characters"));
                None
            }
            token => Some(token),
        };
        let filter = violations.check("filter", Filter::parse(&request.filter).map_err(|e| e.to_string()));
        let organization_id = organization(&mut violations, &request.organization_id);
        match (page_size, filter) {
            (Some(page_size), Some(filter)) if violations.is_empty() => {
                Ok(Self { page_size, page_token, filter, organization_id })
            }
            _ => Err(violations.into_error()),
        }
    }
}

fn event_id(id: String) -> Result<String, String> {
    if id.is_empty() {
        return Err("is required".into());
    }
    if id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(format!("must be at most {MAX_ID_LEN} bytes without control characters"));
    }
    Ok(id)
}

fn page_size(asked: i32) -> Result<usize, String> {
    match asked {
        ..0 => Err(format!("must not be negative (0 for the default of {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE})")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        asked => Ok((asked as usize).min(MAX_PAGE_SIZE)),
    }
}

/// proto3 cannot tell an empty string from an absent field; both mean "not given".
fn organization(violations: &mut Violations, raw: &str) -> Option<OrgId> {
    match raw {
        "" => None,
        raw => violations.check("organization_id", OrgId::parse(raw)),
    }
}

/// An event as GetEvent and ListEvents answer it. Empty optional fields stay unset, so
/// that REST leaves them out: `target` when both its parts are empty, `ip`,
/// `user_agent`, `details`. The actor is always there, as the contract shows it.
impl TryFrom<StoredEvent> for pb::AuditEvent {
    type Error = Error;

    fn try_from(stored: StoredEvent) -> Result<Self, Error> {
        let event = stored.event;
        let details = match event.details_json.as_deref() {
            None => None,
            // Written by this service from a Struct, so it reads back as one; anything
            // else is a damaged row, not the caller's fault.
            Some(json) => Some(
                serde_json::from_str::<pbjson_types::Struct>(json)
                    .map_err(|e| anyhow::anyhow!("stored details of an event do not read back: {e}"))?,
            ),
        };
        let target = (!event.target_type.is_empty() || !event.target_id.is_empty())
            .then_some(pb::Target { r#type: event.target_type, id: event.target_id });
        Ok(Self {
            id: event.id,
            timestamp: Some(event.timestamp.to_timestamp()),
            organization_id: event.organization_id.as_str().to_owned(),
            action: event.action.as_str().to_owned(),
            actor: Some(pb::Actor { r#type: event.actor_type, id: event.actor_id }),
            target,
            result: event.outcome.as_str().to_owned(),
            ip: event.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: event.user_agent,
            details,
            log_index: stored.log_index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(page_size: i32, filter: &str) -> Result<ListRequest, Error> {
        ListRequest::try_from(pb::ListEventsRequest { page_size, filter: filter.into(), ..Default::default() })
    }

    fn violated_field(error: Error) -> String {
        match error {
            Error::InvalidArgument { violations, .. } => violations[0].field.clone(),
            other => panic!("not INVALID_ARGUMENT: {other:?}"),
        }
    }

    #[test]
    fn page_size_defaults_caps_and_refuses_negatives() {
        for (asked, read) in [(0, 50), (1, 1), (500, 500), (501, 500), (i32::MAX, 500)] {
            assert_eq!(list(asked, "").unwrap().page_size, read, "{asked}");
        }
        for negative in [-1, i32::MIN] {
            assert_eq!(violated_field(list(negative, "").unwrap_err()), "page_size");
        }
    }

    #[test]
    fn filter_errors_name_the_filter_and_the_position() {
        let Err(Error::InvalidArgument { message, violations }) = list(0, "actr.id = x") else { panic!() };
        assert_eq!(violations[0].field, "filter");
        assert!(violations[0].description.contains("position 0"), "{message}");
        assert!(list(0, "  ").unwrap().filter.is_none());
    }

    #[test]
    fn ids_and_tokens_are_bounded() {
        let get = |id: &str| EventRequest::try_from(pb::GetEventRequest { id: id.into(), ..Default::default() });
        assert_eq!(violated_field(get("").unwrap_err()), "id");
        assert_eq!(violated_field(get(&"x".repeat(129)).unwrap_err()), "id");
        assert_eq!(violated_field(get("a\nb").unwrap_err()), "id");
        assert_eq!(get("aud_1").unwrap().id, "aud_1");
        let token = "t".repeat(MAX_PAGE_TOKEN_CHARS + 1);
        let long = ListRequest::try_from(pb::ListEventsRequest { page_token: token, ..Default::default() });
        assert_eq!(violated_field(long.unwrap_err()), "page_token");
        let org = EventRequest::try_from(pb::GetEventRequest { id: "e".into(), organization_id: "a b".into() });
        assert_eq!(violated_field(org.unwrap_err()), "organization_id");
    }
}
