//! Any chat-completion body: parsed and validated, then written out for an OpenAI-compatible
//! upstream. No panic, and what is accepted is written out as JSON that parses again.
#![no_main]

use std::collections::hash_map::DefaultHasher;

use freellmapi::chat::ChatRequest;
use freellmapi::wire::openai;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    let Ok(chat) = ChatRequest::parse(&mut bytes, DefaultHasher::new()) else {
        return;
    };
    let mut out = openai::request_body(&chat, "some-model", openai::Dialect::default());
    assert!(
        freellmapi::json::parse_value(&mut out).is_ok(),
        "an accepted request was written out as invalid JSON"
    );
});
