//! The planner's SQL in both dialects, and on a real SQLite database the cases where
//! SQL and the language are easiest to get apart: case, wildcard metacharacters,
//! and events without an ip under negation. (`tests/store/filter.rs` checks SQL
//! against the evaluator on random events and filters, on both stores.)

use std::collections::BTreeSet;

use sqlx::{Connection, Executor, QueryBuilder, Sqlite, SqliteConnection};

use super::*;
use crate::domain::{Action, OrgId};

fn parse(input: &str) -> Filter {
    Filter::parse(input).unwrap().unwrap()
}

fn sqlite_sql(input: &str) -> String {
    let mut sql = QueryBuilder::<Sqlite>::new("");
    parse(input).push_sql(&mut sql);
    sql.sql().as_str().to_owned()
}

fn postgres_sql(input: &str) -> String {
    let mut sql = QueryBuilder::<sqlx::Postgres>::new("");
    parse(input).push_sql(&mut sql);
    sql.sql().as_str().to_owned()
}

#[test]
fn each_comparison_plans_to_bound_sql_in_both_dialects() {
    let cases = [
        (r#"action = "a""#, "action = ?", "action = $1"),
        ("actor.id != a", "actor_id <> ?", "actor_id <> $1"),
        (r#"target.id ~ "ses_*""#, "target_id GLOB ?", r"target_id LIKE $1 ESCAPE '\'"),
        (r#"target.type ~ "session""#, "target_type = ?", "target_type = $1"),
        ("result = failure", "failed = ?", "failed = $1"),
        ("result != failure", "failed <> ?", "failed <> $1"),
        ("timestamp >= 2026-04-17T00:00:00Z", "occurred_at_ns >= ?", "occurred_at_ns >= $1"),
        ("timestamp != 2026-04-17T00:00:00Z", "occurred_at_ns != ?", "occurred_at_ns != $1"),
        ("ip = 1.2.3.4", "(ip IS NOT NULL AND ip = ?)", "(ip IS NOT NULL AND ip = CAST($1 AS inet))"),
        ("ip != 1.2.3.4", "ip IS NOT ?", "ip IS DISTINCT FROM CAST($1 AS inet)"),
        (r#"ip ~ "1.*""#, "(ip IS NOT NULL AND ip GLOB ?)", r"(ip IS NOT NULL AND host(ip) LIKE $1 ESCAPE '\')"),
        (
            "NOT (id = a OR NOT (NOT user_agent = b))",
            "NOT (id = ? OR NOT (NOT (user_agent = ?)))",
            "NOT (id = $1 OR NOT (NOT (user_agent = $2)))",
        ),
        (
            "id = a AND (user_agent = b OR NOT actor.type = c)",
            "(id = ? AND (user_agent = ? OR NOT (actor_type = ?)))",
            "(id = $1 AND (user_agent = $2 OR NOT (actor_type = $3)))",
        ),
    ];
    for (input, sqlite, postgres) in cases {
        assert_eq!(sqlite_sql(input), sqlite, "{input}");
        assert_eq!(postgres_sql(input), postgres, "{input}");
    }
}

#[test]
fn values_never_reach_the_sql_text() {
    let input = r#"actor.id = "x' OR '1'='1" AND user_agent ~ "*'; DROP TABLE audit_events; --*""#;
    for sql in [sqlite_sql(input), postgres_sql(input)] {
        assert!(!sql.replace(r"ESCAPE '\'", "").contains('\''), "{sql}");
        assert!(!sql.contains("DROP"), "{sql}");
    }
}

fn event(id: &str, actor_id: &str, ip: Option<&str>) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        timestamp: UnixNanos::from_nanos(1_776_384_000_000_000_000),
        organization_id: OrgId::parse("org_a").unwrap(),
        action: Action::parse("session.login").unwrap(),
        outcome: Outcome::Success,
        actor_type: "identity".to_owned(),
        actor_id: actor_id.to_owned(),
        target_type: String::new(),
        target_id: String::new(),
        ip: ip.map(|ip| ip.parse().unwrap()),
        user_agent: String::new(),
        details_json: None,
    }
}

/// `audit_events` with the column types of `migrations/sqlite`, holding `events`.
async fn sqlite_with(events: &[NewEvent]) -> SqliteConnection {
    let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
    conn.execute(
        "CREATE TABLE audit_events (organization_id TEXT NOT NULL, id TEXT NOT NULL, \
         occurred_at_ns INTEGER NOT NULL, action TEXT NOT NULL, failed INTEGER NOT NULL, \
         actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, target_type TEXT NOT NULL, \
         target_id TEXT NOT NULL, ip TEXT, user_agent TEXT NOT NULL)",
    )
    .await
    .unwrap();
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, actor_type, actor_id, \
         target_type, target_id, ip, user_agent) ",
    );
    insert.push_values(events, |mut row, e| {
        row.push_bind(e.organization_id.as_str().to_owned())
            .push_bind(e.id.clone())
            .push_bind(e.timestamp.get())
            .push_bind(e.action.as_str().to_owned())
            .push_bind(e.outcome == Outcome::Failure)
            .push_bind(e.actor_type.clone())
            .push_bind(e.actor_id.clone())
            .push_bind(e.target_type.clone())
            .push_bind(e.target_id.clone())
            .push_bind(e.ip.map(|ip| ip.to_string()))
            .push_bind(e.user_agent.clone());
    });
    insert.build().execute(&mut conn).await.unwrap();
    conn
}

async fn selected(conn: &mut SqliteConnection, filter: &Filter) -> BTreeSet<String> {
    let mut sql = QueryBuilder::<Sqlite>::new("SELECT id FROM audit_events WHERE ");
    filter.push_sql(&mut sql);
    sql.build_query_scalar::<String>().fetch_all(conn).await.unwrap().into_iter().collect()
}

#[tokio::test]
async fn sqlite_matches_case_sensitively_and_escapes_what_glob_reads() {
    let events = [
        event("lower", "abc", Some("1.2.3.4")),
        event("upper", "ABC", Some("10.0.0.1")),
        event("question", "a?c", None),
        event("bracket", "a[b]c", Some("::1")),
        event("percent", "a%c", Some("2001:db8::1")),
        event("underscore", "a_c", None),
        event("accent", "äbc", Some("::ffff:1.2.3.4")),
    ];
    let mut conn = sqlite_with(&events).await;
    let cases: [(&str, &[&str]); 13] = [
        (r#"actor.id ~ "a*""#, &["lower", "question", "bracket", "percent", "underscore"]),
        (r#"actor.id ~ "A*""#, &["upper"]),
        (r#"actor.id ~ "a?c""#, &["question"]),
        (r#"actor.id ~ "a?*""#, &["question"]),
        (r#"actor.id ~ "a[b]*""#, &["bracket"]),
        (r#"actor.id ~ "*%*""#, &["percent"]),
        (r#"actor.id ~ "a_*""#, &["underscore"]),
        (r#"actor.id ~ "ä*""#, &["accent"]),
        (r#"ip = "1.2.3.4""#, &["lower"]),
        (r#"ip != "1.2.3.4""#, &["upper", "question", "bracket", "percent", "underscore", "accent"]),
        (r#"NOT ip = "1.2.3.4""#, &["upper", "question", "bracket", "percent", "underscore", "accent"]),
        (r#"NOT ip ~ "*1*""#, &["question", "underscore"]),
        (r#"NOT (ip != "::1" AND actor.id ~ "*c")"#, &["upper", "bracket"]),
    ];
    for (input, expected) in cases {
        let filter = parse(input);
        let in_memory: BTreeSet<String> = events.iter().filter(|e| filter.matches(e)).map(|e| e.id.clone()).collect();
        let expected: BTreeSet<String> = expected.iter().map(|&id| id.to_owned()).collect();
        assert_eq!(in_memory, expected, "in memory: {input}");
        assert_eq!(selected(&mut conn, &filter).await, expected, "sqlite: {input}");
    }
}
