//! The audit-log service: one proto-defined API served as gRPC, gRPC-web and REST/JSON.

pub mod auth;
pub mod cli;
pub mod codec;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod domain;
pub mod error;
pub mod filter;
pub mod grpc;
pub mod methods;
pub mod metrics;
pub mod openapi;
pub mod paging;
pub mod proto;
pub mod rest;
pub mod rfc3339;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod wire;
