//! Telemetry end to end: the real server on port 0, with this process's telemetry
//! exporting to an OTLP receiver started inside the test binary; spans, request
//! log lines and `/metrics` checked as an operator would see them. A binary of its
//! own because the tracing subscriber is process-wide.

#[path = "../common/fixtures.rs"]
mod fixtures;
#[path = "../common/grpc_web.rs"]
mod grpc_web;
#[path = "../common/server.rs"]
mod server;

mod harness;
mod metrics;
mod probes;
mod traces;
