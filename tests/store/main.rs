//! Conformance of every store to the `EventStore` contract: the same cases, through
//! the trait, on SQLite (a temp file, always) and on PostgreSQL (a fresh database
//! per test, when AUDIT_TEST_POSTGRES_URL is set). Without the variable the
//! PostgreSQL tests are listed as ignored, with the reason; under CI they fail.

#[path = "../common/naive_summary.rs"]
mod naive_summary;
#[path = "../common/postgres.rs"]
mod pg;
mod support;
#[path = "../common/trials.rs"]
mod trials;

mod append;
mod filter;
mod listing;
mod log_index;
mod maintenance;
mod migration;
mod postgres_schema;
mod snapshot;
mod summary;

use libtest_mimic::Trial;
use support::Backend;
use trials::{async_trial, block_on_two_workers, trial};

/// For each case, one test per backend: `sqlite::case` and `postgres::case`.
macro_rules! conformance {
    ($($module:ident::$case:ident),* $(,)?) => {
        fn conformance() -> Vec<Trial> {
            let mut trials = Vec::new();
            $(
                trials.push(trial(concat!("sqlite::", stringify!($case)), None, || {
                    block_on_two_workers(support::run(Backend::Sqlite, $module::$case))
                }));
                trials.push(trial(concat!("postgres::", stringify!($case)), pg::missing(), || {
                    block_on_two_workers(support::run(Backend::Postgres, $module::$case))
                }));
            )*
            trials
        }
    };
}

conformance! {
    summary::summaries_are_exact_at_any_alignment,
    append::retries_are_idempotent_per_organization,
    append::concurrent_batches_never_double_count_or_lose_a_count,
    append::a_failed_batch_leaves_no_trace,
    maintenance::rebuild_gives_the_same_rollups_and_repairs_corrupted_ones,
    maintenance::events_refuse_update_and_delete,
    maintenance::opening_again_migrates_nothing,
    filter::sql_selects_exactly_what_the_filter_matches,
    log_index::log_indexes_are_gap_free_under_concurrent_appends_of_one_organization,
    listing::get_event_reads_one_event_in_its_scope,
    listing::pages_follow_listing_order_and_the_filter_exactly,
    listing::a_malformed_snapshot_is_refused_cleanly,
    snapshot::paging_under_concurrent_ingest_lists_the_first_pages_snapshot_exactly,
}

/// The log-index migration over events stored before it, on each database.
fn migration() -> Vec<Trial> {
    vec![
        async_trial!(None, block_on, migration::sqlite_migration_numbers_the_events_stored_before_it),
        async_trial!(pg::missing(), block_on, migration::postgres_migration_numbers_the_events_stored_before_it),
    ]
}

/// What only the PostgreSQL schema has, each on the runtime its `#[tokio::test]` had.
fn postgres_schema() -> Vec<Trial> {
    vec![
        async_trial!(
            pg::missing(),
            block_on_two_workers,
            postgres_schema::concurrent_opens_of_a_fresh_database_all_succeed
        ),
        async_trial!(pg::missing(), block_on, postgres_schema::ids_partitions_and_truncate_are_refused_too),
        async_trial!(
            pg::missing(),
            block_on,
            postgres_schema::the_default_partition_catches_what_no_month_holds_and_splits_into_months
        ),
        async_trial!(
            pg::missing(),
            block_on,
            postgres_schema::a_month_whose_events_wait_in_the_default_partition_still_gets_its_partition
        ),
        async_trial!(pg::missing(), block_on, postgres_schema::retention_drops_whole_months_with_their_rollups),
        async_trial!(
            pg::missing(),
            block_on,
            postgres_schema::a_least_privileged_service_role_serves_and_cannot_rewrite_history
        ),
        async_trial!(
            pg::missing(),
            block_on,
            postgres_schema::the_statement_timeout_ends_waits_as_unavailable_except_for_a_rebuild
        ),
    ]
}

fn main() {
    trials::run(conformance().into_iter().chain(migration()).chain(postgres_schema()).collect())
}
