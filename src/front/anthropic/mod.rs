//! Anthropic Messages (`/v1/messages`), as Claude Code and the `anthropic` SDKs speak it.
//!
//! Requests: `system` (string or text blocks) and `role:"system"` turns become system
//! messages; `text`, `image` (base64 or url source) and text `document` blocks become content;
//! `tool_use` ⇄ `tool_calls`, `tool_result` → `tool` messages (placed before the rest of their
//! user turn, where chat APIs want them); `thinking` blocks, `cache_control`, `metadata`,
//! `top_k`, `context_management`, `output_config` are dropped. Tools the proxy cannot serve
//! (Anthropic's server and built-in tools, deferred placeholders) are dropped and named; only a
//! `tool_choice` forcing one of them is refused.
//!
//! Answers: the message object; streams as `message_start`, per block `content_block_start` /
//! `content_block_delta` / `content_block_stop`, `message_delta`, `message_stop`.

mod answer;
mod request;

pub use answer::{StreamEncoder, render};
pub use request::{count_tokens, parse};
