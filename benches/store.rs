//! Store benchmark: ingest paths and summary latency at N and 10·N events over the
//! same 30 days, every figure measured in the same run and printed with its ratio
//! to a baseline. Every summary is checked against the generator's own recount of
//! the events it made (a mismatch panics).
//!
//! cargo bench --bench store -- [--db sqlite|postgres] [--events N] [--queries Q]
//! PostgreSQL: AUDIT_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres
//! (fresh databases are created next to it and dropped at the end).

#[path = "store/data.rs"]
mod data;
#[path = "../tests/common/naive_summary.rs"]
mod naive_summary;
#[path = "store/recount.rs"]
mod recount;
#[path = "store/target.rs"]
mod target;

use std::time::{Duration, Instant};

use audit_service::domain::{ActionCount, EventBatch, OrgId, OrgScope, SummaryQuery, TimeRange};
use audit_service::proto::audit as pb;

use data::Generator;
use recount::Recount;
use target::Target;

struct Options {
    db: String,
    events: u64,
    queries: usize,
    ingest_sample: u64,
}

fn options() -> Options {
    let mut o = Options { db: "sqlite".into(), events: 1_000_000, queries: 40, ingest_sample: 200_000 };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--db" => o.db = value,
            "--events" => o.events = value.parse().expect("--events N"),
            "--queries" => o.queries = value.parse().expect("--queries Q"),
            "--ingest-sample" => o.ingest_sample = value.parse().expect("--ingest-sample N"),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options();
    println!("# store benchmark: db={} N={} queries={} (machine: {} cores)", o.db, o.events, o.queries, cores());
    let mut rows: Vec<[String; 4]> = Vec::new();

    // Ingest, on a sample in fresh databases: the service's batched path against its
    // own one-event-per-call path, the database's bulk path, and no aggregates. The
    // one-per-call run takes the first events of the very stream the batched run
    // sends (same seed, same density over time), as many as finish in reasonable time.
    let sample = o.ingest_sample.min(o.events);
    let batched = ingest(&o.db, true, sample, sample, 1000).await?;
    let single = ingest(&o.db, true, sample, sample.min(3000), 1).await?;
    let unaggregated = ingest(&o.db, false, sample, sample, 1000).await?;
    let bulk = {
        let target = Target::create(&o.db, true).await?;
        let mut generator = Generator::new(1, sample, "bulk");
        let mut events = Vec::new();
        while (events.len() as u64) < sample {
            let batch = EventBatch::try_from(pb::BatchCreateEventsRequest { events: generator.batch(1000) })?;
            events.extend(batch.events().iter().cloned());
        }
        let started = Instant::now();
        target.bulk_insert(&events).await?;
        let rate = sample as f64 / started.elapsed().as_secs_f64();
        target.drop().await?;
        rate
    };
    rows.push(row("ingest, 1000 events per call (events/s)", batched, None));
    rows.push(row(
        &format!("ingest, 1 event per call, first {} of the same stream (events/s)", sample.min(3000)),
        single,
        Some(batched / single),
    ));
    rows.push(row(&format!("ingest, database bulk path: {} (events/s)", bulk_name(&o.db)), bulk, Some(batched / bulk)));
    rows.push(row("ingest without aggregates, 1000 per call (events/s)", unaggregated, Some(batched / unaggregated)));

    // Summaries at N, then at 10·N in the same database: a second stream of 9·N events
    // over the same 30 days makes the data ten times denser everywhere.
    let target = Target::create(&o.db, true).await?;
    let mut recount = Recount::default();
    let mut flat = Vec::new();
    let mut checked = 0;
    for (step, count) in [o.events, o.events * 9].into_iter().enumerate() {
        let load_started = Instant::now();
        load(&target, step as u64, count, &mut recount).await?;
        recount.seal();
        let total = recount.len() as u64;
        eprintln!("loaded {total} events in {:.1?}", load_started.elapsed());
        for (label, org) in [("one organization", Some(0)), ("platform-wide", None)] {
            let (fast, naive, n) = summaries(&target, &recount, org, o.queries, step == 1).await?;
            checked += n;
            let (p50, p99) = (percentile(&fast, 50), percentile(&fast, 99));
            let (n50, n99) = (percentile(&naive, 50), percentile(&naive, 99));
            rows.push(row_ms(&format!("summary {label}, {total} events: rollups p50 / p99 (ms)"), p50, p99, None));
            rows.push(row_ms(
                &format!("summary {label}, {total} events: naive GROUP BY p50 / p99 (ms)"),
                n50,
                n99,
                Some(n50 / p50),
            ));
            flat.push((label, total, p50));
        }
    }
    for label in ["one organization", "platform-wide"] {
        let at: Vec<_> = flat.iter().filter(|f| f.0 == label).collect();
        rows.push(row(&format!("summary {label}: p50 at 10·N / p50 at N"), at[1].2 / at[0].2, None));
    }
    target.drop().await?;

    println!("# checked: all {checked} summaries (rollups and naive) equal the generator's recount, at N and at 10·N");
    println!("\n| measure | value | ratio |\n|---|---:|---:|");
    for [name, value, extra, ratio] in rows {
        println!("| {name} | {value}{extra} | {ratio} |");
    }
    Ok(())
}

/// Ingests the first `events` of a stream of `stream_len` spread over the 30 days.
async fn ingest(db: &str, aggregates: bool, stream_len: u64, events: u64, per_call: usize) -> anyhow::Result<f64> {
    let target = Target::create(db, aggregates).await?;
    let mut generator = Generator::new(1, stream_len, "ingest");
    let batches: Vec<EventBatch> = (0..events.div_ceil(per_call as u64))
        .map(|_| EventBatch::try_from(pb::BatchCreateEventsRequest { events: generator.batch(per_call) }))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    for batch in batches {
        target.service.append(&target.principal, batch).await?;
    }
    let rate = events as f64 / started.elapsed().as_secs_f64();
    target.drop().await?;
    Ok(rate)
}

/// Adds a stream of `count` events spread over the 30 days through the batched
/// service path, writing each down in `recount`.
async fn load(target: &Target, seed: u64, count: u64, recount: &mut Recount) -> anyhow::Result<()> {
    let mut generator = Generator::new(seed + 10, count, &format!("load{seed}"));
    let mut left = count;
    while left > 0 {
        let n = left.min(1000) as usize;
        let events = generator.batch_counted(n, recount);
        let batch = EventBatch::try_from(pb::BatchCreateEventsRequest { events })?;
        target.service.append(&target.principal, batch).await?;
        left -= n as u64;
    }
    Ok(())
}

/// Latencies (ms) of the store's summary and of the naive query over random
/// one-week ranges at microsecond offsets; every answer of either is checked
/// against the recount. Also returns how many answers were checked.
async fn summaries(
    target: &Target,
    recount: &Recount,
    org: Option<usize>,
    queries: usize,
    fewer_naive: bool,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, usize)> {
    let scope = match org {
        Some(index) => OrgScope::One(OrgId::parse(&data::org_name(index)).expect("a valid organization id")),
        None => OrgScope::All,
    };
    let mut checked = 0;
    let mut rng = data::Rng::new(42);
    let (mut fast, mut naive) = (Vec::new(), Vec::new());
    let week_ns: i128 = 7 * 86_400 * 1_000_000_000;
    for q in 0..queries {
        let offset_us = rng.below(((data::DAYS - 7) * 86_400 * 1_000_000) as u64) as i128;
        let start = i128::from(data::EPOCH_S) * 1_000_000_000 + offset_us * 1000;
        let range = TimeRange::new(start, start + week_ns).expect("non-empty");
        let query = SummaryQuery { range, scope: scope.clone() };
        let expected = recount.summary(start as i64, (start + week_ns) as i64, org);
        let started = Instant::now();
        let mut got = target.store.summarize(&query).await?;
        fast.push(ms(started.elapsed()));
        sort(&mut got);
        assert_eq!(got, expected, "rollup summary differs from the recount for {query:?}");
        checked += 1;
        // At 10·N the naive query is slow; timing a quarter of the queries is enough.
        if !fewer_naive || q % 4 == 0 {
            let started = Instant::now();
            let mut naive_got = target.naive.summarize(&query).await?;
            naive.push(ms(started.elapsed()));
            sort(&mut naive_got);
            assert_eq!(naive_got, expected, "naive summary differs from the recount for {query:?}");
            checked += 1;
        }
    }
    Ok((fast, naive, checked))
}

fn sort(counts: &mut [ActionCount]) {
    counts.sort_by(|a, b| a.action.cmp(&b.action));
}

fn percentile(samples: &[f64], p: usize) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) * p).div_ceil(100)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(name: &str, value: f64, ratio: Option<f64>) -> [String; 4] {
    [name.into(), format!("{value:.2}"), String::new(), ratio.map(|r| format!("{r:.2}×")).unwrap_or_default()]
}

fn row_ms(name: &str, p50: f64, p99: f64, ratio: Option<f64>) -> [String; 4] {
    [
        name.into(),
        format!("{p50:.3}"),
        format!(" / {p99:.3}"),
        ratio.map(|r| format!("{r:.1}× slower")).unwrap_or_default(),
    ]
}

fn bulk_name(db: &str) -> &'static str {
    if db == "postgres" { "COPY" } else { "one-transaction multi-row INSERT" }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
