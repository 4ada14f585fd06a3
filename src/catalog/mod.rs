//! The catalog: which platforms exist (base URL, wire format, auth style, extra headers) and
//! which models each offers with their free-tier limits. Provider differences live here as
//! data; code differs only per wire format (`crate::wire`).
//!
//! Owns the built-in catalog embedded from `catalog.json` (every platform's free tier dated
//! and sourced, every model's source), with base-URL overrides from the environment applied
//! once at start, and the merge of that with the user's edits (`overrides`) and what the
//! providers said (`lifecycle`) into the catalog in effect. A merged catalog is immutable;
//! the router holds it in its snapshot. Does no I/O beyond reading its embedded file.

pub mod aliases;
pub mod embedding_aliases;
pub mod envfile;
pub mod lifecycle;
mod model;
mod overrides;
mod platform;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::Deserialize;

pub use aliases::{Alias, AliasRoute};
pub use embedding_aliases::{EmbeddingAliases, EmbeddingRoute};
pub use lifecycle::{Lifecycle, Listed, Retirement};
pub use model::*;
pub use overrides::{CustomModel, CustomPlatform, ModelOverride, Overrides};
pub use platform::*;

const BUILTIN: &str = include_str!("catalog.json");

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
    /// How embedding model names the catalog lacks (OpenAI's) route.
    pub embedding_aliases: EmbeddingAliases,
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
            models.push(row.into_model(platform)?);
        }
        let mut catalog = Catalog {
            platforms: file.platforms,
            models,
            aliases: aliases::defaults(),
            embedding_aliases: EmbeddingAliases::default(),
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

    /// Whether `platform` can serve without a key; the message names those that can.
    pub fn check_keyless(&self, platform: &str) -> Result<(), String> {
        if self
            .platform_index(platform)
            .is_some_and(|p| self.platforms[p].keyless)
        {
            return Ok(());
        }
        let can: Vec<&str> = self
            .platforms
            .iter()
            .filter(|p| p.keyless)
            .map(|p| p.id.as_str())
            .collect();
        Err(format!(
            "{platform:?} does not serve without a key; these do: {}",
            can.join(", ")
        ))
    }

    /// The catalog with what the providers said (discovered rows, retirements) and the user's
    /// edits, custom platforms and custom models applied. Edits are keyed by (platform, model
    /// id), so a newer built-in catalog keeps them, and they apply to discovered rows too.
    pub fn merged(&self, o: &Overrides, life: &Lifecycle) -> Catalog {
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
        for d in &life.discovered {
            let Some(platform) = c.platform_index(&d.platform) else {
                continue;
            };
            if !c
                .models
                .iter()
                .any(|x| x.platform == platform && x.model_id == d.listed.model_id)
            {
                c.models.push(discovered_model(platform, &d.listed));
            }
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
        if let Some(a) = &o.embedding_aliases {
            c.embedding_aliases = a.clone();
        }
        for r in &life.retired {
            let Some(p) = c.platform_index(&r.platform) else {
                continue;
            };
            if let Some(m) = c
                .models
                .iter_mut()
                .find(|m| m.platform == p && m.model_id == r.model_id && m.origin != Origin::Custom)
            {
                m.retired = Some(r.why.clone());
            }
        }
        c.assign_pools();
        c
    }

    /// Platforms whose listing a sync reads: built-in ones whose service still exists.
    pub fn syncable(&self) -> impl Iterator<Item = usize> + '_ {
        self.platforms
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.custom && p.tier() != Some(TierStatus::Retired))
            .map(|(i, _)| i)
    }

    pub fn platform_ids(&self) -> Vec<&str> {
        self.platforms.iter().map(|p| p.id.as_str()).collect()
    }

    /// Why a key for `platform` would route nothing (no enabled model), with what to do; `None`
    /// when it can serve.
    pub fn dead_key_warning(&self, platform: usize) -> Option<String> {
        let p = &self.platforms[platform];
        let models = self.models.iter().filter(|m| m.platform == platform);
        let (all, enabled) = models.fold((0, 0), |(a, e), m| (a + 1, e + usize::from(m.serves())));
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

    /// Resolves a client's `model`: an exact catalog id first (the first row that serves, when
    /// several platforms offer the id), then `platform/model_id`.
    pub fn find_model(&self, name: &str) -> Option<usize> {
        let same = || {
            self.models
                .iter()
                .enumerate()
                .filter(|(_, m)| m.model_id == name)
        };
        if let Some((i, _)) = same().find(|(_, m)| m.serves()).or_else(|| same().next()) {
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
