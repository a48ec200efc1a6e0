//! GetEvent and ListEvents end to end, on every protocol: the event as the contract
//! shows it, tenancy, the filter language, page sizes and page tokens, and the REST
//! routes around `/v1/audit/events/{id}`. The calls and the fixture are the shared
//! harness's (tests/common/reads.rs).

mod get;
mod list;
mod paging;
mod routes;
mod tenancy;

pub use crate::reads::*;
