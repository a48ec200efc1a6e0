//! The event reads: one event by id, and a page of a snapshot listing, as the
//! service asks the store for them and as the store answers.

use super::event::{NewEvent, OrgId};
use super::summary::OrgScope;
use super::time::UnixNanos;

/// An event as it is stored: what was sent, and its place in its organization's log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub event: NewEvent,
    /// 0, 1, 2, … per organization, in commit order; never changes once assigned.
    pub log_index: u64,
}

/// Which event `GetEvent` reads, after tenancy was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLookup {
    pub id: String,
    /// `All` only for a platform-wide caller that named no organization: then the
    /// store answers every organization's event with that id (at most two, enough
    /// to tell "one" from "several").
    pub scope: OrgScope,
}

/// Where a listing stands: the last event of the previous page, in listing order
/// (`timestamp` descending, then `organization_id` descending, then `log_index`
/// descending). The next page starts strictly after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp: UnixNanos,
    pub organization_id: OrgId,
    pub log_index: u64,
}

/// What a store needs to answer later pages exactly as of the first one: opaque to
/// everyone but the store that made it (a commit sequence number on SQLite, a
/// transaction snapshot on PostgreSQL). Carried, authenticated, in the page token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub String);

/// A page: at most `limit` events in listing order, whether more follow, and the
/// snapshot the page was read in (the given one, or a new one for a first page).
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    pub more: bool,
    pub snapshot: Snapshot,
}
