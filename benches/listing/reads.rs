//! Timed listing reads through the store trait: first pages, page 1,000 against
//! page 1, and the `actor.id` / `target.id` filters. Every page read is compared with
//! the generator's record of what it must hold. The filters' baseline is the same
//! store and query after the indexes that serve the filtered column are dropped, so
//! the database answers by its best plan without them (the time-ordered scan,
//! checking each event); they are then built again from their own definitions.

use std::str::FromStr;
use std::time::Instant;

use audit_service::domain::{Cursor, EventPage, OrgScope, Snapshot};
use audit_service::filter::Filter;
use audit_service::store::{DynStore, ListQuery};
use sqlx::{ConnectOptions, Connection};

use crate::corpus::{Corpus, Placed, check_page, org_id};
use crate::data::{self, Rng};

pub const PAGE_SIZE: usize = 50;
/// Page 1,000 starts after this many events.
pub const DEEP_OFFSET: usize = 999 * PAGE_SIZE;

pub fn scope_of(org: Option<u16>) -> OrgScope {
    org.map_or(OrgScope::All, |o| OrgScope::One(org_id(usize::from(o))))
}

/// One page, and how long the store took for it (ms).
pub async fn page(
    store: &DynStore,
    org: Option<u16>,
    filter: Option<Filter>,
    snapshot: Option<Snapshot>,
    after: Option<Cursor>,
) -> anyhow::Result<(f64, EventPage)> {
    let query = ListQuery { scope: scope_of(org), filter, snapshot, after, limit: PAGE_SIZE };
    let started = Instant::now();
    let page = store.list_events(&query).await?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, page))
}

/// First-page latencies (ms) of the given organizations (or platform-wide), each
/// page checked against the record.
pub async fn first_pages(store: &DynStore, corpus: &Corpus, orgs: &[Option<u16>]) -> anyhow::Result<Vec<f64>> {
    let firsts = corpus.first_of_each(PAGE_SIZE);
    let everyone: Vec<Placed> = corpus.placed.iter().take(PAGE_SIZE).copied().collect();
    let mut samples = Vec::new();
    for &org in orgs {
        let (ms, page) = page(store, org, None, None, None).await?;
        let expected = org.map_or(&everyone, |o| &firsts[usize::from(o)]);
        check_page(&page, expected, &format!("first page of {org:?}"));
        assert_eq!(page.more, corpus.scope(org).nth(PAGE_SIZE).is_some(), "first page of {org:?}: `more` is wrong");
        samples.push(ms);
    }
    Ok(samples)
}

/// Page 1 and page 1,000 of one scope, alternately, `queries` times each: (page 1
/// samples, page 1,000 samples). Page 1,000 is read after the cursor of page 999's
/// last event, built from the record; that this is the page that following 999
/// cursors reaches is checked once, by following them. None when the scope holds
/// fewer than 1,000 pages.
pub async fn deep_pages(
    store: &DynStore,
    corpus: &Corpus,
    org: Option<u16>,
    queries: usize,
) -> anyhow::Result<Option<(Vec<f64>, Vec<f64>)>> {
    let scope: Vec<Placed> = corpus.scope(org).take(DEEP_OFFSET + PAGE_SIZE).copied().collect();
    if scope.len() < DEEP_OFFSET + PAGE_SIZE {
        return Ok(None);
    }
    let expected = &scope[DEEP_OFFSET..];
    let built = scope[DEEP_OFFSET - 1].cursor();

    // Following the cursors, as a client pages with next_page_token.
    let (_, mut current) = page(store, org, None, None, None).await?;
    let snapshot = current.snapshot.clone();
    for number in 2..=1000 {
        let last = current.events.last().expect("a full page before page 1,000");
        let cursor = Cursor {
            timestamp: last.event.timestamp,
            organization_id: last.event.organization_id.clone(),
            log_index: last.log_index,
        };
        if number == 1000 {
            assert_eq!(cursor, built, "page 999 of {org:?} ends elsewhere than the record says");
        }
        current = page(store, org, None, Some(snapshot.clone()), Some(cursor)).await?.1;
    }
    check_page(&current, expected, &format!("page 1,000 of {org:?}, by following cursors"));

    let (mut first, mut deep) = (Vec::new(), Vec::new());
    for _ in 0..queries {
        let (ms, page1) = page(store, org, None, None, None).await?;
        check_page(&page1, &scope[..PAGE_SIZE], &format!("page 1 of {org:?}"));
        first.push(ms);
        let (ms, page1000) = page(store, org, None, Some(page1.snapshot), Some(built.clone())).await?;
        check_page(&page1000, expected, &format!("page 1,000 of {org:?}, by the built cursor"));
        deep.push(ms);
    }
    Ok(Some((first, deep)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Actor,
    Target,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Actor => "actor.id",
            Field::Target => "target.id",
        }
    }

    fn value_of(self, p: &Placed) -> String {
        match self {
            Field::Actor => format!("usr_{:06}", p.actor),
            Field::Target => format!("ses_{:08x}", p.target),
        }
    }

    fn matches(self, p: &Placed, value: &Placed) -> bool {
        match self {
            Field::Actor => p.actor == value.actor,
            Field::Target => p.target == value.target,
        }
    }
}

/// A filtered first page to time: the filter, and the page it must return.
pub struct FilterCase {
    pub filter: Filter,
    pub expected: Vec<Placed>,
    pub more: bool,
}

/// `count` filters `field = X`, X taken from random events of the scope.
pub fn filter_cases(corpus: &Corpus, org: Option<u16>, field: Field, count: usize) -> Vec<FilterCase> {
    let scope: Vec<&Placed> = corpus.scope(org).collect();
    let mut rng = Rng::new(7 + field as u64);
    (0..count)
        .map(|_| {
            let value = *scope[rng.below(scope.len() as u64) as usize];
            let text = format!("{} = \"{}\"", field.name(), field.value_of(&value));
            let filter = Filter::parse(&text).expect("a valid filter").expect("not blank");
            let mut matching = scope.iter().filter(|p| field.matches(p, &value)).map(|p| **p);
            let expected: Vec<Placed> = matching.by_ref().take(PAGE_SIZE).collect();
            let more = matching.next().is_some();
            FilterCase { filter, expected, more }
        })
        .collect()
}

/// First-page latencies (ms) of the filters, each page checked against the record.
pub async fn filtered(store: &DynStore, org: Option<u16>, cases: &[FilterCase]) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::new();
    for case in cases {
        let (ms, page) = page(store, org, Some(case.filter.clone()), None, None).await?;
        check_page(&page, &case.expected, &format!("filter {} on {org:?}", case.filter));
        assert_eq!(page.more, case.more, "filter {} on {org:?}: `more` is wrong", case.filter);
        samples.push(ms);
    }
    Ok(samples)
}

/// Organizations for per-organization first pages: uniformly random among the 1000,
/// so most are small and a few large.
pub fn random_orgs(count: usize) -> Vec<Option<u16>> {
    let mut rng = Rng::new(11);
    (0..count).map(|_| Some(rng.below(data::ORGS as u64) as u16)).collect()
}

/// Indexes on the events table whose definition names `column`: (name, definition).
pub async fn indexes_on(url: &str, column: &str) -> anyhow::Result<Vec<(String, String)>> {
    let pattern = format!("%{column}%");
    let found = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await?;
            let rows = sqlx::query_as(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' \
                 AND sql LIKE ?1 ORDER BY name",
            )
            .bind(&pattern)
            .fetch_all(&mut conn)
            .await?;
            conn.close().await?;
            rows
        }
        None => {
            let mut conn = sqlx::postgres::PgConnectOptions::from_str(url)?.connect().await?;
            // The partitioned parent's indexes; each partition's copy goes with it.
            let rows = sqlx::query_as(
                "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
                 AND tablename = 'audit_events' AND indexdef LIKE $1 ORDER BY indexname",
            )
            .bind(&pattern)
            .fetch_all(&mut conn)
            .await?;
            conn.close().await?;
            rows
        }
    };
    Ok(found)
}

/// Runs each statement on a connection of its own, beside the store's.
async fn execute(url: &str, statements: &[String]) -> anyhow::Result<()> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await?;
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone())).execute(&mut conn).await?;
        }
        conn.close().await?;
    } else {
        let mut conn = sqlx::postgres::PgConnectOptions::from_str(url)?.connect().await?;
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone())).execute(&mut conn).await?;
        }
        // Fresh statistics, so the planner sees the table as it is now.
        sqlx::raw_sql("ANALYZE audit_events").execute(&mut conn).await?;
        conn.close().await?;
    }
    Ok(())
}

pub async fn drop_indexes(url: &str, indexes: &[(String, String)]) -> anyhow::Result<()> {
    let statements: Vec<String> = indexes.iter().map(|(name, _)| format!("DROP INDEX \"{name}\"")).collect();
    execute(url, &statements).await
}

/// Fresh PostgreSQL statistics of the events table.
pub async fn analyze(url: &str) -> anyhow::Result<()> {
    execute(url, &[]).await
}

pub async fn restore_indexes(url: &str, indexes: &[(String, String)]) -> anyhow::Result<()> {
    // PostgreSQL spells a partitioned index `ON ONLY` the parent; built that way it
    // would cover no partition.
    let statements: Vec<String> =
        indexes.iter().map(|(_, definition)| definition.replace(" ON ONLY ", " ON ")).collect();
    execute(url, &statements).await
}
