//! The integration tests, one binary: each file is a module. Most start the real
//! `freellmapi` binary on port 0 with a temporary data dir against mock providers over real
//! sockets (`support`); the rest read the source (layering, docs) or call the library
//! (golden translations, the HTTP layer). One binary links once and runs every test in one
//! pool; `cargo test --test it catalog_sync::` runs one file.
//!
//! `tests/store_robust.rs` stays a binary of its own: CI builds it again for the static musl
//! target exactly like the release binary, and the rest need not be built that way.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod backup;
mod catalog_sync;
mod cli;
mod clientkeys;
mod clients;
mod concurrency;
mod cooldowns;
mod docs;
mod failover;
mod front_door;
mod full_disk;
mod gemini;
mod golden;
mod health;
mod hostile;
mod http_layer;
mod layering;
mod metrics;
mod models;
mod ollama;
mod persistence;
mod proxies;
mod proxy;
mod security;
mod stack_depth;
mod streaming;
mod surfaces;
mod tls_upstream;
mod tool_rescue;
mod transcriptions;
mod wire_e2e;
