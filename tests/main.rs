//! End-to-end tests: county nodes over real mutual TLS on loopback, with
//! certificates generated per test and a temporary data dir per node.
//! One test binary, one module per concern. The binary is `e2e` (declared
//! in crates/tongban-cli/Cargo.toml), so one module or test runs with
//! `cargo test -p tongban-cli --test e2e console::` (a name filter).

mod support;

mod application_time;
mod audit;
mod audit_console;
mod authority;
mod calendar;
mod cli;
mod commitment;
mod console;
mod console_access;
mod console_correction;
mod console_flows;
mod console_material;
mod console_refusals;
mod console_shots;
mod console_tour;
mod console_verify;
mod consultation;
mod decided;
mod decoding;
mod delivery;
mod durability;
mod foundation;
mod handoff;
mod hygiene;
mod idempotency;
mod mail;
mod material;
mod notice;
mod ops;
mod paging;
mod refusals;
mod result_document;
mod review;
