//! End-to-end tests of the service over real sockets: the real server on port 0,
//! real SQLite files, and real clients for each of the three protocols. The tests
//! that need PostgreSQL or other runtimes are in tests/api_env.

#[path = "../common/fixtures.rs"]
mod fixtures;
#[path = "../common/grpc_web.rs"]
mod grpc_web;
mod held;
#[path = "../common/process.rs"]
mod process;
#[path = "../common/reads.rs"]
mod reads;
#[path = "../common/server.rs"]
mod server;

mod auth;
mod batch;
mod cors;
mod durability;
mod events;
mod json_body;
mod limits;
mod openapi;
mod operations;
mod parsers;
mod promises;
mod protocols;
mod query;
mod security;
mod skew;
mod summary;
