//! Conformance of every store to the `EventStore` contract: the same cases, through
//! the trait, on SQLite (a temp file, always) and on PostgreSQL (a fresh database
//! per test, when AUDIT_TEST_POSTGRES_URL is set; under CI it must be).

#[path = "../common/postgres.rs"]
mod pg;
mod support;

mod append;
mod maintenance;
mod postgres_schema;
mod summary;

/// Generates, for each case, one test per backend: `sqlite::case` and `postgres::case`.
macro_rules! conformance {
    ($($module:ident::$case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::support::run(crate::support::Backend::Sqlite, crate::$module::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::support::run(crate::support::Backend::Postgres, crate::$module::$case).await;
                }
            )*
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
}
