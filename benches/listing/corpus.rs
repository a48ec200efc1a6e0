//! The listed events: streams of the store benchmark's generator loaded through the
//! store's own append, and a compact record of every event (time, organization, log
//! index, actor, target) from which each expected page is computed without the store.
//! For large sizes on SQLite, a faster load writes the events straight into the store's
//! tables, each with the log index the record gives it, and the log counters after
//! them; every page read afterwards is still checked against the record.

use std::time::{Duration, Instant};

use audit_service::domain::{Cursor, EventBatch, EventPage, NewEvent, OrgId, Outcome, UnixNanos};
use audit_service::proto::audit as pb;
use audit_service::store::DynStore;
use sqlx::{ConnectOptions, Connection, QueryBuilder, Sqlite, SqliteConnection};

use crate::data::{self, Generator};

/// One stored event as the generator made it: 32 bytes, so 10 million take 320 MB.
#[derive(Clone, Copy, Debug)]
pub struct Placed {
    pub at_ns: i64,
    /// Its place in the stream; with `stream`, its id.
    pub n: u32,
    /// Its organization's events sent before it, which is what the store must assign.
    pub log_index: u32,
    /// `ses_{target:08x}`.
    pub target: u32,
    /// `usr_{actor:06}`.
    pub actor: u16,
    /// `org_{org:04}`.
    pub org: u16,
    pub stream: u8,
}

impl Placed {
    /// Ids are zero-padded, so sorting a batch by (organization, id) keeps each
    /// organization's events in the order they were sent, whichever order a store
    /// assigns log indexes in within a batch.
    pub fn id(&self) -> String {
        format!("s{}-{:010}", self.stream, self.n)
    }

    /// Listing order is newest first: timestamp, then organization, then log index,
    /// all descending; this key sorts ascending in that order.
    fn key(&self) -> (std::cmp::Reverse<i64>, std::cmp::Reverse<u16>, std::cmp::Reverse<u32>) {
        use std::cmp::Reverse;
        (Reverse(self.at_ns), Reverse(self.org), Reverse(self.log_index))
    }

    /// The cursor a page ending at this event hands on.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            timestamp: UnixNanos::from_nanos(self.at_ns),
            organization_id: org_id(usize::from(self.org)),
            log_index: u64::from(self.log_index),
        }
    }
}

pub fn org_id(index: usize) -> OrgId {
    OrgId::parse(&data::org_name(index)).expect("a valid organization id")
}

#[derive(Default)]
pub struct Corpus {
    /// Every event stored so far, in listing order once `seal` ran.
    pub placed: Vec<Placed>,
    next_log_index: Vec<u32>,
    streams: u8,
}

impl Corpus {
    /// Sends one more stream of `count` events over the same 30 days, 1000 per call,
    /// in time order as producers send them; returns how long the store took.
    /// With `bulk` (a SQLite URL), the events go straight into the tables instead.
    pub async fn grow(&mut self, store: &DynStore, bulk: Option<&str>, count: u64) -> anyhow::Result<Duration> {
        let mut bulk = match bulk {
            Some(url) => Some(Bulk::open(url).await?),
            None => None,
        };
        self.next_log_index.resize(data::ORGS, 0);
        let stream = self.streams;
        self.streams += 1;
        let mut generator = Generator::new(100 + u64::from(stream), count, "unused");
        let mut spent = Duration::ZERO;
        let mut left = count;
        let mut n = 0u32;
        while left > 0 {
            let size = left.min(1000) as usize;
            let mut events = generator.batch(size);
            for event in &mut events {
                let placed = self.place(event, stream, n);
                event.id = placed.id();
                self.placed.push(placed);
                n += 1;
            }
            let batch = EventBatch::try_from(pb::BatchCreateEventsRequest { events })?;
            if let Some(bulk) = &mut bulk {
                let placed = &self.placed[self.placed.len() - size..];
                bulk.add(batch.events(), placed.iter().map(|p| p.log_index)).await?;
                spent = bulk.spent;
            } else {
                let started = Instant::now();
                let outcome = store.append(&batch).await?;
                spent += started.elapsed();
                anyhow::ensure!(outcome.created == size, "the store took {} of {size} new events", outcome.created);
            }
            left -= size as u64;
            if n.is_multiple_of(200_000) {
                eprintln!(
                    "  stream {stream}: {n} of {count} events stored ({:.0} events/s)",
                    f64::from(n) / spent.as_secs_f64()
                );
            }
        }
        if let Some(bulk) = bulk {
            spent = bulk.finish(&self.next_log_index).await?;
        }
        Ok(spent)
    }

    fn place(&mut self, event: &pb::AuditEvent, stream: u8, n: u32) -> Placed {
        let at = event.timestamp.as_ref().expect("generated events carry a time");
        let org: u16 = event.organization_id[4..].parse().expect("org_NNNN");
        let log_index = self.next_log_index[usize::from(org)];
        self.next_log_index[usize::from(org)] += 1;
        Placed {
            at_ns: at.seconds * 1_000_000_000 + i64::from(at.nanos),
            n,
            log_index,
            target: u32::from_str_radix(&event.target.as_ref().expect("a target").id[4..], 16).expect("ses_hex"),
            actor: event.actor.as_ref().expect("an actor").id[4..].parse().expect("usr_NNNNNN"),
            org,
            stream,
        }
    }

    /// Puts the records in listing order.
    pub fn seal(&mut self) {
        self.placed.sort_unstable_by_key(Placed::key);
    }

    pub fn len(&self) -> usize {
        self.placed.len()
    }

    /// Events of one organization (or all), in listing order.
    pub fn scope(&self, org: Option<u16>) -> impl Iterator<Item = &Placed> {
        self.placed.iter().filter(move |p| org.is_none_or(|o| p.org == o))
    }

    /// The first `limit` events of every organization, in listing order, in one pass.
    pub fn first_of_each(&self, limit: usize) -> Vec<Vec<Placed>> {
        let mut firsts = vec![Vec::new(); data::ORGS];
        for p in &self.placed {
            let list = &mut firsts[usize::from(p.org)];
            if list.len() < limit {
                list.push(*p);
            }
        }
        firsts
    }
}

/// Panics unless the page holds exactly `expected`, in order, each with the log
/// index its organization's sending order gives it.
pub fn check_page(page: &EventPage, expected: &[Placed], what: &str) {
    let got: Vec<(String, u64)> = page.events.iter().map(|e| (e.event.id.clone(), e.log_index)).collect();
    let want: Vec<(String, u64)> = expected.iter().map(|p| (p.id(), u64::from(p.log_index))).collect();
    assert_eq!(got, want, "{what}: the page differs from the generator's record");
}

const INSERT: &str = "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, actor_type, \
     actor_id, target_type, target_id, ip, user_agent, details, received_at_ns, log_index) ";
const ROWS_PER_STATEMENT: usize = 32_766 / 14;
const SET_COUNTER: &str = "INSERT INTO audit_logs (organization_id, next_index) VALUES (?1, ?2) \
     ON CONFLICT (organization_id) DO UPDATE SET next_index = excluded.next_index";

pub struct Bulk {
    conn: SqliteConnection,
    pending: Vec<(NewEvent, u32)>,
    pub spent: Duration,
}

impl Bulk {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let path = url.strip_prefix("sqlite://").ok_or_else(|| anyhow::anyhow!("the bulk load is for SQLite only"))?;
        let conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .connect()
            .await?;
        Ok(Self { conn, pending: Vec::new(), spent: Duration::ZERO })
    }

    pub async fn add(&mut self, events: &[NewEvent], log_indexes: impl Iterator<Item = u32>) -> anyhow::Result<()> {
        self.pending.extend(events.iter().cloned().zip(log_indexes));
        if self.pending.len() >= 100_000 {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut tx = self.conn.begin().await?;
        for chunk in self.pending.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT);
            insert.push_values(chunk, |mut row, (e, log_index)| {
                row.push_bind(e.organization_id.as_str())
                    .push_bind(e.id.as_str())
                    .push_bind(e.timestamp.get())
                    .push_bind(e.action.as_str())
                    .push_bind(i64::from(e.outcome == Outcome::Failure))
                    .push_bind(e.actor_type.as_str())
                    .push_bind(e.actor_id.as_str())
                    .push_bind(e.target_type.as_str())
                    .push_bind(e.target_id.as_str())
                    .push_bind(e.ip.map(|ip| ip.to_string()))
                    .push_bind(e.user_agent.as_str())
                    .push_bind(e.details_json.as_deref())
                    .push_bind(0i64)
                    .push_bind(i64::from(*log_index));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.pending.clear();
        self.spent += started.elapsed();
        Ok(())
    }

    /// Writes what is pending and sets each organization's next log index.
    pub async fn finish(mut self, next_log_index: &[u32]) -> anyhow::Result<Duration> {
        self.flush().await?;
        let mut tx = self.conn.begin().await?;
        for (org, &next) in next_log_index.iter().enumerate().filter(|(_, next)| **next > 0) {
            sqlx::query(SET_COUNTER).bind(data::org_name(org)).bind(i64::from(next)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.conn.close().await?;
        Ok(self.spent)
    }
}
