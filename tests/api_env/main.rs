//! End-to-end tests of the service that need more than the crate: PostgreSQL
//! (AUDIT_TEST_POSTGRES_URL), node, and python3 with httpx. Each test is listed as
//! ignored, with the reason, when what it needs is missing; under CI it fails.
//! The SQLite-only tests are in tests/api.

#[path = "../common/fixtures.rs"]
mod fixtures;
#[path = "../common/grpc_web.rs"]
mod grpc_web;
#[path = "../common/postgres.rs"]
mod pg;
#[path = "../common/reads.rs"]
mod reads;
#[path = "../api/skew/refusal.rs"]
mod refusal;
#[path = "../common/server.rs"]
mod server;
#[path = "../common/trials.rs"]
mod trials;

mod clients;
mod postgres;
mod reads_on_postgres;
mod skew;

use trials::{all_of, async_trial, program, python_module};

fn main() {
    let python = all_of([program("python3", "install Python 3"), python_module("httpx")]);
    trials::run(vec![
        async_trial!(pg::missing(), block_on, postgres::grpc_batches_and_rest_summaries_on_postgres),
        async_trial!(
            pg::missing(),
            block_on,
            postgres::a_database_outage_answers_unavailable_and_recovers_without_restart
        ),
        async_trial!(pg::missing(), block_on, skew::events_too_far_ahead_are_refused_on_postgres_too),
        async_trial!(pg::missing(), block_on, reads_on_postgres::events_read_back_with_tenancy_and_filters_on_postgres),
        async_trial!(
            pg::missing(),
            block_on_two_workers,
            reads_on_postgres::a_platform_wide_listing_pages_to_the_end_exactly_once_while_ingesting_on_postgres
        ),
        async_trial!(program("node", "install Node.js"), block_on, clients::javascript_example_gets_the_same_answer),
        async_trial!(python, block_on, clients::python_example_gets_the_same_answer),
    ])
}
