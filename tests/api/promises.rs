//! Promises of the README and docs/ tested as stated: field bounds and the violations named,
//! concurrent migrations, error answers free of internals, and the SIGTERM drain.

mod drain;
mod fields;
mod leaks;
mod migrations;
