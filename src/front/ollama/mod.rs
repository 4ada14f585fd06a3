//! The Ollama API's generating routes (`/api/chat`, `/api/generate`), as Open WebUI, Home
//! Assistant, Zed, JetBrains and the `ollama` client libraries speak them: requests made
//! internal, answers as one object or NDJSON lines.

mod answer;
mod request;

pub use answer::{Route, StreamEncoder, loaded, render};
pub use request::{model, model_name, parse_chat, parse_generate, peek};
