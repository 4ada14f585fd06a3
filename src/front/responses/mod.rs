//! OpenAI Responses (`/v1/responses`), stateless, as Codex CLI and the `openai` SDKs'
//! `client.responses` speak it.
//!
//! Requests: `instructions` and `system`/`developer` messages become system messages;
//! `input_text`/`output_text`/`input_image` parts become content; `function_call` items become
//! assistant tool calls and `function_call_output` items `tool` messages, paired by `call_id`
//! (an unpaired one is refused); `reasoning` items are dropped. Built-in tools (`web_search`,
//! `file_search`, `namespace`, …) are dropped and named. Nothing is stored, so
//! `previous_response_id` is refused with the reason.
//!
//! Answers: the response object; streams as the full event sequence with increasing
//! `sequence_number`, ending in `response.completed` (or `.incomplete` / `.failed`).

mod answer;
mod request;

pub use answer::{StreamEncoder, render};
pub use request::parse;
