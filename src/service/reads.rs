//! The event reads: one event by id, and a listing a page at a time, with the
//! summary's tenancy and page tokens bound to the listing and the caller.

use tracing::instrument;

use super::requests::{EventRequest, ListRequest};
use super::{AuditLog, clock_now, read_scope, record_scope, store_error};
use crate::auth::Principal;
use crate::domain::{Cursor, EventLookup, OrgScope, StoredEvent};
use crate::error::Error;
use crate::paging::{Binding, Position};
use crate::store::ListQuery;

/// The one answer for an event the caller cannot see, whether it exists elsewhere or not.
const NOT_FOUND: &str = "event not found";

/// A page of a listing, and the token of the next one when more follow.
#[derive(Debug, Clone)]
pub struct EventsPage {
    pub events: Vec<StoredEvent>,
    pub next_page_token: Option<String>,
}

impl AuditLog {
    /// One event by id. An event the caller may not see answers exactly as a missing
    /// one: same status, same message, after the same single store query.
    #[instrument(name = "audit.get_event", skip_all, fields(org = tracing::field::Empty, enduser.id = %principal.subject))]
    pub async fn get_event(&self, principal: &Principal, request: EventRequest) -> Result<StoredEvent, Error> {
        // An organization-bound caller only ever looks in its own organization; one
        // that names another is asked the same query and answered "not found".
        let (scope, names_another) = match (&principal.org_id, request.organization_id) {
            (Some(own), asked) => {
                let another = asked.is_some_and(|asked| asked != *own);
                (OrgScope::One(own.clone()), another)
            }
            (None, Some(asked)) => (OrgScope::One(asked), false),
            (None, None) => (OrgScope::All, false),
        };
        record_scope(&scope);
        let lookup = EventLookup { id: request.id, scope };
        let mut found = self.store.get_event(&lookup).await.map_err(store_error)?;
        if names_another || found.is_empty() {
            return Err(Error::NotFound(NOT_FOUND.into()));
        }
        if found.len() > 1 {
            return Err(Error::invalid(
                "organization_id",
                "is required: events with this id exist in several organizations; name the one to read",
            ));
        }
        Ok(found.swap_remove(0))
    }

    /// A page of events, newest first, within the caller's tenancy. A page token
    /// continues a listing only for the same filter, organization scope and kind of
    /// caller it was issued for; it never widens what the caller may read.
    #[instrument(name = "audit.list_events", skip_all, fields(org = tracing::field::Empty, enduser.id = %principal.subject))]
    pub async fn list_events(&self, principal: &Principal, request: ListRequest) -> Result<EventsPage, Error> {
        // Tenancy first: a token does not get a caller past it.
        let scope = read_scope(principal, request.organization_id)?;
        let filter_text = request.filter.as_ref().map(ToString::to_string).unwrap_or_default();
        let now = clock_now()?.get().div_euclid(1_000_000_000);
        let position = match &request.page_token {
            None => None,
            Some(token) => {
                let binding = Binding { filter: &filter_text, scope: &scope, tenancy: principal.org_id.as_ref() };
                Some(self.page_tokens.open(token, &binding, now)?)
            }
        };
        let (snapshot, after) = match position {
            Some(Position { cursor, snapshot }) => (Some(snapshot), Some(cursor)),
            None => (None, None),
        };
        let query =
            ListQuery { scope: scope.clone(), filter: request.filter, snapshot, after, limit: request.page_size };
        let page = self.store.list_events(&query).await.map_err(store_error)?;
        let next_page_token = match page.events.last() {
            Some(last) if page.more => {
                let cursor = Cursor {
                    timestamp: last.event.timestamp,
                    organization_id: last.event.organization_id.clone(),
                    log_index: last.log_index,
                };
                let binding = Binding { filter: &filter_text, scope: &scope, tenancy: principal.org_id.as_ref() };
                Some(self.page_tokens.seal(&Position { cursor, snapshot: page.snapshot }, &binding, now)?)
            }
            _ => None,
        };
        Ok(EventsPage { events: page.events, next_page_token })
    }
}
