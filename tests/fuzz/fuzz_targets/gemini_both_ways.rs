//! Gemini both ways: a chat request translated to a `generateContent` body (which must be JSON),
//! and the same bytes read as a Gemini answer and as a Gemini stream event.
#![no_main]

use std::collections::hash_map::DefaultHasher;

use freellmapi::catalog::Catalog;
use freellmapi::chat::ChatRequest;
use freellmapi::wire::{self, gemini};

static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let catalog = CATALOG.get_or_init(Catalog::builtin);
    let Some(p) = catalog.platform_index("google") else {
        return;
    };
    let platform = &catalog.platforms[p];
    let Some(model) = catalog.models.iter().find(|m| m.platform == p) else {
        return;
    };
    let mut bytes = data.to_vec();
    if let Ok(chat) = ChatRequest::parse(&mut bytes, DefaultHasher::new()) {
        if let Ok(mut body) = gemini::request_body(&chat, None) {
            assert!(
                freellmapi::json::parse_value(&mut body).is_ok(),
                "a translated request is not JSON"
            );
        }
    }
    let mut simple = b"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}".to_vec();
    let chat = ChatRequest::parse(&mut simple, DefaultHasher::new()).expect("a fixed request");
    let _ = wire::completion(platform, model, data.to_vec(), &chat);
    let mut decoder = gemini::StreamDecoder::new(&model.model_id);
    let mut chunks = Vec::new();
    let _ = decoder.decode(data, &mut chunks);
});
