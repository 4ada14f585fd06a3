//! A platform's row: where it is, how it is called and authenticated, and where its free
//! tier stands. Data only; the code that speaks each wire format lives in `crate::wire`.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Limits;

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

/// Where a platform's free tier stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TierStatus {
    /// A recurring free allowance.
    Free,
    /// Only one-time or trial credits: its models are off until the user turns them on.
    Credits,
    /// No free use: its models are off until the user turns them on (with a paid key).
    Paid,
    /// The service is gone: no new keys, and its keys leave routing.
    Retired,
}

impl TierStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TierStatus::Free => "free",
            TierStatus::Credits => "credits",
            TierStatus::Paid => "paid",
            TierStatus::Retired => "retired",
        }
    }
}

/// A platform's free tier as last checked: what, when, where it says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeTier {
    pub status: TierStatus,
    /// `YYYY-MM-DD`.
    pub checked: String,
    /// Where it was read (a provider's page).
    pub source: String,
    #[serde(default)]
    pub note: String,
}

/// How a platform's model listing is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListingFormat {
    /// `{"data":[{"id", "context_length"|"context_window"|..., "pricing"?}]}`.
    #[default]
    Openai,
    /// `{"models":[{"name":"models/x","inputTokenLimit","outputTokenLimit",...}]}`.
    Gemini,
    /// Cloudflare's model search: `{"result":[{"name","task":{"name"},"properties":[...]}]}`.
    Cloudflare,
    /// Cohere's `{"models":[{"name","endpoints","context_length","features"}]}`.
    Cohere,
}

/// Where a platform lists its models and in which shape. The URL may use `{base}`, `{origin}`
/// and `{account_id}`, as a probe's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListingSpec {
    #[serde(default = "default_listing_url")]
    pub url: String,
    #[serde(default)]
    pub format: ListingFormat,
    /// Listed ids containing one of these (lowercase) are not chat or embedding models
    /// (speech, moderation) and are left out.
    #[serde(default)]
    pub skip: Vec<String>,
}

fn default_listing_url() -> String {
    "{base}/models".into()
}

impl Default for ListingSpec {
    fn default() -> Self {
        ListingSpec {
            url: default_listing_url(),
            format: ListingFormat::Openai,
            skip: Vec::new(),
        }
    }
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
    /// The field an OpenAI-style embeddings call names a shorter vector length with
    /// (`dimensions`; Mistral's is `output_dimension`).
    #[serde(default = "default_dimensions_field")]
    pub dimensions_field: String,
    #[serde(default)]
    pub probe: Probe,
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// Added by the user (a `custom-*` platform), not shipped in the catalog.
    #[serde(default)]
    pub custom: bool,
    /// Where its free tier stands (every built-in platform says; custom ones do not).
    #[serde(default)]
    pub free_tier: Option<FreeTier>,
    /// Where its model listing is and how to read it.
    #[serde(default)]
    pub listing: ListingSpec,
    /// Everything its listing names is free to use (a whole free tier, not a price list).
    #[serde(default)]
    pub listing_is_free: bool,
    /// It also serves without a key, once the admin turns that on (whoever runs it sees the
    /// prompts, so it is never on by default).
    #[serde(default)]
    pub keyless: bool,
    /// Error codes by which this platform says a model does not exist (beside the common
    /// `model_not_found`), e.g. Zhipu's `1211`.
    #[serde(default)]
    pub model_gone_codes: Vec<String>,
}

impl Platform {
    pub fn tier(&self) -> Option<TierStatus> {
        self.free_tier.as_ref().map(|t| t.status)
    }

    /// What a key for a platform whose free tier ended needs instead (`None` while free).
    pub fn not_free_note(&self) -> Option<&str> {
        match &self.free_tier {
            Some(t) if t.status != TierStatus::Free => Some(t.note.as_str()),
            _ => None,
        }
    }

    /// Why a new key is refused, for a platform that is gone.
    pub fn refuses_keys(&self) -> Option<String> {
        match &self.free_tier {
            Some(t) if t.status == TierStatus::Retired => Some(format!(
                "{} is retired: {} (checked {}, {}); keys for it are no longer accepted",
                self.name, t.note, t.checked, t.source
            )),
            _ => None,
        }
    }
}

fn secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
}

fn default_dimensions_field() -> String {
    "dimensions".into()
}
