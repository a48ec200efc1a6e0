//! Listing benchmark: ListEvents' first pages, page 1,000 against page 1, the
//! `actor.id` / `target.id` filters against the same query without their indexes,
//! ingest now against ingest before log_index and the listing indexes, and REST
//! against gRPC, each figure printed with its ratio and target. Events come from
//! the store benchmark's generator (1000 organizations of Zipf-skewed sizes, 30
//! days); every page read is compared with the generator's own record of them.
//!
//! cargo bench --bench listing -- [--db sqlite|postgres] [--events 1000000,10000000]
//!     [--queries 40] [--unindexed-queries 5] [--ingest-sample 200000] [--wire-seconds 3]
//! Sizes also from AUDIT_BENCH_EVENTS; each size adds a stream over the same 30 days
//! to the same database. `--ingest-sample 0`, `--unindexed-queries 0` and
//! `--wire-seconds 0` leave those figures out. `--load bulk` (SQLite) writes the events
//! by multi-row inserts with their log indexes instead of through the store's append. PostgreSQL: AUDIT_BENCH_POSTGRES_URL or AUDIT_TEST_POSTGRES_URL
//! (fresh databases are created next to it and dropped at the end).

#[path = "listing/corpus.rs"]
mod corpus;
#[allow(dead_code)]
#[path = "store/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "../tests/common/naive_summary.rs"]
mod naive_summary;
#[path = "listing/old_store.rs"]
mod old_store;
#[path = "listing/reads.rs"]
mod reads;
#[allow(dead_code)]
#[path = "store/recount.rs"]
mod recount;
#[path = "listing/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "store/target.rs"]
mod target;
#[path = "listing/wire.rs"]
mod wire;

use std::time::Instant;

use reads::Field;
use report::{Goal, Report, p50};

struct Options {
    db: String,
    sizes: Vec<u64>,
    queries: usize,
    unindexed_queries: usize,
    ingest_sample: u64,
    wire_seconds: f64,
    /// Load SQLite by multi-row inserts instead of the store's append.
    bulk: bool,
}

fn options() -> Options {
    let sizes =
        |text: &str| -> Vec<u64> { text.split(',').map(|s| s.trim().parse().expect("--events N[,N…]")).collect() };
    let mut o = Options {
        db: "sqlite".into(),
        sizes: std::env::var("AUDIT_BENCH_EVENTS").map_or_else(|_| vec![1_000_000], |v| sizes(&v)),
        queries: 40,
        unindexed_queries: 5,
        ingest_sample: 200_000,
        wire_seconds: 3.0,
        bulk: false,
    };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--db" => o.db = value,
            "--events" => o.sizes = sizes(&value),
            "--queries" => o.queries = value.parse().expect("--queries Q"),
            "--unindexed-queries" => o.unindexed_queries = value.parse().expect("--unindexed-queries Q"),
            "--ingest-sample" => o.ingest_sample = value.parse().expect("--ingest-sample N"),
            "--wire-seconds" => o.wire_seconds = value.parse().expect("--wire-seconds S"),
            "--load" => o.bulk = value == "bulk",
            other => panic!("unknown option {other}"),
        }
    }
    o.sizes.sort_unstable();
    o
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options();
    println!(
        "# listing benchmark: db={} sizes={:?} queries={} unindexed-queries={} ingest-sample={} wire-seconds={} \
         load={} (machine: {} cores)",
        o.db,
        o.sizes,
        o.queries,
        o.unindexed_queries,
        o.ingest_sample,
        o.wire_seconds,
        if o.bulk { "bulk" } else { "append" },
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let mut report = Report::default();

    if o.ingest_sample > 0 {
        let started = Instant::now();
        let ingest = old_store::side_by_side(&o.db, o.ingest_sample).await?;
        eprintln!("ingest side by side: {:.1?}", started.elapsed());
        let name = format!("ingest, {} events, 1000 per call", o.ingest_sample);
        report.value(&format!("{name}: before this issue (events/s)"), ingest.before);
        report.ratio(
            &format!("{name}: with log_index and list indexes (events/s)"),
            ingest.now,
            ingest.now / ingest.before,
            Goal::AtLeast(0.8),
        );
    }

    // The listed database: no rollups (no summary is read), so loading takes less time.
    let target = target::Target::create(&o.db, false).await?;
    if o.db == "postgres" {
        old_store::add_data_month_partition(&target.url).await?;
    }
    let mut corpus = corpus::Corpus::default();
    for &size in &o.sizes {
        let adding = size.saturating_sub(corpus.len() as u64);
        if adding > 0 {
            let bulk = o.bulk.then_some(target.url.as_str());
            let spent = corpus.grow(&target.store, bulk, adding).await?;
            eprintln!("stored {adding} events in {spent:.1?} ({:.0} events/s)", adding as f64 / spent.as_secs_f64());
        }
        corpus.seal();
        if o.db == "postgres" {
            // As autovacuum would after such a load: the planner sees the table as it is.
            reads::analyze(&target.url).await?;
        }
        let total = corpus.len();
        measure(&o, &target, &corpus, total, &mut report).await?;
        // The table so far, so a long run that is cut short still leaves its smaller sizes.
        println!("\n## at {total} events");
        report.print();
    }
    target.drop().await?;
    Ok(())
}

/// Every read figure at the corpus' current size.
async fn measure(
    o: &Options,
    target: &target::Target,
    corpus: &corpus::Corpus,
    total: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let store = &target.store;
    let q = o.queries;
    let largest = corpus.scope(Some(0)).count();
    eprintln!("measuring at {total} events (largest organization: {largest})");

    let one = reads::first_pages(store, corpus, &vec![Some(0); q]).await?;
    report.checked += q;
    report.value(&format!("{total} events: first page, largest organization ({largest} events), p50 (ms)"), p50(&one));
    let random = reads::first_pages(store, corpus, &reads::random_orgs(q)).await?;
    report.checked += q;
    report.value(&format!("{total} events: first page, random organization, p50 (ms)"), p50(&random));
    let all = reads::first_pages(store, corpus, &vec![None; q]).await?;
    report.checked += q;
    report.value(&format!("{total} events: first page, platform-wide, p50 (ms)"), p50(&all));

    for (label, org) in [("largest organization", Some(0)), ("platform-wide", None)] {
        match reads::deep_pages(store, corpus, org, q).await? {
            Some((first, deep)) => {
                report.checked += 1000 + 2 * q;
                let name = format!("{total} events: {label}, page 1,000 (built cursor) p50 (ms)");
                report.value(&format!("{total} events: {label}, page 1 p50 (ms)"), p50(&first));
                report.ratio(&name, p50(&deep), p50(&deep) / p50(&first), Goal::AtMost(1.3));
            }
            None => {
                report.note(format!("{total} events: {label} holds fewer than 1,000 pages; page 1,000 not measured"))
            }
        }
    }

    // Indexed filters first; then the same cases without the indexes.
    let mut cases = Vec::new();
    for field in [Field::Actor, Field::Target] {
        for (label, org) in [("platform-wide", None), ("largest organization", Some(0))] {
            let set = reads::filter_cases(corpus, org, field, q);
            let indexed = reads::filtered(store, org, &set).await?;
            report.checked += q;
            cases.push((field, label, org, set, p50(&indexed)));
        }
    }

    if o.wire_seconds > 0.0 {
        wire_figures(o, target, corpus, total, report).await;
    }

    // 0 unindexed queries: no baseline, the indexes stay (a run for the other figures).
    for field in [Field::Actor, Field::Target].into_iter().filter(|_| o.unindexed_queries > 0) {
        let column = match field {
            Field::Actor => "actor_id",
            Field::Target => "target_id",
        };
        let indexes = reads::indexes_on(&target.url, column).await?;
        if indexes.is_empty() {
            report.note(format!("no index names {column}: its filter figures have no indexed side"));
            continue;
        }
        for (name, definition) in &indexes {
            report.note(format!(
                "dropped for the unindexed {} baseline, then rebuilt: {name}: {definition}",
                field.name()
            ));
        }
        reads::drop_indexes(&target.url, &indexes).await?;
        for (f, label, org, set, indexed) in cases.iter().filter(|c| c.0 == field) {
            let k = o.unindexed_queries.min(set.len());
            let scan = reads::filtered(store, *org, &set[..k]).await?;
            report.checked += k;
            let name = format!("{total} events: filter {} = X, {label}", f.name());
            report.value(&format!("{name}: indexed first page p50 (ms)"), *indexed);
            report.ratio(
                &format!("{name}: without its indexes p50 (ms), ratio = unindexed ÷ indexed"),
                p50(&scan),
                p50(&scan) / indexed,
                Goal::AtLeast(50.0),
            );
        }
        let started = Instant::now();
        reads::restore_indexes(&target.url, &indexes).await?;
        eprintln!("rebuilt the {column} indexes in {:.1?}", started.elapsed());
    }
    Ok(())
}

/// REST ÷ gRPC for the largest organization's first page; a note instead when the
/// server cannot answer ListEvents.
async fn wire_figures(
    o: &Options,
    target: &target::Target,
    corpus: &corpus::Corpus,
    total: usize,
    report: &mut Report,
) {
    let expected: Vec<String> = corpus.scope(Some(0)).take(reads::PAGE_SIZE).map(|p| p.id()).collect();
    let server = match wire::Wire::start(&target.url, &data::org_name(0), expected).await {
        Ok(server) => server,
        Err(error) => return report.note(format!("REST ÷ gRPC not measured: the server did not start: {error:#}")),
    };
    for concurrency in [1, 16] {
        let mut rates = Vec::new();
        for protocol in [wire::Protocol::Grpc, wire::Protocol::RestH1] {
            match server.run(protocol, concurrency, o.wire_seconds).await {
                Ok(m) if m.errors == 0 => rates.push((protocol, m)),
                Ok(m) => {
                    let error = m.first_error.unwrap_or_default();
                    report.note(format!(
                        "ListEvents over {protocol:?} at {concurrency}: {} wrong answers ({error})",
                        m.errors
                    ));
                }
                Err(error) => report.note(format!("ListEvents over {protocol:?} at {concurrency}: {error:#}")),
            }
        }
        if let [(_, grpc), (_, rest)] = &rates[..] {
            let name =
                format!("{total} events: ListEvents first page, largest organization, concurrency {concurrency}");
            report.value(&format!("{name}: gRPC (req/s; p50 {:.3} ms)", grpc.p50_ms), grpc.per_second);
            report.ratio(
                &format!("{name}: REST HTTP/1.1 (req/s; p50 {:.3} ms), ratio = REST ÷ gRPC", rest.p50_ms),
                rest.per_second,
                rest.per_second / grpc.per_second,
                Goal::AtLeast(0.85),
            );
        }
    }
    if let Err(error) = server.stop().await {
        report.note(format!("the ListEvents server did not stop cleanly: {error:#}"));
    }
}
