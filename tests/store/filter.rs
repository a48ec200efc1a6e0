//! A filter's SQL selects exactly the events `Filter::matches` accepts, on each store's
//! own schema: random events stored through the store's append, random filters over
//! the same values, with quotes, case, wildcard metacharacters and missing ips among them.

use std::collections::BTreeSet;

use audit_service::domain::{EventBatch, Outcome, UnixNanos};
use audit_service::filter::{Comparison, Equality, Expr, Filter, IpOp, Pattern, TextField, TextOp, TimeOp};
use audit_service::proto::audit as pb;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Postgres, QueryBuilder, Sqlite};

use crate::summary::seed;
use crate::support::{Backend, NANOS_PER_SECOND, TestStore};

const ROUNDS: usize = 40;
const FILTERS_PER_ROUND: usize = 10;

const ACTIONS: [&str; 6] =
    ["user.created", "session.login", "session.login.failed", "session.logout", "a.b_c", "a.bxc"];
const TEXTS: [&str; 16] =
    ["", "a", "A", "ab", "aB", "a%b", "a_b", "axb", "a*b", r"a\b", "a?b", "a[b]", "ä", "Ä", "x y", "q\"uote"];
const ID_STEMS: [&str; 4] = ["e", "E", "e_", "e%"];
/// Never an IPv4-compatible address (`::1.2.3.4`): PostgreSQL writes those with a
/// dotted quad, which the module docs of `filter` name as the one divergence.
const IPS: [&str; 10] = [
    "1.2.3.4",
    "198.51.100.42",
    "198.51.100.7",
    "10.0.0.1",
    "::1",
    "2001:db8::1",
    "2001:db8::a",
    "::ffff:1.2.3.4",
    "fe80::1",
    "::",
];
const IP_PATTERNS: [&str; 10] =
    ["*", "1.2.*", "198.51.100.*", "*:*", "::*", "*.4", "2001:db8::*", "*1*", "::ffff:*", "*A*"];
const PATTERN_PIECES: [&str; 16] =
    ["*", "*", "a", "A", "b", "%", "_", "?", "[", "]", r"\", "ä", ".", "e", "1", "login"];
/// 2026-04-17T00:00:00Z.
const T0: i64 = 1_776_384_000 * NANOS_PER_SECOND;
const STEP: i64 = NANOS_PER_SECOND / 2;

pub async fn sql_selects_exactly_what_the_filter_matches(store: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    let mut conn = Conn::open(store).await;
    for round in 0..ROUNDS {
        let org = format!("org_{round}");
        let events = (0..rng.random_range(1..30)).map(|i| event(&mut rng, &org, i)).collect();
        let batch = EventBatch::try_from(pb::BatchCreateEventsRequest { events }).expect("valid events");
        store.store.append(&batch).await.expect("append");
        for _ in 0..FILTERS_PER_ROUND {
            let expr = loop {
                let expr = random_expr(&mut rng, 3);
                if comparisons(&expr) <= 20 {
                    break expr;
                }
            };
            let text = expr.to_string();
            let filter = Filter::parse(&text).expect("a canonical form parses").expect("not blank");
            assert_eq!(filter.expr(), &expr, "{text}");
            let matched: BTreeSet<String> =
                batch.events().iter().filter(|e| filter.matches(e)).map(|e| e.id.clone()).collect();
            assert_eq!(conn.select(&org, &filter).await, matched, "{:?}: {text}", store.backend);
        }
    }
}

pub fn event(rng: &mut StdRng, org: &str, i: usize) -> pb::AuditEvent {
    let text = |rng: &mut StdRng| (*TEXTS.choose(rng).unwrap()).to_owned();
    let ip = if rng.random_bool(0.3) { String::new() } else { (*IPS.choose(rng).unwrap()).to_owned() };
    pb::AuditEvent {
        id: format!("{}{i}", ID_STEMS.choose(rng).unwrap()),
        timestamp: Some(UnixNanos::from_nanos(instant(rng)).to_timestamp()),
        organization_id: org.to_owned(),
        action: (*ACTIONS.choose(rng).unwrap()).to_owned(),
        actor: Some(pb::Actor { r#type: text(rng), id: text(rng) }),
        target: Some(pb::Target { r#type: text(rng), id: text(rng) }),
        result: if rng.random_bool(0.5) { "success" } else { "failure" }.to_owned(),
        ip,
        user_agent: text(rng),
        details: None,
        log_index: 0,
    }
}

/// A few instants shared between events and filters, and their neighbours.
fn instant(rng: &mut StdRng) -> i64 {
    T0 + rng.random_range(0..6) * STEP + *[-1, 0, 0, 0, 1].choose(rng).unwrap()
}

pub fn random_expr(rng: &mut StdRng, depth: usize) -> Expr {
    if depth == 0 || rng.random_bool(0.4) {
        return Expr::Compare(random_comparison(rng));
    }
    let operands = |rng: &mut StdRng| (0..rng.random_range(2..=3)).map(|_| random_expr(rng, depth - 1)).collect();
    match rng.random_range(0..3) {
        0 => Expr::And(operands(rng)),
        1 => Expr::Or(operands(rng)),
        _ => Expr::Not(Box::new(random_expr(rng, depth - 1))),
    }
}

fn random_comparison(rng: &mut StdRng) -> Comparison {
    let field = *TextField::ALL.choose(rng).unwrap();
    let value = |rng: &mut StdRng| match field {
        TextField::Id => format!("{}{}", ID_STEMS.choose(rng).unwrap(), rng.random_range(0..30)),
        TextField::Action => (*ACTIONS.choose(rng).unwrap()).to_owned(),
        _ => (*TEXTS.choose(rng).unwrap()).to_owned(),
    };
    let pattern = |rng: &mut StdRng| {
        let pieces: Vec<&str> = (0..rng.random_range(0..5)).map(|_| *PATTERN_PIECES.choose(rng).unwrap()).collect();
        Pattern::new(pieces.concat())
    };
    let ip = |rng: &mut StdRng| IPS.choose(rng).unwrap().parse().unwrap();
    let time_op = *[TimeOp::Eq, TimeOp::Ne, TimeOp::Lt, TimeOp::Le, TimeOp::Gt, TimeOp::Ge].choose(rng).unwrap();
    match rng.random_range(0..10) {
        0 => Comparison::Text { field, op: TextOp::Eq(value(rng)) },
        1 => Comparison::Text { field, op: TextOp::Ne(value(rng)) },
        2 | 3 => Comparison::Text { field, op: TextOp::Like(pattern(rng)) },
        4 => Comparison::Ip(IpOp::Eq(ip(rng))),
        5 => Comparison::Ip(IpOp::Ne(ip(rng))),
        6 => Comparison::Ip(IpOp::Like(Pattern::new(*IP_PATTERNS.choose(rng).unwrap()))),
        7 => {
            let op = *[Equality::Eq, Equality::Ne].choose(rng).unwrap();
            let outcome = *[Outcome::Success, Outcome::Failure].choose(rng).unwrap();
            Comparison::Result { op, outcome }
        }
        _ => Comparison::Time { op: time_op, at: UnixNanos::from_nanos(instant(rng)) },
    }
}

fn comparisons(expr: &Expr) -> usize {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().map(comparisons).sum(),
        Expr::Not(inner) => comparisons(inner),
        Expr::Compare(_) => 1,
    }
}

/// A connection of its own beside the store.
enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

const SELECT: &str = "SELECT id FROM audit_events WHERE organization_id = ";

impl Conn {
    async fn open(store: &TestStore) -> Self {
        match store.backend {
            Backend::Sqlite => Self::Sqlite(SqliteConnection::connect(&store.url).await.expect("sqlite")),
            Backend::Postgres => Self::Postgres(PgConnection::connect(&store.url).await.expect("postgres")),
        }
    }

    /// The ids of `org`'s events the filter's SQL selects, ordered in Rust (the
    /// databases' collations need not agree with each other).
    async fn select(&mut self, org: &str, filter: &Filter) -> BTreeSet<String> {
        let ids = match self {
            Self::Sqlite(conn) => {
                let mut sql = QueryBuilder::<Sqlite>::new(SELECT);
                sql.push_bind(org.to_owned()).push(" AND ");
                filter.push_sql(&mut sql);
                sql.build_query_scalar::<String>().fetch_all(conn).await
            }
            Self::Postgres(conn) => {
                let mut sql = QueryBuilder::<Postgres>::new(SELECT);
                sql.push_bind(org.to_owned()).push(" AND ");
                filter.push_sql(&mut sql);
                sql.build_query_scalar::<String>().fetch_all(conn).await
            }
        };
        ids.unwrap_or_else(|e| panic!("{filter}: {e}")).into_iter().collect()
    }
}
