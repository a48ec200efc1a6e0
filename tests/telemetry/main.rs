//! Telemetry end to end: the real server on port 0, with this process's telemetry
//! exporting to an OTLP receiver started inside the test binary; spans, request
//! log lines and `/metrics` checked as an operator would see them. A binary of its
//! own because the tracing subscriber is process-wide.

mod harness;
mod metrics;
mod probes;
mod traces;
