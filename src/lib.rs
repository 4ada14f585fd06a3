//! freellmapi: one OpenAI-compatible endpoint in front of the free tiers of many LLM providers,
//! built as a small static binary for ARM boards. See ARCHITECTURE.md for the map.

pub mod catalog;
pub mod config;
pub mod crypto;
pub mod json;
pub mod logging;
pub mod store;
pub mod time;
pub mod http;
pub mod router;
pub mod upstream;
pub mod chat;
pub mod wire;
pub mod api;
pub mod app;
pub mod cli;
pub mod server;
