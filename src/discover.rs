//! What providers list: one platform's model listing read with one of its working keys (or
//! none, for a keyless platform), in the platform's listing format (OpenAI-style, Gemini's,
//! Cloudflare's model search, Cohere's), pages followed. `models discover` shows what the
//! catalog lacks; a sync (`catalog::lifecycle`) turns whole listings into retirements and
//! discovered rows.
//!
//! Owns the listing parsers and the fetch. Reads the store for a key and calls the provider;
//! writes nothing. Never logs or returns the key or a keyed URL.

use std::time::Duration;

use simd_json::OwnedValue;
use simd_json::prelude::*;

use crate::catalog::lifecycle::Step;
use crate::catalog::{Auth, Catalog, Kind, Lifecycle, Listed, ListingFormat, Platform};
use crate::crypto::MasterKey;
use crate::store::{KeyStatus, Store, StoreError};
use crate::upstream::{KeyRef, Upstream, UpstreamError};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Listings are large (OpenRouter lists hundreds of models) but bounded, per page.
const MAX_LISTING: u64 = 4 * 1024 * 1024;
/// Pages followed at most; a listing longer than that is read as far as this.
const MAX_PAGES: usize = 20;
/// Models kept from one listing.
const MAX_MODELS: usize = 5_000;

#[derive(Debug)]
pub enum DiscoverError {
    UnknownPlatform(String),
    /// No enabled, readable key for the platform.
    NoKey(String),
    Store(StoreError),
    Upstream(UpstreamError),
    /// The provider answered with this status.
    Status(u16),
    /// The answer is not a listing we can read.
    Unreadable,
}

impl std::fmt::Display for DiscoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoverError::UnknownPlatform(p) => write!(f, "unknown platform {p:?}"),
            DiscoverError::NoKey(p) => write!(
                f,
                "no usable {p} key to ask with; add one with `freellmapi keys add {p}`"
            ),
            DiscoverError::Store(e) => write!(f, "{e}"),
            DiscoverError::Upstream(e) => write!(f, "the provider could not be reached: {e}"),
            DiscoverError::Status(s) => write!(f, "the provider answered HTTP {s}"),
            DiscoverError::Unreadable => f.write_str("the provider's model list could not be read"),
        }
    }
}

/// Reads the listing of every platform a sync covers (the built-in ones still in service that
/// have a usable key, or whose keyless use the admin turned on; or only `only`) and says what
/// each changes against `catalog` and `life`. A platform without a key is left out, unless it
/// was named.
pub fn sync_steps(
    upstream: &Upstream,
    catalog: &Catalog,
    life: &Lifecycle,
    keyless_on: &[String],
    master: &MasterKey,
    store: &Store,
    only: Option<&str>,
) -> Result<Vec<Step>, DiscoverError> {
    let targets: Vec<usize> = match only {
        None => catalog.syncable().collect(),
        Some(id) => {
            let p = catalog
                .platform_index(id)
                .filter(|&p| catalog.syncable().any(|q| q == p))
                .ok_or_else(|| DiscoverError::UnknownPlatform(id.to_string()))?;
            vec![p]
        }
    };
    let mut steps = Vec::new();
    for p in targets {
        let plat = &catalog.platforms[p];
        let keyless_ok = keyless_on.contains(&plat.id);
        match fetch(upstream, plat, master, store, keyless_ok) {
            Ok(listed) => steps.push(Step::Change(life.plan(
                catalog,
                p,
                &listed,
                plat.listing_is_free,
            ))),
            Err(DiscoverError::NoKey(_)) if only.is_none() => {}
            Err(DiscoverError::Store(e)) => return Err(DiscoverError::Store(e)),
            Err(e) => steps.push(Step::Failed {
                platform: plat.id.clone(),
                error: e.to_string(),
            }),
        }
    }
    Ok(steps)
}

/// A listed model, marked when the catalog already has it (for that platform).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub listed: Listed,
    pub known: bool,
}

/// Asks `platform` for its models; returns them sorted by id, each marked known or not.
pub fn discover(
    upstream: &Upstream,
    catalog: &Catalog,
    master: &MasterKey,
    store: &Store,
    platform: &str,
) -> Result<Vec<Found>, DiscoverError> {
    let p = catalog
        .platform_index(platform)
        .ok_or_else(|| DiscoverError::UnknownPlatform(platform.to_string()))?;
    let mut listed = fetch(upstream, &catalog.platforms[p], master, store, true)?;
    listed.sort_by(|a, b| a.model_id.cmp(&b.model_id));
    Ok(listed
        .into_iter()
        .map(|l| Found {
            known: catalog
                .models
                .iter()
                .any(|m| m.platform == p && m.model_id == l.model_id),
            listed: l,
        })
        .collect())
}

/// The whole listing of `plat`, asked with its first usable key (`keyless_ok`: with none, if
/// the platform serves without one).
pub fn fetch(
    upstream: &Upstream,
    plat: &Platform,
    master: &MasterKey,
    store: &Store,
    keyless_ok: bool,
) -> Result<Vec<Listed>, DiscoverError> {
    let key = if plat.auth == Auth::None {
        None
    } else {
        let found = store
            .list_keys()
            .map_err(DiscoverError::Store)?
            .into_iter()
            .filter(|k| k.platform == plat.id && k.enabled && k.status != KeyStatus::Invalid)
            .find_map(|k| {
                let sealed = k
                    .sealed_bytes()
                    .filter(|s| master.open(s, &k.platform).is_ok())?;
                // Listed the way the key's calls go: through its own proxy, if it has one.
                Some((sealed, k.open_proxy(master).ok()?))
            });
        match found {
            Some(k) => Some(k),
            None if plat.keyless && keyless_ok => None,
            None => return Err(DiscoverError::NoKey(plat.id.clone())),
        }
    };
    let key_ref = key.as_ref().map(|(sealed, proxy)| KeyRef {
        sealed,
        proxy: proxy.as_deref(),
    });
    let url = listing_url(plat);
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let this = match &page {
            None => url.clone(),
            Some(token) => with_page(&url, plat.listing.format, token),
        };
        let (status, mut body) = upstream
            .get(plat, key_ref, master, &this, TIMEOUT, MAX_LISTING)
            .map_err(DiscoverError::Upstream)?;
        if !(200..300).contains(&status) {
            return Err(DiscoverError::Status(status));
        }
        let (models, next) = read_listing(plat.listing.format, &mut body)?;
        out.extend(models);
        match next {
            Some(token) if out.len() < MAX_MODELS => page = Some(token),
            _ => break,
        }
    }
    out.retain(|l| {
        !plat
            .listing
            .skip
            .iter()
            .any(|s| l.model_id.to_ascii_lowercase().contains(s.as_str()))
    });
    out.truncate(MAX_MODELS);
    out.sort_by(|a, b| a.model_id.cmp(&b.model_id));
    out.dedup_by(|a, b| a.model_id == b.model_id);
    Ok(out)
}

/// The listing URL with `{base}` and `{origin}` (the base's scheme and host) filled, so a
/// listing beside the API (Cloudflare's, Cohere's) follows a base-URL override;
/// `{account_id}` is filled with the key.
fn listing_url(plat: &Platform) -> String {
    let base = plat.base_url.trim_end_matches('/');
    let origin = base
        .find("://")
        .and_then(|s| base[s + 3..].find('/').map(|e| &base[..s + 3 + e]))
        .unwrap_or(base);
    plat.listing
        .url
        .replace("{base}", base)
        .replace("{origin}", origin)
}

/// The URL of the page after the one a listing said comes next.
fn with_page(url: &str, format: ListingFormat, token: &str) -> String {
    let param = match format {
        ListingFormat::Gemini => "pageToken",
        ListingFormat::Cohere => "page_token",
        ListingFormat::Cloudflare => "page",
        ListingFormat::Openai => "after",
    };
    let token: String = token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}={token}")
}

/// Reads one page of a listing: its models, and the token of the next page if there is one.
pub fn read_listing(
    format: ListingFormat,
    body: &mut [u8],
) -> Result<(Vec<Listed>, Option<String>), DiscoverError> {
    let v = crate::json::parse_object(body).map_err(|_| DiscoverError::Unreadable)?;
    let rows = |field: &str| v.get_array(field).ok_or(DiscoverError::Unreadable);
    Ok(match format {
        ListingFormat::Openai => (rows("data")?.iter().filter_map(openai).collect(), None),
        ListingFormat::Gemini => (
            rows("models")?.iter().filter_map(gemini).collect(),
            next_token(&v, "nextPageToken"),
        ),
        ListingFormat::Cohere => (
            rows("models")?.iter().filter_map(cohere).collect(),
            next_token(&v, "next_page_token"),
        ),
        ListingFormat::Cloudflare => {
            let today = &crate::time::rfc3339_ms(crate::time::now_ms())[..10];
            let rows = rows("result")?;
            let models: Vec<Listed> = rows.iter().filter_map(|m| cloudflare(m, today)).collect();
            let info = v.get("result_info");
            let page = info.and_then(|i| i.get_u64("page")).unwrap_or(1);
            let per_page = info.and_then(|i| i.get_u64("per_page")).unwrap_or(0);
            // `total_count` is not always there: a full page then means there may be more.
            let more = match info.and_then(|i| i.get_u64("total_count")) {
                Some(total) => per_page > 0 && page * per_page < total,
                None => per_page > 0 && rows.len() as u64 >= per_page,
            };
            (models, more.then(|| (page + 1).to_string()))
        }
    })
}

fn next_token(v: &OwnedValue, field: &str) -> Option<String> {
    v.get_str(field)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn u32_of(v: Option<&OwnedValue>) -> Option<u32> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
}

fn first_u32(m: &OwnedValue, paths: &[&[&str]]) -> Option<u32> {
    paths.iter().find_map(|path| {
        let mut v = m;
        for f in *path {
            v = v.get(*f)?;
        }
        u32_of(Some(v))
    })
}

fn strings(v: Option<&OwnedValue>) -> impl Iterator<Item = &str> {
    v.and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
}

/// A price field: a decimal string (OpenRouter) or a number; zero means free.
fn is_zero(v: Option<&OwnedValue>) -> Option<bool> {
    let v = v?;
    let n = v
        .as_f64()
        .or_else(|| v.as_u64().map(|n| n as f64))
        .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()))?;
    Some(n == 0.0)
}

/// `data[]` of an OpenAI-style listing, with what OpenRouter, Groq and Mistral add.
fn openai(m: &OwnedValue) -> Option<Listed> {
    let id = m.get_str("id")?.to_string();
    // Groq marks models it no longer serves; Mistral which ones do not chat.
    if m.get_bool("active") == Some(false) {
        return None;
    }
    // Groq lists its Whisper models beside the chat ones with nothing else to tell them
    // apart; what speaks Whisper's API is speech to text.
    if id.to_ascii_lowercase().contains("whisper") {
        return Some(Listed {
            name: m.get_str("name").map(str::to_string),
            kind: Kind::Transcription,
            model_id: id,
            ..Listed::default()
        });
    }
    let caps = m.get("capabilities");
    let cap = |name: &str| caps.and_then(|c| c.get_bool(name));
    let params: Vec<String> = strings(m.get("supported_parameters"))
        .map(str::to_string)
        .collect();
    let embedding = m.get_str("type") == Some("embedding")
        || strings(
            m.get("architecture")
                .and_then(|a| a.get("output_modalities")),
        )
        .any(|x| x == "embeddings");
    if cap("completion_chat") == Some(false) && !embedding {
        return None;
    }
    let vision = cap("vision") == Some(true)
        || strings(
            m.get("architecture")
                .and_then(|a| a.get("input_modalities")),
        )
        .any(|x| x == "image");
    let tools = cap("function_calling") == Some(true) || params.iter().any(|p| p == "tools");
    let json_schema = params
        .iter()
        .any(|p| p == "structured_outputs" || p == "response_format");
    let free = listed_free(m);
    Some(Listed {
        name: m.get_str("name").map(str::to_string),
        context_window: first_u32(
            m,
            &[
                &["context_length"],
                &["context_window"],
                &["context_window", "tokens"],
                &["max_context_length"],
                &["max_model_len"],
                &["top_provider", "context_length"],
            ],
        ),
        max_output_tokens: first_u32(
            m,
            &[
                &["max_completion_tokens"],
                &["top_provider", "max_completion_tokens"],
                &["max_output_tokens"],
            ],
        ),
        kind: if embedding {
            Kind::Embedding
        } else {
            Kind::Chat
        },
        vision,
        tools,
        json_schema,
        free,
        supported_parameters: params,
        model_id: id,
    })
}

/// What an OpenAI-style listing says about a model's price, in the forms providers use:
/// OpenRouter's and Kilo's `pricing {prompt, completion}` (both zero: free), LLM7's `tier`
/// (`turbo` is its free tier), Hugging Face's `providers[]` (free when a live provider says
/// `is_free`). `None`: the listing says nothing.
fn listed_free(m: &OwnedValue) -> Option<bool> {
    if let Some(tier) = m.get_str("tier") {
        return Some(tier == "turbo" && m.get_bool("usage_based_only") != Some(true));
    }
    if let Some(providers) = m.get_array("providers") {
        return Some(providers.iter().any(|p| {
            p.get_bool("is_free") == Some(true) && p.get_str("status").is_none_or(|s| s == "live")
        }));
    }
    let pricing = m.get("pricing");
    match (
        is_zero(pricing.and_then(|p| p.get("prompt"))),
        is_zero(pricing.and_then(|p| p.get("completion"))),
    ) {
        (Some(a), Some(b)) => Some(a && b),
        _ => None,
    }
}

/// `models[]` of Gemini's listing: chat models generate content, embedding models embed.
fn gemini(m: &OwnedValue) -> Option<Listed> {
    let id = m.get_str("name")?.trim_start_matches("models/").to_string();
    let methods: Vec<&str> = strings(m.get("supportedGenerationMethods")).collect();
    let kind = if methods.contains(&"generateContent") {
        Kind::Chat
    } else if methods.iter().any(|x| x.starts_with("embed")) {
        Kind::Embedding
    } else {
        return None;
    };
    Some(Listed {
        name: m.get_str("displayName").map(str::to_string),
        context_window: u32_of(m.get("inputTokenLimit")),
        max_output_tokens: u32_of(m.get("outputTokenLimit")),
        kind,
        model_id: id,
        ..Listed::default()
    })
}

/// `models[]` of Cohere's listing: the endpoints say what each does.
fn cohere(m: &OwnedValue) -> Option<Listed> {
    let endpoints: Vec<&str> = strings(m.get("endpoints")).collect();
    let kind = if endpoints.contains(&"chat") {
        Kind::Chat
    } else if endpoints.contains(&"embed") {
        Kind::Embedding
    } else {
        return None;
    };
    if m.get_bool("is_deprecated") == Some(true) {
        return None;
    }
    let features: Vec<&str> = strings(m.get("features")).collect();
    Some(Listed {
        model_id: m.get_str("name")?.to_string(),
        context_window: u32_of(m.get("context_length")),
        kind,
        vision: features.contains(&"vision"),
        tools: features.contains(&"tools"),
        json_schema: features.contains(&"json_schema"),
        ..Listed::default()
    })
}

/// `result[]` of Cloudflare's model search: text generation (and image-text-to-text, which is
/// how Cloudflare files chat models that also see images), text embeddings and the Whisper
/// models of automatic speech recognition (other recognisers take other inputs); facts come as
/// `properties[] {property_id, value}` with string values. A model past its planned
/// deprecation date is left out; one that needs Workers Paid is not free.
fn cloudflare(m: &OwnedValue, today: &str) -> Option<Listed> {
    let whisper = m.get_str("name").is_some_and(|n| n.contains("whisper"));
    let kind = match m.get("task").and_then(|t| t.get_str("name")) {
        Some("Text Generation" | "Image-Text-to-Text") => Kind::Chat,
        Some("Text Embeddings") => Kind::Embedding,
        Some("Automatic Speech Recognition") if whisper => Kind::Transcription,
        _ => return None,
    };
    let prop = |name: &str| {
        m.get_array("properties")?
            .iter()
            .find(|p| p.get_str("property_id") == Some(name))
            .and_then(|p| p.get("value"))
    };
    let truthy = |name: &str| {
        prop(name).is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
    };
    if prop("planned_deprecation_date")
        .and_then(|v| v.as_str())
        .is_some_and(|d| d.get(..10).is_some_and(|d| d <= today))
    {
        return None;
    }
    Some(Listed {
        model_id: m.get_str("name")?.to_string(),
        context_window: u32_of(prop("context_window")).or_else(|| u32_of(prop("max_input_tokens"))),
        kind,
        vision: truthy("vision"),
        tools: truthy("function_calling"),
        free: truthy("require_workers_paid").then_some(false),
        ..Listed::default()
    })
}

#[cfg(test)]
mod tests;
