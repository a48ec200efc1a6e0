//! The PostgreSQL append: log counters locked in one order, the duplicate check
//! after them, ids with their log index, events and rollups, in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use super::PostgresStore;
use super::sql::*;
use crate::domain::{NewEvent, Outcome};
use crate::store::rollup;

impl PostgresStore {
    /// One attempt at the whole append transaction; returns the events stored, each
    /// with its log index. `firsts` holds each id of the batch once (its first
    /// copy), in batch order: the order in which an organization's indexes are given.
    pub(super) async fn append_once<'a>(
        &self,
        conn: &mut PgConnection,
        firsts: &[&'a NewEvent],
    ) -> Result<Vec<(&'a NewEvent, i64)>, sqlx::Error> {
        let mut tx = conn.begin().await?;
        let orgs: BTreeSet<&str> = firsts.iter().map(|e| e.organization_id.as_str()).collect();
        let mut next: BTreeMap<String, i64> = sqlx::query_as(LOCK_LOG_COUNTERS)
            .bind(orgs.into_iter().collect::<Vec<&str>>())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let (orgs, ids): (Vec<&str>, Vec<&str>) =
            firsts.iter().map(|e| (e.organization_id.as_str(), e.id.as_str())).unzip();
        let stored_before: HashSet<(String, String)> =
            sqlx::query_as(STORED_IDS).bind(&orgs).bind(&ids).fetch_all(&mut *tx).await?.into_iter().collect();
        let mut stored = Vec::new();
        for &event in firsts {
            if stored_before.contains(&(event.organization_id.as_str().to_owned(), event.id.clone())) {
                continue;
            }
            // Every organization of the batch got its counter above.
            let counter = next.entry(event.organization_id.as_str().to_owned()).or_insert(0);
            stored.push((event, *counter));
            *counter += 1;
        }
        if !stored.is_empty() {
            let advanced: BTreeMap<&str, i64> =
                stored.iter().map(|(e, index)| (e.organization_id.as_str(), index + 1)).collect();
            sqlx::query(INSERT_IDS)
                .bind(stored.iter().map(|(e, _)| e.organization_id.as_str()).collect::<Vec<&str>>())
                .bind(stored.iter().map(|(e, _)| e.id.as_str()).collect::<Vec<&str>>())
                .bind(stored.iter().map(|(_, index)| *index).collect::<Vec<i64>>())
                .bind(stored.iter().map(|(e, _)| e.timestamp.get()).collect::<Vec<i64>>())
                .bind(advanced.keys().copied().collect::<Vec<&str>>())
                .bind(advanced.values().copied().collect::<Vec<i64>>())
                .execute(&mut *tx)
                .await?;
            insert_events(&mut tx, &stored).await?;
            if self.maintain_rollups {
                add_to_rollups(&mut tx, stored.iter().map(|(e, _)| *e)).await?;
            }
        }
        tx.commit().await?;
        Ok(stored)
    }
}

async fn insert_events(conn: &mut PgConnection, stored: &[(&NewEvent, i64)]) -> Result<(), sqlx::Error> {
    let received_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
    let events: Vec<&NewEvent> = stored.iter().map(|(e, _)| *e).collect();
    let column = |f: fn(&NewEvent) -> &str| events.iter().map(|e| f(e)).collect::<Vec<&str>>();
    sqlx::query(INSERT_EVENTS)
        .bind(column(|e| e.organization_id.as_str()))
        .bind(column(|e| e.id.as_str()))
        .bind(events.iter().map(|e| e.timestamp.get()).collect::<Vec<i64>>())
        .bind(column(|e| e.action.as_str()))
        .bind(events.iter().map(|e| e.outcome == Outcome::Failure).collect::<Vec<bool>>())
        .bind(column(|e| e.actor_type.as_str()))
        .bind(column(|e| e.actor_id.as_str()))
        .bind(column(|e| e.target_type.as_str()))
        .bind(column(|e| e.target_id.as_str()))
        .bind(events.iter().map(|e| e.ip.map(|ip| ip.to_string())).collect::<Vec<Option<String>>>())
        .bind(column(|e| e.user_agent.as_str()))
        .bind(events.iter().map(|e| e.details_json.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(received_at)
        .bind(stored.iter().map(|(_, index)| *index).collect::<Vec<i64>>())
        .execute(conn)
        .await?;
    Ok(())
}

async fn add_to_rollups<'a>(
    conn: &mut PgConnection,
    stored: impl IntoIterator<Item = &'a NewEvent>,
) -> Result<(), sqlx::Error> {
    let increments = rollup::increments(stored);
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (key, counts) in &increments {
        columns.0.push(key.series.as_str());
        columns.1.push(key.width_s);
        columns.2.push(key.start_ns);
        columns.3.push(key.action.as_str());
        columns.4.push(counts.count);
        columns.5.push(counts.failures);
    }
    sqlx::query(UPSERT_ROLLUPS)
        .bind(columns.0)
        .bind(columns.1)
        .bind(columns.2)
        .bind(columns.3)
        .bind(columns.4)
        .bind(columns.5)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deadlock (40P01) and serialization failure (40001): the transaction was rolled
/// back whole and may simply run again.
pub(super) fn is_retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}
