//! Domain types of the audit log: built from proto messages by `TryFrom`, so a
//! value that exists is valid, and nothing past this module sees proto types.

mod event;
mod listing;
mod summary;
mod time;

pub use event::{
    Action, EventBatch, MAX_BATCH_EVENTS, MAX_DETAILS_DEPTH, MAX_DETAILS_VALUES, NewEvent, OrgId, Outcome,
};
pub use listing::{Cursor, EventLookup, EventPage, Snapshot, StoredEvent};
pub use summary::{ActionCount, OrgScope, SummaryQuery, SummaryRequest};
pub use time::{TimeRange, UnixNanos};
