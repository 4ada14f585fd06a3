//! The Gemini API's generating routes (`models/{model}:generateContent`,
//! `:streamGenerateContent`, `:countTokens`), as Google's `google-genai` SDKs and Gemini CLI
//! speak them: requests made internal, answers as `GenerateContentResponse`s.

mod answer;
mod request;

pub use answer::{StreamEncoder, render, token_count};
pub use request::{model_name, parse};
