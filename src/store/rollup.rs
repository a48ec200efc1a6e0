//! Pre-aggregated counts, shared by every store: which buckets a batch adds to,
//! and how a range splits into whole buckets plus raw edges, so that a summary
//! reads a number of rows bounded by the range's shape, not by the event count.
//!
//! Two series: per organization in hour buckets, and platform-wide (series `""`,
//! which no organization id can be) in day, hour and minute buckets. A range is
//! answered from the coarsest whole buckets inside it, then finer ones at the
//! edges, and raw events only for what is left: under an hour per edge for one
//! organization, under a minute per edge platform-wide.

use std::collections::BTreeMap;

use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::sql::*;
use crate::domain::{NewEvent, OrgScope, Outcome};

const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Bucket widths in seconds, coarsest first; each divides the one before.
pub const ORG_WIDTHS: &[i64] = &[3600];
pub const PLATFORM_WIDTHS: &[i64] = &[86_400, 3600, 60];
/// The series key of platform-wide rollups.
pub const PLATFORM_SERIES: &str = "";

/// Replaces every rollup with what the events add up to, inside the caller's
/// transaction: one insert per series and bucket width.
pub async fn rebuild<DB>(dialect: &Dialect, conn: &mut DB::Connection) -> Result<(), sqlx::Error>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    sqlx::query::<DB>(DELETE_ROLLUPS).execute(&mut *conn).await?;
    let org = ORG_WIDTHS.iter().map(|&width| (dialect.rebuild_org_rollups, width));
    let platform = PLATFORM_WIDTHS.iter().map(|&width| (dialect.rebuild_platform_rollups, width));
    for (statement, width) in org.chain(platform) {
        sqlx::query::<DB>(statement).bind(width).execute(&mut *conn).await?;
    }
    Ok(())
}

/// One rollup row's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketKey {
    pub series: String,
    pub width_s: i64,
    pub start_ns: i64,
    pub action: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketCounts {
    pub count: i64,
    pub failures: i64,
}

/// What the newly stored events of a batch add to the rollups, keys sorted so
/// that concurrent writers lock rows in one order.
pub fn increments<'a>(stored: impl IntoIterator<Item = &'a NewEvent>) -> Vec<(BucketKey, BucketCounts)> {
    let mut out: BTreeMap<BucketKey, BucketCounts> = BTreeMap::new();
    for event in stored {
        let failed = i64::from(event.outcome == Outcome::Failure);
        let series = [(event.organization_id.as_str(), ORG_WIDTHS), (PLATFORM_SERIES, PLATFORM_WIDTHS)];
        for (name, widths) in series {
            for &width_s in widths {
                let key = BucketKey {
                    series: name.to_owned(),
                    width_s,
                    start_ns: bucket_start(event.timestamp.get(), width_s),
                    action: event.action.as_str().to_owned(),
                };
                let counts = out.entry(key).or_default();
                counts.count += 1;
                counts.failures += failed;
            }
        }
    }
    out.into_iter().collect()
}

fn bucket_start(ts_ns: i64, width_s: i64) -> i64 {
    let width = width_s * NANOS_PER_SECOND;
    ts_ns.div_euclid(width) * width
}

/// One piece of a summary: whole buckets of one width, or raw events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Buckets of `width_s` with `from <= start < to`.
    Buckets { width_s: i64, from: i64, to: i64 },
    /// Events with `from <= timestamp < to`.
    Raw { from: i64, to: i64 },
}

/// Splits `[start, end)` (nanoseconds) into pieces whose counts add up to it exactly.
pub fn plan(scope: &OrgScope, start: i64, end: i64) -> Vec<Piece> {
    let widths = match scope {
        OrgScope::One(_) => ORG_WIDTHS,
        OrgScope::All => PLATFORM_WIDTHS,
    };
    let mut pieces = Vec::new();
    split(start, end, widths, &mut pieces);
    pieces
}

fn split(start: i64, end: i64, widths: &[i64], pieces: &mut Vec<Piece>) {
    if start >= end {
        return;
    }
    let Some((&width_s, finer)) = widths.split_first() else {
        pieces.push(Piece::Raw { from: start, to: end });
        return;
    };
    let width = width_s * NANOS_PER_SECOND;
    // First whole bucket at or after start; end of the last whole bucket before end.
    let first = start.div_euclid(width) * width + if start.rem_euclid(width) == 0 { 0 } else { width };
    let last = end.div_euclid(width) * width;
    if first < last {
        split(start, first, finer, pieces);
        pieces.push(Piece::Buckets { width_s, from: first, to: last });
        split(last, end, finer, pieces);
    } else {
        split(start, end, finer, pieces);
    }
}

/// The summary of `[start, end)` as one statement — a `UNION ALL` of the plan's
/// pieces, summed per action — so every piece reads the same snapshot. `None`
/// for an empty range.
pub fn summary_statement<DB>(scope: &OrgScope, start: i64, end: i64, dialect: &Dialect) -> Option<QueryBuilder<DB>>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    let pieces = plan(scope, start, end);
    if pieces.is_empty() {
        return None;
    }
    let series = match scope {
        OrgScope::One(org) => org.as_str(),
        OrgScope::All => PLATFORM_SERIES,
    };
    let mut statement = QueryBuilder::<DB>::new(dialect.summary_head);
    for (i, piece) in pieces.into_iter().enumerate() {
        if i > 0 {
            statement.push(SUMMARY_UNION);
        }
        match (piece, scope) {
            (Piece::Buckets { width_s, from, to }, _) => {
                statement.push(SUMMARY_ROLLUP_SERIES).push_bind(series.to_owned());
                statement.push(SUMMARY_ROLLUP_WIDTH).push_bind(width_s);
                statement.push(SUMMARY_ROLLUP_FROM).push_bind(from).push(SUMMARY_ROLLUP_TO).push_bind(to);
            }
            (Piece::Raw { from, to }, OrgScope::One(org)) => {
                statement.push(dialect.summary_raw_org).push_bind(org.as_str().to_owned());
                statement.push(SUMMARY_RAW_ORG_FROM).push_bind(from).push(SUMMARY_RAW_TO).push_bind(to);
                statement.push(SUMMARY_RAW_GROUP);
            }
            (Piece::Raw { from, to }, OrgScope::All) => {
                statement.push(dialect.summary_raw_all).push_bind(from).push(SUMMARY_RAW_TO).push_bind(to);
                statement.push(SUMMARY_RAW_GROUP);
            }
        }
    }
    statement.push(SUMMARY_TAIL);
    Some(statement)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * NANOS_PER_SECOND;
    const M: i64 = 60 * NANOS_PER_SECOND;
    const D: i64 = 86_400 * NANOS_PER_SECOND;

    fn covered(pieces: &[Piece]) -> Vec<(i64, i64)> {
        let mut spans: Vec<(i64, i64)> = pieces
            .iter()
            .map(|p| match *p {
                Piece::Buckets { from, to, .. } | Piece::Raw { from, to } => (from, to),
            })
            .collect();
        spans.sort_unstable();
        spans
    }

    #[test]
    fn unaligned_week_uses_days_hours_minutes_and_two_raw_edges() {
        let start = 3 * D + 5 * H + 17 * M + 31 * NANOS_PER_SECOND + 1_000;
        let end = 10 * D + 14 * H + 42 * M + 5 * NANOS_PER_SECOND + 123_456_000;
        let pieces = plan(&OrgScope::All, start, end);
        assert_eq!(pieces.len(), 7, "{pieces:?}");
        let spans = covered(&pieces);
        assert_eq!(spans.first().unwrap().0, start);
        assert_eq!(spans.last().unwrap().1, end);
        assert!(spans.windows(2).all(|w| w[0].1 == w[1].0), "contiguous, no overlap: {spans:?}");
        let raw: i64 = pieces.iter().map(|p| if let Piece::Raw { from, to } = p { to - from } else { 0 }).sum();
        assert!(raw < 2 * M);
    }

    #[test]
    fn ranges_inside_one_bucket_are_raw() {
        let org = OrgScope::One(crate::domain::OrgId::parse("org_a").unwrap());
        assert_eq!(plan(&org, 10, 20), vec![Piece::Raw { from: 10, to: 20 }]);
        assert_eq!(plan(&org, H, 2 * H), vec![Piece::Buckets { width_s: 3600, from: H, to: 2 * H }]);
        assert_eq!(plan(&org, H - 1, 2 * H + 1).len(), 3);
    }

    #[test]
    fn pieces_tile_any_range_exactly() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % (40 * D as u64)) as i64
        };
        for _ in 0..2000 {
            let (a, b) = (next(), next());
            let (start, end) = (a.min(b), a.max(b) + 1);
            for scope in [OrgScope::All, OrgScope::One(crate::domain::OrgId::parse("o").unwrap())] {
                let spans = covered(&plan(&scope, start, end));
                assert_eq!(spans.first().unwrap().0, start);
                assert_eq!(spans.last().unwrap().1, end);
                assert!(spans.windows(2).all(|w| w[0].1 == w[1].0));
            }
        }
    }
}
