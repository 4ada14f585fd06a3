//! The listing parsers on the shapes each provider answers (trimmed to a few rows, fields as
//! the providers document them), and the listing URL.

use super::*;
use crate::catalog::ListingSpec;

fn read(format: ListingFormat, body: &str) -> (Vec<Listed>, Option<String>) {
    read_listing(format, &mut body.as_bytes().to_vec()).unwrap()
}

#[test]
fn groq_lists_context_output_and_inactive_models() {
    let (l, next) = read(
        ListingFormat::Openai,
        r#"{"object":"list","data":[
          {"id":"openai/gpt-oss-120b","object":"model","created":1754408224,"owned_by":"OpenAI","active":true,"context_window":131072,"public_apps":null,"max_completion_tokens":65536},
          {"id":"llama-3.3-70b-versatile","object":"model","owned_by":"Meta","active":false,"context_window":131072},
          {"id":"whisper-large-v3","object":"model","owned_by":"OpenAI","active":true,"context_window":448}]}"#,
    );
    assert_eq!(next, None);
    let ids: Vec<&str> = l.iter().map(|m| m.model_id.as_str()).collect();
    assert_eq!(
        ids,
        ["openai/gpt-oss-120b", "whisper-large-v3"],
        "inactive left out"
    );
    assert_eq!(l[0].context_window, Some(131_072));
    assert_eq!(l[0].max_output_tokens, Some(65_536));
    assert_eq!(l[0].free, None, "no prices: the listing says nothing");
    assert_eq!(l[0].kind, Kind::Chat);
    assert_eq!(l[1].kind, Kind::Transcription, "Whisper is speech to text");
    assert_eq!(
        l[1].context_window, None,
        "Whisper's 448 tokens are not a chat window"
    );
}

#[test]
fn openrouter_prices_modalities_and_parameters() {
    let (l, _) = read(
        ListingFormat::Openai,
        r#"{"data":[
          {"id":"openai/gpt-oss-120b:free","name":"OpenAI: gpt-oss-120b (free)","context_length":131072,
           "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]},
           "pricing":{"prompt":"0","completion":"0","request":"0","image":"0"},
           "top_provider":{"context_length":131072,"max_completion_tokens":32768,"is_moderated":false},
           "supported_parameters":["max_tokens","temperature","tools","tool_choice","response_format","structured_outputs"]},
          {"id":"google/gemma-4-31b-it","name":"Gemma 4 31B","context_length":262144,
           "architecture":{"input_modalities":["text","image"],"output_modalities":["text"]},
           "pricing":{"prompt":"0.0000001","completion":"0.0000004"},
           "supported_parameters":["max_tokens"]}]}"#,
    );
    let free = &l[0];
    assert_eq!(free.free, Some(true));
    assert_eq!(free.name.as_deref(), Some("OpenAI: gpt-oss-120b (free)"));
    assert_eq!(
        (free.context_window, free.max_output_tokens),
        (Some(131_072), Some(32_768))
    );
    assert!(free.tools && free.json_schema && !free.vision);
    assert_eq!(free.supported_parameters.len(), 6);
    let priced = &l[1];
    assert_eq!(priced.free, Some(false), "a price is not free");
    assert!(priced.vision && !priced.tools);
}

#[test]
fn mistral_capabilities_leave_out_what_does_not_chat() {
    let (l, _) = read(
        ListingFormat::Openai,
        r#"{"object":"list","data":[
          {"id":"mistral-medium-latest","object":"model","max_context_length":131072,
           "capabilities":{"completion_chat":true,"completion_fim":false,"function_calling":true,"fine_tuning":false,"vision":true},"deprecation":null},
          {"id":"mistral-ocr-latest","object":"model","capabilities":{"completion_chat":false,"function_calling":false,"vision":false}},
          {"id":"mistral-embed","object":"model","type":"embedding","max_context_length":8192,"capabilities":{"completion_chat":false}}]}"#,
    );
    let ids: Vec<&str> = l.iter().map(|m| m.model_id.as_str()).collect();
    assert_eq!(ids, ["mistral-medium-latest", "mistral-embed"]);
    assert!(l[0].tools && l[0].vision);
    assert_eq!(l[0].context_window, Some(131_072));
    assert_eq!(l[1].kind, Kind::Embedding);
}

#[test]
fn gemini_chat_and_embedding_models_and_the_next_page() {
    let (l, next) = read(
        ListingFormat::Gemini,
        r#"{"models":[
          {"name":"models/gemini-3.8-flash","version":"001","displayName":"Gemini 3.8 Flash","inputTokenLimit":1048576,"outputTokenLimit":65536,
           "supportedGenerationMethods":["generateContent","countTokens","createCachedContent","batchGenerateContent"]},
          {"name":"models/gemini-embedding-001","displayName":"Gemini Embedding 001","inputTokenLimit":2048,"outputTokenLimit":1,
           "supportedGenerationMethods":["embedContent","countTextTokens","countTokens"]},
          {"name":"models/aqa","supportedGenerationMethods":["generateAnswer"]}],
         "nextPageToken":"Cg5nZW1pbmktMi41LXBybw=="}"#,
    );
    assert_eq!(next.as_deref(), Some("Cg5nZW1pbmktMi41LXBybw=="));
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].model_id, "gemini-3.8-flash");
    assert_eq!(
        (l[0].context_window, l[0].max_output_tokens),
        (Some(1_048_576), Some(65_536))
    );
    assert_eq!(l[1].kind, Kind::Embedding);
    let (_, last) = read(ListingFormat::Gemini, r#"{"models":[],"nextPageToken":""}"#);
    assert_eq!(last, None);
}

#[test]
fn cohere_endpoints_features_and_deprecations() {
    let (l, next) = read(
        ListingFormat::Cohere,
        r#"{"models":[
          {"name":"command-a-03-2025","endpoints":["generate","chat","summarize"],"finetuned":false,"context_length":256000,
           "tokenizer_url":"https://storage.googleapis.com/x.json","default_endpoints":["chat"],"features":["tools","json_mode","json_schema","strict_tools"]},
          {"name":"command-r-plus-08-2024","endpoints":["chat"],"is_deprecated":true,"context_length":128000},
          {"name":"embed-v4.0","endpoints":["embed","embed_image"],"context_length":128000,"features":null},
          {"name":"rerank-v3.5","endpoints":["rerank"]}],
         "next_page_token":"abc"}"#,
    );
    assert_eq!(next.as_deref(), Some("abc"));
    let ids: Vec<&str> = l.iter().map(|m| m.model_id.as_str()).collect();
    assert_eq!(ids, ["command-a-03-2025", "embed-v4.0"]);
    assert!(l[0].tools && l[0].json_schema);
    assert_eq!(l[0].context_window, Some(256_000));
    assert_eq!(l[1].kind, Kind::Embedding);
}

#[test]
fn cloudflare_search_tasks_properties_and_pages() {
    let (l, next) = read(
        ListingFormat::Cloudflare,
        r#"{"success":true,"errors":[],"messages":[],"result":[
          {"id":"b9dc2c4c-0000-4000-8000-000000000001","source":1,"name":"@cf/openai/gpt-oss-120b","description":"OpenAI's open-weight model",
           "task":{"id":"c329a1f9","name":"Text Generation","description":"..."},"created_at":"2025-08-05 10:49:53.265","tags":[],
           "properties":[{"property_id":"context_window","value":"128000"},{"property_id":"function_calling","value":"true"},{"property_id":"price","value":[{"unit":"per M input tokens","price":0.35,"currency":"USD"}]}]},
          {"id":"x2","name":"@cf/baai/bge-m3","task":{"name":"Text Embeddings"},"properties":[{"property_id":"max_input_tokens","value":"8192"}]},
          {"id":"x3","name":"@cf/openai/whisper","task":{"name":"Automatic Speech Recognition"},"properties":[]},
          {"id":"x4","name":"@cf/deepgram/nova-3","task":{"name":"Automatic Speech Recognition"},"properties":[]}],
         "result_info":{"count":4,"page":1,"per_page":4,"total_count":9}}"#,
    );
    assert_eq!(next.as_deref(), Some("2"));
    // Whisper is speech to text; a recogniser with another input is left out.
    assert_eq!(l.len(), 3);
    assert_eq!(
        (l[2].model_id.as_str(), l[2].kind),
        ("@cf/openai/whisper", Kind::Transcription)
    );
    assert_eq!(l[0].model_id, "@cf/openai/gpt-oss-120b");
    assert!(l[0].tools);
    assert_eq!(l[0].context_window, Some(128_000));
    assert_eq!(
        (l[1].kind, l[1].context_window),
        (Kind::Embedding, Some(8192))
    );
    let (_, last) = read(
        ListingFormat::Cloudflare,
        r#"{"result":[],"result_info":{"page":3,"per_page":3,"total_count":7}}"#,
    );
    assert_eq!(last, None);
}

#[test]
fn llm7_tiers_and_hugging_face_providers_say_what_is_free() {
    let (l, _) = read(
        ListingFormat::Openai,
        r#"{"object":"list","data":[
          {"id":"gpt-5.4","object":"model","owned_by":"","tier":"pro","pricing":{"input":0.5,"output":4.5,"unit":"1M tokens"},
           "context_window":{"tokens":1050000,"chars":null},"usage_based_only":true,"tools_calling":true},
          {"id":"gpt-oss-20b","object":"model","tier":"turbo","context_window":{"tokens":131072,"chars":null},"usage_based_only":false}]}"#,
    );
    assert_eq!((l[0].free, l[1].free), (Some(false), Some(true)));
    assert_eq!(l[1].context_window, Some(131_072));
    let (l, _) = read(
        ListingFormat::Openai,
        r#"{"object":"list","data":[
          {"id":"deepseek-ai/DeepSeek-V4-Pro","object":"model","owned_by":"deepseek-ai",
           "architecture":{"input_modalities":["text"],"output_modalities":["text"]},
           "providers":[{"provider":"novita","status":"live","context_length":1048576,"pricing":{"input":1.69,"output":3.38},"supports_tools":true}]},
          {"id":"Qwen/Qwen3.8-27B","object":"model","providers":[
            {"provider":"a","status":"error","is_free":true},{"provider":"b","status":"live","is_free":true,"context_length":262144}]}]}"#,
    );
    assert_eq!((l[0].free, l[1].free), (Some(false), Some(true)));
}

#[test]
fn cloudflare_paid_and_retired_models_and_image_text_chat() {
    let (l, next) = read(
        ListingFormat::Cloudflare,
        r#"{"result":[
          {"name":"@cf/zai-org/glm-5.3-flash","task":{"name":"Text Generation"},
           "properties":[{"property_id":"require_workers_paid","value":"true"},{"property_id":"context_window","value":"1310720"}]},
          {"name":"@cf/qwen/qwen3.8-27b","task":{"name":"Image-Text-to-Text"},
           "properties":[{"property_id":"vision","value":"true"},{"property_id":"function_calling","value":"true"}]},
          {"name":"@cf/meta/llama-3.1-8b-instruct","task":{"name":"Text Generation"},
           "properties":[{"property_id":"planned_deprecation_date","value":"2026-05-30"}]}],
         "result_info":{"page":1,"per_page":3}}"#,
    );
    assert_eq!(
        next.as_deref(),
        Some("2"),
        "a full page without a total may have more"
    );
    let ids: Vec<&str> = l.iter().map(|m| m.model_id.as_str()).collect();
    assert_eq!(
        ids,
        ["@cf/zai-org/glm-5.3-flash", "@cf/qwen/qwen3.8-27b"],
        "past its deprecation date"
    );
    assert_eq!(l[0].free, Some(false), "needs Workers Paid");
    assert_eq!(l[1].free, None);
    assert!(l[1].vision && l[1].tools);
}

#[test]
fn what_is_not_a_listing_is_refused() {
    for (format, body) in [
        (ListingFormat::Openai, "<html>"),
        (ListingFormat::Openai, r#"{"models":[]}"#),
        (ListingFormat::Gemini, r#"{"data":[]}"#),
        (
            ListingFormat::Cloudflare,
            r#"{"success":false,"errors":[{"code":10000}]}"#,
        ),
    ] {
        assert!(
            read_listing(format, &mut body.as_bytes().to_vec()).is_err(),
            "{body}"
        );
    }
}

#[test]
fn listing_urls_follow_the_base() {
    let mut p = crate::catalog::Catalog::builtin().platforms[0].clone();
    p.base_url = "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/v1".into();
    p.listing = ListingSpec {
        url: "{origin}/client/v4/accounts/{account_id}/ai/models/search?per_page=500".into(),
        ..ListingSpec::default()
    };
    assert_eq!(
        listing_url(&p),
        "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/models/search?per_page=500"
    );
    p.listing.url = "{base}/models".into();
    assert_eq!(
        listing_url(&p),
        "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/v1/models"
    );
    p.base_url = "http://127.0.0.1:9000/compatibility/v1".into();
    p.listing = ListingSpec::default();
    p.listing.url = "{origin}/v1/models?page_size=1000".into();
    assert_eq!(
        listing_url(&p),
        "http://127.0.0.1:9000/v1/models?page_size=1000"
    );
    assert_eq!(
        with_page(
            "http://h/v1/models?pageSize=1000",
            ListingFormat::Gemini,
            "a/b="
        ),
        "http://h/v1/models?pageSize=1000&pageToken=a%2Fb%3D"
    );
}
