//! The event reads every store shares: a listing page as one keyset statement over
//! `audit_events` (never OFFSET), and events read back from rows exactly as they
//! were stored. Each store supplies its snapshot condition and its spelling of the
//! columns (`sql::Dialect`).

use std::net::IpAddr;

use anyhow::Context as _;
use sqlx::{Encode, QueryBuilder, Type};

use super::sql::*;
use super::{ListQuery, StoreError};
use crate::domain::{Action, NewEvent, OrgId, OrgScope, Outcome, StoredEvent, UnixNanos};
use crate::filter::plan::Dialect as FilterDialect;
use crate::filter::{Comparison, Equality, Expr, Filter};

/// Most events on a page; the caller bounds its page size to this.
pub const MAX_PAGE_EVENTS: usize = 500;

/// The statement of one page: the events of the query's scope and filter that are
/// in the snapshot `snapshot` (bound as the dialect's snapshot condition reads
/// it), strictly after the cursor, in listing order, one more than the page holds
/// so that the caller can tell whether more follow.
pub fn page_statement<DB, S>(dialect: &Dialect, query: &ListQuery, snapshot: S) -> Result<QueryBuilder<DB>, StoreError>
where
    DB: FilterDialect,
    DB::Arguments: Default,
    S: for<'t> Encode<'t, DB> + Type<DB> + 'static,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> bool: Encode<'t, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::<DB>::new(dialect.list_head);
    sql.push_bind(snapshot).push(dialect.list_snapshot_end);
    let after = match &query.after {
        Some(cursor) => {
            Some((cursor.timestamp.get(), cursor.organization_id.as_str().to_owned(), log_index(cursor.log_index)?))
        }
        None => None,
    };
    match &query.scope {
        OrgScope::One(org) => {
            sql.push(LIST_ORG).push_bind(org.as_str().to_owned());
            if let Some((timestamp, _, index)) = after {
                sql.push(LIST_ORG_AFTER).push_bind(timestamp).push(LIST_NEXT).push_bind(index).push(LIST_AFTER_END);
            }
        }
        OrgScope::All => {
            if let Some((timestamp, org, index)) = after {
                sql.push(dialect.list_all_after).push_bind(timestamp).push(LIST_NEXT).push_bind(org);
                sql.push(LIST_NEXT).push_bind(index).push(LIST_AFTER_END);
            }
        }
    }
    if let Some(filter) = &query.filter {
        sql.push(LIST_FILTER);
        filter.push_sql(&mut sql);
        if only_failures(filter) {
            sql.push(dialect.list_failures);
        }
    }
    let order = match query.scope {
        OrgScope::One(_) => LIST_ORG_ORDER,
        OrgScope::All => dialect.list_all_order,
    };
    let fetch = query.limit.clamp(1, MAX_PAGE_EVENTS) + 1;
    sql.push(order).push_bind(fetch as i64);
    Ok(sql)
}

/// Whether the filter selects failures only, through a comparison of `result` that
/// every event it matches meets. The listing then repeats that condition in the
/// partial index's own words (a constant, not a value of the caller's), since a
/// planner uses a partial index only when it can prove its condition.
fn only_failures(filter: &Filter) -> bool {
    let failures = |expr: &Expr| {
        matches!(
            expr,
            Expr::Compare(Comparison::Result { op: Equality::Eq, outcome: Outcome::Failure })
                | Expr::Compare(Comparison::Result { op: Equality::Ne, outcome: Outcome::Success })
        )
    };
    match filter.expr() {
        Expr::And(items) => items.iter().any(failures),
        expr => failures(expr),
    }
}

/// A log index as the databases store it: a cursor's index past `i64::MAX` cannot
/// come from a store, so it is refused rather than wrapped.
fn log_index(index: u64) -> Result<i64, StoreError> {
    i64::try_from(index).map_err(|_| StoreError::Other(anyhow::anyhow!("log index out of range in a listing cursor")))
}

/// Splits the page's rows into the page and whether more follow.
pub fn page_of(mut events: Vec<StoredEvent>, limit: usize) -> (Vec<StoredEvent>, bool) {
    let limit = limit.clamp(1, MAX_PAGE_EVENTS);
    let more = events.len() > limit;
    events.truncate(limit);
    (events, more)
}

/// Reads the rows of a statement that selected the dialect's `columns`.
pub fn events_of<R>(rows: Vec<R>) -> Result<Vec<StoredEvent>, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + Type<R::Database>,
{
    rows.iter().map(event_of).collect()
}

fn event_of<R>(row: &R) -> Result<StoredEvent, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + Type<R::Database>,
{
    // What the store holds was valid when it was stored; anything else is a broken
    // database, reported without its content.
    let org: String = row.try_get("organization_id")?;
    let action: String = row.try_get("action")?;
    let ip: Option<String> = row.try_get("ip")?;
    let log_index: i64 = row.try_get("log_index")?;
    let failed: bool = row.try_get("failed")?;
    let event = NewEvent {
        id: row.try_get("id")?,
        timestamp: UnixNanos::from_nanos(row.try_get("occurred_at_ns")?),
        organization_id: OrgId::parse(&org).map_err(anyhow::Error::msg).context("a stored organization id")?,
        action: Action::parse(&action).map_err(anyhow::Error::msg).context("a stored action")?,
        outcome: if failed { Outcome::Failure } else { Outcome::Success },
        actor_type: row.try_get("actor_type")?,
        actor_id: row.try_get("actor_id")?,
        target_type: row.try_get("target_type")?,
        target_id: row.try_get("target_id")?,
        ip: ip.map(|ip| ip.parse::<IpAddr>()).transpose().context("a stored ip address")?,
        user_agent: row.try_get("user_agent")?,
        details_json: row.try_get("details")?,
    };
    let log_index = u64::try_from(log_index).context("a stored log index")?;
    Ok(StoredEvent { event, log_index })
}
