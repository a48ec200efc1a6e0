//! The one planner: a [`Filter`] as a boolean SQL expression over `audit_events`,
//! every value bound as a parameter through sqlx's `QueryBuilder` (so `?` or `$n` as
//! the database numbers them), never spliced into the text. Each database supplies
//! only what it spells differently, as a [`Dialect`].
//!
//! Every piece it writes is two-valued, never SQL NULL, so that `NOT` in SQL means
//! what `!` means in [`Filter::matches`]: the one nullable column, `ip`, is tested
//! with `IS NOT NULL AND …` or a null-safe operator.

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{Comparison, Equality, Expr, Filter, IpOp, Pattern, TextOp};
use crate::domain::Outcome;

/// What a database spells its own way in a filter's SQL.
pub trait Dialect: Database {
    /// Written before and after the bound pattern of a case-sensitive `~` match.
    const MATCH: (&'static str, &'static str);
    /// Written before and after an ip address bound as text, to compare it with `ip`.
    const IP_VALUE: (&'static str, &'static str);
    /// The `ip` column as text, for `~`.
    const IP_TEXT: &'static str;
    /// Null-safe inequality: true when the left side is NULL.
    const DISTINCT: &'static str;

    /// The pattern as `MATCH` reads it.
    fn match_pattern(pattern: &Pattern) -> String;
}

/// SQLite's `LIKE` ignores ASCII case unless a connection-wide pragma says otherwise,
/// and the language is case-sensitive; `GLOB` is case-sensitive everywhere, needs no
/// pragma, and SQLite still narrows it to an index range when the pattern starts with
/// literal text. `ip` is stored as the address's text.
impl Dialect for sqlx::Sqlite {
    const MATCH: (&'static str, &'static str) = (" GLOB ", "");
    const IP_VALUE: (&'static str, &'static str) = ("", "");
    const IP_TEXT: &'static str = "ip";
    const DISTINCT: &'static str = " IS NOT ";

    fn match_pattern(pattern: &Pattern) -> String {
        pattern.to_glob()
    }
}

/// PostgreSQL's `LIKE` is case-sensitive (under the deterministic collations the
/// schema uses). `ip` is `inet`: equality compares addresses, and `~` reads
/// `host(ip)`, the address without its mask.
impl Dialect for sqlx::Postgres {
    const MATCH: (&'static str, &'static str) = (" LIKE ", r" ESCAPE '\'");
    const IP_VALUE: (&'static str, &'static str) = ("CAST(", " AS inet)");
    const IP_TEXT: &'static str = "host(ip)";
    const DISTINCT: &'static str = " IS DISTINCT FROM ";

    fn match_pattern(pattern: &Pattern) -> String {
        pattern.to_like()
    }
}

impl Filter {
    /// Appends the filter as one parenthesized-or-atomic boolean SQL expression over
    /// the columns of `audit_events`, unqualified, binding its values; the caller
    /// joins it to its own conditions with `AND`.
    pub fn push_sql<DB>(&self, sql: &mut QueryBuilder<DB>)
    where
        DB: Dialect,
        for<'t> String: Encode<'t, DB> + Type<DB>,
        for<'t> i64: Encode<'t, DB> + Type<DB>,
        for<'t> bool: Encode<'t, DB> + Type<DB>,
    {
        push_expr(&self.0, sql);
    }
}

fn push_expr<DB>(expr: &Expr, sql: &mut QueryBuilder<DB>)
where
    DB: Dialect,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> bool: Encode<'t, DB> + Type<DB>,
{
    let (items, joiner, empty) = match expr {
        Expr::And(items) => (items, " AND ", "1 = 1"),
        Expr::Or(items) => (items, " OR ", "1 = 0"),
        Expr::Not(inner) => {
            match &**inner {
                // Already parenthesized.
                Expr::And(items) | Expr::Or(items) if !items.is_empty() => {
                    sql.push("NOT ");
                    push_expr(inner, sql);
                }
                _ => {
                    sql.push("NOT (");
                    push_expr(inner, sql);
                    sql.push(")");
                }
            }
            return;
        }
        Expr::Compare(comparison) => return push_comparison(comparison, sql),
    };
    // The parser never builds an empty AND or OR; a hand-built one still reads right.
    if items.is_empty() {
        sql.push(empty);
        return;
    }
    sql.push("(");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            sql.push(joiner);
        }
        push_expr(item, sql);
    }
    sql.push(")");
}

fn push_comparison<DB>(comparison: &Comparison, sql: &mut QueryBuilder<DB>)
where
    DB: Dialect,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> bool: Encode<'t, DB> + Type<DB>,
{
    match comparison {
        Comparison::Text { field, op } => {
            let column = field.column();
            match op {
                TextOp::Eq(value) => {
                    sql.push(column).push(" = ").push_bind(value.clone());
                }
                TextOp::Ne(value) => {
                    sql.push(column).push(" <> ").push_bind(value.clone());
                }
                TextOp::Like(pattern) => push_match(column, pattern, sql),
            }
        }
        Comparison::Ip(op) => {
            let (before, after) = DB::IP_VALUE;
            match op {
                IpOp::Eq(ip) => {
                    sql.push("(ip IS NOT NULL AND ip = ").push(before).push_bind(ip.to_string()).push(after).push(")");
                }
                IpOp::Ne(ip) => {
                    sql.push("ip").push(DB::DISTINCT).push(before).push_bind(ip.to_string()).push(after);
                }
                IpOp::Like(pattern) => {
                    sql.push("(ip IS NOT NULL AND ");
                    push_match(DB::IP_TEXT, pattern, sql);
                    sql.push(")");
                }
            }
        }
        Comparison::Result { op, outcome } => {
            let operator = match op {
                Equality::Eq => "failed = ",
                Equality::Ne => "failed <> ",
            };
            sql.push(operator).push_bind(*outcome == Outcome::Failure);
        }
        Comparison::Time { op, at } => {
            sql.push("occurred_at_ns ").push(op.symbol()).push(" ").push_bind(at.get());
        }
    }
}

/// `column ~ pattern` for a column never NULL where it is called; a pattern without
/// `*` is plain equality, which any index serves.
fn push_match<DB>(column: &str, pattern: &Pattern, sql: &mut QueryBuilder<DB>)
where
    DB: Dialect,
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    if let Some(literal) = pattern.literal() {
        sql.push(column).push(" = ").push_bind(literal.to_owned());
        return;
    }
    let (before, after) = DB::MATCH;
    sql.push(column).push(before).push_bind(DB::match_pattern(pattern)).push(after);
}
