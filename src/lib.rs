//! freellmapi: one OpenAI-compatible endpoint in front of the free tiers of many LLM providers,
//! built as a small static binary for ARM boards. See ARCHITECTURE.md for the map.

pub mod admin;
pub mod alloc;
pub mod api;
pub mod app;
pub mod backup;
pub mod catalog;
pub mod chat;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod discover;
pub mod front;
pub mod health;
pub mod http;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod netguard;
pub mod outcome;
pub mod router;
pub mod routes;
pub mod server;
pub mod spool;
pub mod store;
pub mod surface;
pub mod throttle;
pub mod time;
pub mod upstream;
pub mod vocab;
pub mod wire;
