//! Discovery: what a provider lists (`GET {base}/models` with one of its keys) that the catalog
//! lacks, so a user can add it. OpenAI-compatible listings (`data[].id`, with a context length
//! where the listing gives one) and Gemini's (`models[].name`, `inputTokenLimit`, only models
//! that generate content).
//!
//! Owns nothing; reads the store for a key and calls the provider once. Never logs or returns
//! the key or a keyed URL.

use std::time::Duration;

use simd_json::prelude::*;

use crate::catalog::{Catalog, Wire};
use crate::crypto::MasterKey;
use crate::store::{KeyStatus, Store, StoreError};
use crate::upstream::{KeyRef, Upstream, UpstreamError};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Listings are large (OpenRouter lists hundreds of models) but bounded.
const MAX_LISTING: u64 = 4 * 1024 * 1024;

/// One model a provider lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub model_id: String,
    pub context_window: Option<u32>,
    /// The catalog already has it (for this platform).
    pub known: bool,
}

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

/// Asks `platform` for its models with its first usable key; returns them all, sorted by id,
/// each marked known or not.
pub fn discover(
    upstream: &Upstream,
    catalog: &Catalog,
    master: &MasterKey,
    store: &Store,
    platform: &str,
) -> Result<Vec<Listed>, DiscoverError> {
    let p = catalog
        .platform_index(platform)
        .ok_or_else(|| DiscoverError::UnknownPlatform(platform.to_string()))?;
    let plat = &catalog.platforms[p];
    let sealed = if plat.auth == crate::catalog::Auth::None {
        None
    } else {
        let key = store
            .list_keys()
            .map_err(DiscoverError::Store)?
            .into_iter()
            .filter(|k| k.platform == platform && k.enabled && k.status != KeyStatus::Invalid)
            .find_map(|k| {
                let sealed = k
                    .sealed_bytes()
                    .filter(|s| master.open(s, &k.platform).is_ok())?;
                // Listed the way the key's calls go: through its own proxy, if it has one.
                Some((sealed, k.open_proxy(master).ok()?))
            })
            .ok_or_else(|| DiscoverError::NoKey(platform.to_string()))?;
        Some(key)
    };
    let key = sealed.as_ref().map(|(sealed, proxy)| KeyRef {
        sealed,
        proxy: proxy.as_deref(),
    });
    let (status, mut body) = upstream
        .list_models(plat, key, master, TIMEOUT, MAX_LISTING)
        .map_err(DiscoverError::Upstream)?;
    if !(200..300).contains(&status) {
        return Err(DiscoverError::Status(status));
    }
    let mut listed = read_listing(plat.wire, &mut body)?;
    for l in &mut listed {
        l.known = catalog
            .models
            .iter()
            .any(|m| m.platform == p && m.model_id == l.model_id);
    }
    listed.sort_by(|a, b| a.model_id.cmp(&b.model_id));
    listed.dedup_by(|a, b| a.model_id == b.model_id);
    Ok(listed)
}

/// Reads a provider's listing.
pub fn read_listing(wire: Wire, body: &mut [u8]) -> Result<Vec<Listed>, DiscoverError> {
    let v = crate::json::parse_object(body).map_err(|_| DiscoverError::Unreadable)?;
    let context = |m: &simd_json::OwnedValue, fields: &[&str]| {
        fields
            .iter()
            .find_map(|f| m.get_u64(*f))
            .and_then(|n| u32::try_from(n).ok())
    };
    let out = match wire {
        Wire::Gemini => v
            .get_array("models")
            .ok_or(DiscoverError::Unreadable)?
            .iter()
            .filter(|m| {
                m.get_array("supportedGenerationMethods")
                    .is_none_or(|ms| ms.iter().any(|x| x.as_str() == Some("generateContent")))
            })
            .filter_map(|m| {
                let id = m.get_str("name")?.trim_start_matches("models/").to_string();
                Some(Listed {
                    model_id: id,
                    context_window: context(m, &["inputTokenLimit"]),
                    known: false,
                })
            })
            .collect(),
        Wire::Openai | Wire::Cloudflare => v
            .get_array("data")
            .ok_or(DiscoverError::Unreadable)?
            .iter()
            .filter_map(|m| {
                Some(Listed {
                    model_id: m.get_str("id")?.to_string(),
                    context_window: context(
                        m,
                        &[
                            "context_length",
                            "context_window",
                            "max_model_len",
                            "max_context_length",
                        ],
                    ),
                    known: false,
                })
            })
            .collect(),
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_of_both_shapes_are_read() {
        let mut openai = br#"{"object":"list","data":[{"id":"a","context_length":8192},{"id":"b","context_window":131072},{"id":"c"},{"object":"model"}]}"#.to_vec();
        let l = read_listing(Wire::Openai, &mut openai).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            (
                l[0].context_window,
                l[1].context_window,
                l[2].context_window
            ),
            (Some(8192), Some(131072), None)
        );
        let mut gemini = br#"{"models":[{"name":"models/gemini-x","inputTokenLimit":1048576,"supportedGenerationMethods":["generateContent"]},{"name":"models/embed-y","supportedGenerationMethods":["embedContent"]}]}"#.to_vec();
        let l = read_listing(Wire::Gemini, &mut gemini).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].model_id.as_str(), l[0].context_window),
            ("gemini-x", Some(1_048_576))
        );
        assert!(read_listing(Wire::Openai, &mut b"<html>".to_vec()).is_err());
    }
}
