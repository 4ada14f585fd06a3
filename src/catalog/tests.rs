use super::*;

#[test]
fn key_validation() {
    let c = Catalog::builtin();
    assert!(c.check_key("groq", "gsk_abc").is_ok());
    assert!(c.check_key("groq", "gsk abc").is_err());
    assert!(
        c.check_key("nope", "k")
            .unwrap_err()
            .contains("unknown platform")
    );
    assert!(c.check_key("cloudflare", "abc123:tok").is_ok());
    for bad in ["tok", ":tok", "abc:", "a-b:tok"] {
        assert!(
            c.check_key("cloudflare", bad)
                .unwrap_err()
                .contains("account_id:api_token"),
            "{bad}"
        );
    }
}

#[test]
fn every_platform_says_where_its_free_tier_stands() {
    let c = Catalog::builtin();
    assert_eq!(c.platforms.len(), 20);
    for p in &c.platforms {
        let t = p
            .free_tier
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no free_tier", p.id));
        let checked = crate::time::parse_date_ms(&t.checked)
            .unwrap_or_else(|| panic!("{}: checked {:?} is not a date", p.id, t.checked));
        assert!(
            checked >= crate::time::parse_date_ms("2026-07-01").unwrap(),
            "{}: a fact of {} is stale",
            p.id,
            t.checked
        );
        assert!(
            t.source.starts_with("https://") && !t.source.contains(char::is_whitespace),
            "{}: the source is one address: {}",
            p.id,
            t.source
        );
        assert!(!t.note.is_empty(), "{}", p.id);
    }
    let status = |id: &str| c.platforms[c.platform_index(id).unwrap()].tier().unwrap();
    for (id, want) in [
        ("google", TierStatus::Free),
        ("groq", TierStatus::Free),
        ("cerebras", TierStatus::Credits),
        ("sambanova", TierStatus::Paid),
        ("github", TierStatus::Retired),
        ("moonshot", TierStatus::Paid),
        ("minimax", TierStatus::Paid),
        ("huggingface", TierStatus::Paid),
        ("ovhcloud", TierStatus::Free),
    ] {
        assert_eq!(status(id), want, "{id}");
    }
    let github = &c.platforms[c.platform_index("github").unwrap()];
    assert!(github.refuses_keys().unwrap().contains("2026-07-30"));
    assert!(c.platforms[0].refuses_keys().is_none());
    let keyless: Vec<&str> = c
        .platforms
        .iter()
        .filter(|p| p.keyless)
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(keyless, ["ovhcloud", "kilo", "llm7"]);
}

#[test]
fn models_route_only_where_the_tier_is_free_and_every_row_names_its_source() {
    use simd_json::prelude::*;
    let c = Catalog::builtin();
    for m in &c.models {
        let p = &c.platforms[m.platform];
        if m.enabled {
            assert_eq!(p.tier(), Some(TierStatus::Free), "{} is on", m.model_id);
        }
        if let Some(r) = &m.retired {
            assert!(!m.enabled, "{} is retired and on", m.model_id);
            assert!(matches!(r, Retirement::Announced { .. }));
        }
    }
    let mut raw = BUILTIN.as_bytes().to_vec();
    let v = simd_json::to_owned_value(&mut raw).unwrap();
    for row in v.get_array("models").unwrap() {
        let id = row.get_str("model_id").unwrap();
        let source = row
            .get_str("source")
            .or_else(|| row.get("retired").and_then(|r| r.get_str("source")));
        assert!(source.is_some_and(|s| s.len() > 10), "{id}: no source");
    }
    let serving = c.models.iter().filter(|m| m.serves()).count();
    assert!(serving >= 60, "{serving} models serve");
    for (i, p) in c.platforms.iter().enumerate() {
        if p.tier() == Some(TierStatus::Free) && p.id != "llm7" {
            assert!(
                c.dead_key_warning(i).is_none(),
                "{}: routes something",
                p.id
            );
        }
    }
    let retired = |id: &str| {
        c.models
            .iter()
            .find(|m| m.model_id == id)
            .and_then(|m| m.retired.as_ref())
            .map(|r| r.describe("Groq"))
    };
    assert_eq!(
        retired("llama-3.3-70b-versatile").as_deref(),
        Some("decommissioned by Groq; its replacement is openai/gpt-oss-120b (since 2026-08-16)")
    );
    assert!(retired("openai/gpt-oss-120b").is_none());
}

#[test]
fn embeddings_fim_pools_and_headers_are_data() {
    let c = Catalog::builtin();
    let embedding: Vec<&Model> = c
        .models
        .iter()
        .filter(|m| m.kind == Kind::Embedding)
        .collect();
    assert!(
        embedding
            .iter()
            .all(|m| m.family.is_some() && m.dimensions.is_some()),
        "every embedding row names its family and vector length"
    );
    let bge: Vec<&str> = embedding
        .iter()
        .filter(|m| m.family.as_deref() == Some("bge-m3"))
        .map(|m| c.platforms[m.platform].id.as_str())
        .collect();
    assert_eq!(bge, ["nvidia", "cloudflare"], "one family on two platforms");
    let fim: Vec<&str> = c
        .models
        .iter()
        .filter(|m| m.fim)
        .map(|m| m.model_id.as_str())
        .collect();
    assert_eq!(fim, ["codestral-latest"]);
    let or = &c.platforms[c.platform_index("openrouter").unwrap()];
    assert_eq!(
        or.extra_headers.get("X-Title").map(String::as_str),
        Some("FreeLLMAPI")
    );
    assert_eq!(
        c.platforms[c.platform_index("google").unwrap()].wire,
        Wire::Gemini
    );
    let cf = &c.platforms[c.platform_index("cloudflare").unwrap()];
    assert_eq!(cf.key_format, KeyFormat::AccountToken);
    assert!(cf.base_url.contains("{account_id}"));
    assert_eq!(cf.listing.format, ListingFormat::Cloudflare);
}

#[test]
fn a_bare_id_means_the_first_row_that_serves() {
    let c = Catalog::builtin();
    // Cerebras and SambaNova (not free) list gpt-oss-120b before OVHcloud does.
    let m = &c.models[c.find_model("gpt-oss-120b").unwrap()];
    assert_eq!(c.platforms[m.platform].id, "ovhcloud");
    let m = &c.models[c.find_model("sambanova/gpt-oss-120b").unwrap()];
    assert_eq!(c.platforms[m.platform].id, "sambanova");
}

#[test]
fn default_order_is_intelligence_not_fresh_install_order() {
    let c = Catalog::builtin();
    let order = c.intelligence_order();
    let first = &c.models[order[0]];
    assert_eq!(first.intelligence_rank, 1);
    let ranks: Vec<u32> = order
        .iter()
        .map(|&i| c.models[i].intelligence_rank)
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
    // github/gpt-4o was first in the reference's fresh install; here it sits by its rank.
    let gpt4o = order
        .iter()
        .position(|&i| c.models[i].model_id == "gpt-4o")
        .unwrap();
    assert!(gpt4o > 60);
}

#[test]
fn find_model_accepts_platform_prefix() {
    let c = Catalog::builtin();
    let a = c.find_model("qwen/qwen3.8-27b").unwrap();
    assert_eq!(c.find_model("groq/qwen/qwen3.8-27b"), Some(a));
    assert!(c.find_model("openai/gpt-oss-120b").is_some());
    assert_eq!(c.find_model("nope"), None);
}

#[test]
fn pools_are_assigned_by_suffix() {
    let c = Catalog::builtin();
    let or = c.platform_index("openrouter").unwrap();
    let free = c
        .models
        .iter()
        .find(|m| m.platform == or && m.model_id.ends_with(":free"))
        .unwrap();
    assert_eq!(free.pool, Some(0));
    assert_eq!(c.platforms[or].pools[0].limits.rpd, Some(50));
    let groq = c
        .models
        .iter()
        .find(|m| m.model_id == "openai/gpt-oss-20b")
        .unwrap();
    assert_eq!(groq.pool, None);
    let mistral = c
        .models
        .iter()
        .find(|m| m.model_id == "codestral-latest")
        .unwrap();
    assert_eq!(mistral.pool, Some(0), "an empty suffix pools every model");
    let google = &c.platforms[c.platform_index("google").unwrap()];
    assert_eq!(
        google.probe.invalid_reasons,
        vec!["API_KEY_INVALID".to_string()]
    );
}

#[test]
fn overrides_replace_base_urls() {
    let mut o = HashMap::new();
    o.insert("groq".to_string(), "http://127.0.0.1:9/v1".to_string());
    let c = Catalog::builtin().with_base_urls(&o);
    assert_eq!(
        c.platforms[c.platform_index("groq").unwrap()].base_url,
        "http://127.0.0.1:9/v1"
    );
}
