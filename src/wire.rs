//! How requests and answers look on the wire, beneath every protocol adapter and
//! layer: the gRPC message frame and what gRPC-web adds to it. It uses no other
//! module of the crate, so the server, the REST transcoder and telemetry can all
//! build on it.

pub mod frame;
pub mod web;
