//! The audit-log service: one proto-defined API served as gRPC, gRPC-web and REST/JSON.

pub mod proto;
