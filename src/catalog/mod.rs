//! The catalog: which platforms exist (base URL, wire format, auth style, extra headers) and
//! which models each offers with their free-tier limits. Provider differences live here as
//! data; code differs only per wire format (`crate::wire`).
//!
//! Owns the built-in catalog embedded from `catalog.json`, with base-URL overrides from the
//! environment applied once at start. Immutable after construction; the router holds it in
//! its snapshot.

pub mod aliases;
pub mod envfile;
mod overrides;

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use aliases::{Alias, AliasRoute};
pub use overrides::{CustomModel, CustomPlatform, ModelOverride, Overrides};

const BUILTIN: &str = include_str!("catalog.json");

/// The code that speaks to a platform. Everything else about a platform is data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    /// `POST {base}/chat/completions` with the OpenAI body.
    Openai,
    /// OpenAI-compatible, with the account id in the URL and `content: null` sent as `""`.
    Cloudflare,
    /// Google's `generateContent` API.
    Gemini,
}

/// Where the provider key goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Auth {
    #[serde(rename = "bearer")]
    Bearer,
    /// `x-goog-api-key: <key>`; never in the URL, so it cannot reach an access log.
    #[serde(rename = "x-goog-api-key")]
    GoogApiKey,
    /// No credentials (a local server on a custom platform).
    #[serde(rename = "none")]
    None,
}

/// How a key's validity is checked without spending quota: a cheap authenticated
/// request. `url` may use `{base}`, `{origin}` (scheme://host of the base) and `{account_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub method: String,
    pub url: String,
    /// Statuses that mean the key is not valid.
    #[serde(default)]
    pub invalid: Vec<u16>,
    /// Structured `error.details[].reason` values that mean the same (Google's 400).
    #[serde(default)]
    pub invalid_reasons: Vec<String>,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            method: "GET".into(),
            url: "{base}/models".into(),
            invalid: vec![401, 403],
            invalid_reasons: vec![],
        }
    }
}

/// A limit shared by several models of one account (e.g. OpenRouter's daily cap on `:free`
/// models). Applies to the models whose id ends with `suffix` (every model when empty).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pool {
    pub id: String,
    #[serde(default)]
    pub suffix: String,
    #[serde(flatten)]
    pub limits: Limits,
    #[serde(default)]
    pub note: String,
}

/// How a stored key is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyFormat {
    #[serde(rename = "plain")]
    Plain,
    /// `account_id:api_token`; the account id fills `{account_id}` in the base URL.
    #[serde(rename = "account_id:api_token")]
    AccountToken,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    pub id: String,
    pub name: String,
    pub wire: Wire,
    pub base_url: String,
    pub auth: Auth,
    pub key_format: KeyFormat,
    /// Variable names recognised by `keys import` (first is the canonical one).
    pub key_env: Vec<String>,
    #[serde(default)]
    pub extra_headers: HashMap<String, String>,
    /// Time to the first response byte, when a platform needs longer than the default.
    #[serde(default, rename = "first_byte_timeout_s", deserialize_with = "secs")]
    pub first_byte_timeout: Option<Duration>,
    /// The platform reports real token counts in a stream when asked
    /// (`stream_options.include_usage`); streams ask it even when the client did not.
    #[serde(default)]
    pub stream_usage: bool,
    #[serde(default)]
    pub probe: Probe,
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// Added by the user (a `custom-*` platform), not shipped in the catalog.
    #[serde(default)]
    pub custom: bool,
    /// Set when the provider has no free tier left: what a key for it needs instead.
    #[serde(default, deserialize_with = "non_empty")]
    pub no_free_tier: Option<String>,
}

fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

fn secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
}

/// Free-tier limits of one model, per key. `None` means not tracked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
}

/// What a model does: chat (and completions built on chat), or embeddings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Chat,
    Embedding,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Embedding => "embedding",
        }
    }
}

/// What a chat model can do beyond plain text: a small set, checked against what a request
/// needs before the model is offered it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps(u8);

impl Caps {
    pub const NONE: Caps = Caps(0);
    /// Image parts in messages.
    pub const VISION: Caps = Caps(1);
    /// `tools` / tool calls.
    pub const TOOLS: Caps = Caps(2);
    /// `response_format: {"type":"json_schema"}`.
    pub const JSON_SCHEMA: Caps = Caps(4);
    const NAMES: [(Caps, &'static str); 3] = [
        (Caps::VISION, "vision"),
        (Caps::TOOLS, "tools"),
        (Caps::JSON_SCHEMA, "json_schema"),
    ];

    pub fn with(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Caps::NAMES
            .iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| *n)
            .collect()
    }

    /// From names; an unknown one is an error naming it.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Caps, String> {
        names.iter().try_fold(Caps::NONE, |acc, n| {
            let n = n.as_ref();
            Caps::NAMES
                .iter()
                .find(|(_, name)| *name == n)
                .map(|(c, _)| acc.with(*c))
                .ok_or_else(|| {
                    format!("unknown capability {n:?}; expected vision, tools or json_schema")
                })
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
struct ModelRow {
    platform: String,
    model_id: String,
    display_name: String,
    intelligence_rank: u32,
    speed_rank: u32,
    size_label: String,
    #[serde(flatten)]
    limits: Limits,
    monthly_token_budget: String,
    context_window: Option<u32>,
    enabled: bool,
    #[serde(default)]
    kind: Kind,
    #[serde(default)]
    fim: bool,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    flexible_dimensions: bool,
    /// `vision`, `tools`, `json_schema` (chat models).
    #[serde(default)]
    caps: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Model {
    /// Index into [`Catalog::platforms`].
    pub platform: usize,
    pub model_id: String,
    pub display_name: String,
    pub intelligence_rank: u32,
    pub speed_rank: u32,
    pub size_label: String,
    pub limits: Limits,
    pub monthly_token_budget: String,
    pub context_window: Option<u32>,
    pub enabled: bool,
    /// Index into the platform's `pools`, when a shared limit applies to this model.
    pub pool: Option<usize>,
    /// Added by the user rather than shipped.
    pub custom: bool,
    pub kind: Kind,
    /// Serves fill-in-the-middle (`prompt` + `suffix`) at `{base}/fim/completions`.
    pub fim: bool,
    /// Models whose vectors are interchangeable share a family (embeddings fail over only
    /// within one).
    pub family: Option<String>,
    /// The most output tokens one answer may ask for, when the provider documents a limit.
    pub max_output_tokens: Option<u32>,
    /// Embedding vector length.
    pub dimensions: Option<u32>,
    /// Accepts a smaller `dimensions` (truncated, Matryoshka-style vectors).
    pub flexible_dimensions: bool,
    /// What it can do beyond plain text chat.
    pub caps: Caps,
}

impl Model {
    /// The capability names `/v1/models` lists: `chat` or `embedding`, then `fim` and the
    /// [`Caps`].
    pub fn capability_names(&self) -> Vec<&'static str> {
        let mut out = vec![self.kind.as_str()];
        if self.fim {
            out.push("fim");
        }
        out.extend(self.caps.names());
        out
    }

    /// The output tokens a request may ask of this model with `input_tokens` of prompt: the
    /// documented output limit, else what the context window leaves.
    pub fn output_room(&self, input_tokens: u64) -> Option<u64> {
        let by_window = self
            .context_window
            .map(|w| u64::from(w).saturating_sub(input_tokens).max(1));
        match (self.max_output_tokens.map(u64::from), by_window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    platforms: Vec<Platform>,
    models: Vec<ModelRow>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub platforms: Vec<Platform>,
    pub models: Vec<Model>,
    /// How vendor model names (`claude-*`) route.
    pub aliases: Vec<Alias>,
}

impl Catalog {
    /// Checks a key's shape for its platform; the message says what is wrong.
    pub fn check_key(&self, platform: &str, key: &str) -> Result<(), String> {
        let p = self
            .platforms
            .iter()
            .find(|p| p.id == platform)
            .ok_or_else(|| {
                format!(
                    "unknown platform {platform:?}; known: {}",
                    self.platform_ids().join(", ")
                )
            })?;
        if key.is_empty() {
            return Err("the key is empty".into());
        }
        if key.len() > 4096 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "the key contains whitespace or is implausibly long; paste just the key".into(),
            );
        }
        if p.key_format == KeyFormat::AccountToken {
            match key.split_once(':') {
                Some((account, token))
                    if !account.is_empty()
                        && !token.is_empty()
                        && account.chars().all(|c| c.is_ascii_alphanumeric()) => {}
                _ => {
                    return Err(format!(
                        "{} keys are `account_id:api_token` (the account id is the 32-hex id in your dashboard URL)",
                        p.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The catalog compiled into the binary.
    pub fn builtin() -> Catalog {
        Catalog::parse(BUILTIN)
            .expect("the embedded catalog.json is valid (checked by a unit test)")
    }

    fn parse(text: &str) -> Result<Catalog, String> {
        let mut bytes = text.as_bytes().to_vec();
        let file: CatalogFile =
            simd_json::serde::from_slice(&mut bytes).map_err(|e| e.to_string())?;
        let mut models = Vec::with_capacity(file.models.len());
        for row in file.models {
            let platform = file
                .platforms
                .iter()
                .position(|p| p.id == row.platform)
                .ok_or_else(|| {
                    format!(
                        "model {} names unknown platform {}",
                        row.model_id, row.platform
                    )
                })?;
            let caps =
                Caps::parse(&row.caps).map_err(|e| format!("model {}: {e}", row.model_id))?;
            models.push(Model {
                platform,
                model_id: row.model_id,
                display_name: row.display_name,
                intelligence_rank: row.intelligence_rank,
                speed_rank: row.speed_rank,
                size_label: row.size_label,
                limits: row.limits,
                monthly_token_budget: row.monthly_token_budget,
                context_window: row.context_window,
                enabled: row.enabled,
                pool: None,
                custom: false,
                kind: row.kind,
                fim: row.fim,
                family: row.family,
                max_output_tokens: row.max_output_tokens,
                dimensions: row.dimensions,
                flexible_dimensions: row.flexible_dimensions,
                caps,
            });
        }
        let mut catalog = Catalog {
            platforms: file.platforms,
            models,
            aliases: aliases::defaults(),
        };
        catalog.assign_pools();
        Ok(catalog)
    }

    /// Links each model to the first pool of its platform whose suffix it matches.
    fn assign_pools(&mut self) {
        for m in &mut self.models {
            let pools = &self.platforms[m.platform].pools;
            m.pool = pools.iter().position(|p| m.model_id.ends_with(&p.suffix));
        }
    }

    /// Replaces base URLs with `FREELLMAPI_UPSTREAM_<PLATFORM>` values.
    pub fn with_base_urls(mut self, overrides: &HashMap<String, String>) -> Catalog {
        for p in &mut self.platforms {
            if let Some(url) = overrides.get(&p.id) {
                p.base_url = url.clone();
            }
        }
        self
    }

    pub fn platform_index(&self, id: &str) -> Option<usize> {
        self.platforms.iter().position(|p| p.id == id)
    }

    /// The catalog with the user's edits, custom platforms and custom models applied. Edits
    /// are keyed by (platform, model id), so a newer built-in catalog keeps them.
    pub fn merged(&self, o: &Overrides) -> Catalog {
        let mut c = self.clone();
        for p in &o.custom_platforms {
            if c.platform_index(&p.id).is_none() {
                c.platforms.push(p.to_platform());
            }
        }
        for m in &o.custom_models {
            let Some(platform) = c.platform_index(&m.platform) else {
                continue;
            };
            if c.models
                .iter()
                .any(|x| x.platform == platform && x.model_id == m.model_id)
            {
                continue;
            }
            c.models.push(m.to_model(platform));
        }
        for e in &o.models {
            let Some(p) = c.platform_index(&e.platform) else {
                continue;
            };
            if let Some(m) = c
                .models
                .iter_mut()
                .find(|m| m.platform == p && m.model_id == e.model_id)
            {
                e.apply(m);
            }
        }
        if let Some(a) = &o.aliases {
            c.aliases = a.clone();
        }
        c.assign_pools();
        c
    }

    pub fn platform_ids(&self) -> Vec<&str> {
        self.platforms.iter().map(|p| p.id.as_str()).collect()
    }

    /// Why a key for `platform` would route nothing (no enabled model), with what to do; `None`
    /// when it can serve.
    pub fn dead_key_warning(&self, platform: usize) -> Option<String> {
        let p = &self.platforms[platform];
        let models = self.models.iter().filter(|m| m.platform == platform);
        let (all, enabled) = models.fold((0, 0), |(a, e), m| (a + 1, e + usize::from(m.enabled)));
        if enabled > 0 {
            return None;
        }
        let why = if all == 0 {
            format!("the catalog has no {} model yet", p.name)
        } else {
            format!("all {all} {} models are disabled", p.name)
        };
        Some(format!(
            "{why}, so this key routes nothing; enable a model or add one the provider offers (the dashboard's models, or POST /api/models)"
        ))
    }

    /// Resolves a client's `model`: an exact catalog id first, then `platform/model_id`.
    pub fn find_model(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.models.iter().position(|m| m.model_id == name) {
            return Some(i);
        }
        self.find_qualified(name)
    }

    /// Resolves `platform/model_id`.
    pub fn find_qualified(&self, name: &str) -> Option<usize> {
        let (platform, id) = name.split_once('/')?;
        let p = self.platform_index(platform)?;
        self.models
            .iter()
            .position(|m| m.platform == p && m.model_id == id)
    }

    /// Model indexes in the default chain order: by intelligence rank, ties in catalog order.
    pub fn intelligence_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.models.len()).collect();
        order.sort_by_key(|&i| self.models[i].intelligence_rank);
        order
    }
}

#[cfg(test)]
mod tests {
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
    fn builtin_catalog_has_every_platform_and_model() {
        let c = Catalog::builtin();
        assert_eq!(c.platforms.len(), 14);
        assert_eq!(c.models.len(), 76);
        assert_eq!(c.models.iter().filter(|m| m.enabled).count(), 73);
        for (i, p) in c.platforms.iter().enumerate() {
            assert!(
                c.dead_key_warning(i).is_none(),
                "{}: every platform routes something",
                p.id
            );
        }
        let moonshot = &c.platforms[c.platform_index("moonshot").unwrap()];
        assert!(
            moonshot
                .no_free_tier
                .as_deref()
                .is_some_and(|n| n.contains("$1 top-up"))
        );
        assert!(
            c.platforms[c.platform_index("groq").unwrap()]
                .no_free_tier
                .is_none()
        );
        let embedding: Vec<&Model> = c
            .models
            .iter()
            .filter(|m| m.kind == Kind::Embedding)
            .collect();
        assert_eq!(embedding.len(), 8);
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
        for id in [
            "google",
            "groq",
            "cerebras",
            "sambanova",
            "nvidia",
            "mistral",
            "openrouter",
            "github",
        ] {
            assert!(c.platform_index(id).is_some(), "{id}");
        }
        for id in [
            "huggingface",
            "cohere",
            "cloudflare",
            "zhipu",
            "moonshot",
            "minimax",
        ] {
            assert!(c.platform_index(id).is_some(), "{id}");
        }
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
    }

    #[test]
    fn model_ids_are_unique_so_bare_ids_resolve() {
        let c = Catalog::builtin();
        let mut ids: Vec<&str> = c.models.iter().map(|m| m.model_id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len());
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
        assert!(gpt4o > 40);
    }

    #[test]
    fn find_model_accepts_platform_prefix() {
        let c = Catalog::builtin();
        let a = c.find_model("llama-3.3-70b-versatile").unwrap();
        assert_eq!(c.find_model("groq/llama-3.3-70b-versatile"), Some(a));
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
            .find(|m| m.model_id == "llama-3.1-8b-instant")
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
}
