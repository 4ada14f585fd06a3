//! The user's changes to the catalog, stored in LMDB and merged over the built-in catalog at
//! every load: per-model edits (limits, enabled, ranks, context window), models added to any
//! platform, and `custom-*` platforms for any OpenAI-compatible server (with keys or none).
//!
//! Edits name models by (platform, model id) and hold only the fields the user changed, so a
//! newer built-in catalog merges in without losing them.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Auth, Catalog, KeyFormat, Limits, Model, Platform, Probe, Wire};

/// `null` (set to "no limit") must stay distinct from an absent field (not edited).
fn edited<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelOverride {
    pub platform: String,
    pub model_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intelligence_rank: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_rank: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "edited"
    )]
    pub context_window: Option<Option<u32>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "edited"
    )]
    pub rpm: Option<Option<u32>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "edited"
    )]
    pub rpd: Option<Option<u32>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "edited"
    )]
    pub tpm: Option<Option<u64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "edited"
    )]
    pub tpd: Option<Option<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
}

impl ModelOverride {
    pub(crate) fn apply(&self, m: &mut Model) {
        if let Some(v) = self.enabled {
            m.enabled = v;
        }
        if let Some(v) = self.intelligence_rank {
            m.intelligence_rank = v;
        }
        if let Some(v) = self.speed_rank {
            m.speed_rank = v;
        }
        if let Some(v) = self.context_window {
            m.context_window = v;
        }
        if let Some(v) = self.rpm {
            m.limits.rpm = v;
        }
        if let Some(v) = self.rpd {
            m.limits.rpd = v;
        }
        if let Some(v) = self.tpm {
            m.limits.tpm = v;
        }
        if let Some(v) = self.tpd {
            m.limits.tpd = v;
        }
        if let Some(c) = &self.capabilities
            && let Ok(caps) = super::Caps::parse(c)
        {
            m.caps = caps;
        }
    }

    /// Folds a later edit into this one (later fields win).
    pub fn merge(&mut self, later: &ModelOverride) {
        macro_rules! take {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f; } )* };
        }
        if later.capabilities.is_some() {
            self.capabilities = later.capabilities.clone();
        }
        take!(
            enabled,
            intelligence_rank,
            speed_rank,
            context_window,
            rpm,
            rpd,
            tpm,
            tpd
        );
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomModel {
    pub platform: String,
    pub model_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub context_window: Option<u32>,
    #[serde(default, flatten)]
    pub limits: Limits,
    #[serde(default = "default_rank")]
    pub intelligence_rank: u32,
    #[serde(default = "default_rank")]
    pub speed_rank: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `vision`, `tools`, `json_schema`; a model added without saying gets tools and JSON
    /// schema (what OpenAI-compatible servers usually handle), not vision.
    #[serde(default = "default_caps")]
    pub capabilities: Vec<String>,
}

fn default_caps() -> Vec<String> {
    vec!["tools".into(), "json_schema".into()]
}

fn default_rank() -> u32 {
    50
}

fn yes() -> bool {
    true
}

impl CustomModel {
    pub(crate) fn to_model(&self, platform: usize) -> Model {
        Model {
            platform,
            model_id: self.model_id.clone(),
            display_name: if self.display_name.is_empty() {
                self.model_id.clone()
            } else {
                self.display_name.clone()
            },
            intelligence_rank: self.intelligence_rank,
            speed_rank: self.speed_rank,
            size_label: String::new(),
            limits: self.limits,
            monthly_token_budget: String::new(),
            context_window: self.context_window,
            enabled: self.enabled,
            pool: None,
            origin: super::Origin::Custom,
            retired: None,
            supported_parameters: Vec::new(),
            kind: super::Kind::Chat,
            fim: false,
            family: None,
            max_output_tokens: None,
            dimensions: None,
            flexible_dimensions: false,
            audio_input: None,
            caps: super::Caps::parse(&self.capabilities).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomPlatform {
    /// `custom` or `custom-<name>`.
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub base_url: String,
    /// A local server without authentication: requests carry no key.
    #[serde(default)]
    pub keyless: bool,
}

impl CustomPlatform {
    pub(super) fn to_platform(&self) -> Platform {
        Platform {
            id: self.id.clone(),
            name: if self.name.is_empty() {
                self.id.clone()
            } else {
                self.name.clone()
            },
            wire: Wire::Openai,
            base_url: self.base_url.trim_end_matches('/').to_string(),
            auth: if self.keyless {
                Auth::None
            } else {
                Auth::Bearer
            },
            key_format: KeyFormat::Plain,
            key_env: vec![],
            extra_headers: Default::default(),
            first_byte_timeout: None,
            stream_usage: false,
            dimensions_field: "dimensions".into(),
            probe: Probe::default(),
            pools: vec![],
            custom: true,
            free_tier: None,
            listing: Default::default(),
            listing_is_free: false,
            keyless: false,
            model_gone_codes: vec![],
        }
    }
}

/// Everything the user changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overrides {
    #[serde(default)]
    pub models: Vec<ModelOverride>,
    #[serde(default)]
    pub custom_models: Vec<CustomModel>,
    #[serde(default)]
    pub custom_platforms: Vec<CustomPlatform>,
    /// The user's alias list; `None` keeps the shipped defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<super::Alias>>,
    /// The user's embedding aliases and chosen embedding model; `None` keeps the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_aliases: Option<super::EmbeddingAliases>,
    /// Built-in platforms that serve without a key which the admin let route keyless.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyless_on: Vec<String>,
}

fn valid_id(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 200 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what} must be 1-200 characters without spaces or control characters"
        ));
    }
    Ok(())
}

impl Overrides {
    /// Lets a keyless-capable platform route without a key, or stops it.
    pub fn set_keyless(&mut self, platform: &str, on: bool) {
        self.keyless_on.retain(|p| p != platform);
        if on {
            self.keyless_on.push(platform.to_string());
        }
    }

    /// Records an edit of one model: a model the user added changes in place (its name too);
    /// a built-in one gets the edit folded into its override. Built-in models keep their
    /// names: a `display_name` for one is refused.
    pub fn edit_model(
        &mut self,
        edit: ModelOverride,
        display_name: Option<String>,
    ) -> Result<(), &'static str> {
        if let Some(c) = self
            .custom_models
            .iter_mut()
            .find(|c| c.platform == edit.platform && c.model_id == edit.model_id)
        {
            // The platform index only places the model; the edited fields are copied back.
            let mut m = c.to_model(0);
            edit.apply(&mut m);
            c.enabled = m.enabled;
            c.intelligence_rank = m.intelligence_rank;
            c.speed_rank = m.speed_rank;
            c.context_window = m.context_window;
            c.limits = m.limits;
            if let Some(caps) = edit.capabilities {
                c.capabilities = caps;
            }
            if let Some(name) = display_name {
                c.display_name = name;
            }
            return Ok(());
        }
        if display_name.is_some() {
            return Err("built-in models keep their names");
        }
        match self
            .models
            .iter_mut()
            .find(|x| x.platform == edit.platform && x.model_id == edit.model_id)
        {
            Some(existing) => existing.merge(&edit),
            None => self.models.push(edit),
        }
        Ok(())
    }

    /// Checks everything a user could have typed; the message names the field.
    pub fn validate(&self, builtin: &Catalog) -> Result<(), String> {
        for (i, p) in self.custom_platforms.iter().enumerate() {
            let ok_id = (p.id == "custom"
                || p.id.strip_prefix("custom-").is_some_and(|n| !n.is_empty()))
                && p.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok_id {
                return Err(format!(
                    "custom_platforms[{i}].id: use \"custom\" or \"custom-<name>\" (lowercase letters, digits, dashes)"
                ));
            }
            if self
                .custom_platforms
                .iter()
                .filter(|q| q.id == p.id)
                .count()
                > 1
            {
                return Err(format!(
                    "custom_platforms[{i}].id: {:?} is defined twice",
                    p.id
                ));
            }
            crate::netguard::check_base_url(&p.base_url)
                .map_err(|e| format!("custom_platforms[{i}].base_url: {e}"))?;
        }
        let known = |platform: &str| {
            builtin.platform_index(platform).is_some()
                || self.custom_platforms.iter().any(|p| p.id == platform)
        };
        for (i, m) in self.custom_models.iter().enumerate() {
            if !known(&m.platform) {
                return Err(format!(
                    "custom_models[{i}].platform: unknown platform {:?}",
                    m.platform
                ));
            }
            valid_id(&m.model_id, &format!("custom_models[{i}].model_id"))?;
            let builtin_dup = builtin.platform_index(&m.platform).is_some_and(|p| {
                builtin
                    .models
                    .iter()
                    .any(|x| x.platform == p && x.model_id == m.model_id)
            });
            let custom_dup = self
                .custom_models
                .iter()
                .filter(|x| x.platform == m.platform && x.model_id == m.model_id)
                .count()
                > 1;
            if builtin_dup || custom_dup {
                return Err(format!(
                    "custom_models[{i}].model_id: {:?} already exists on {}",
                    m.model_id, m.platform
                ));
            }
            if m.context_window == Some(0) {
                return Err(format!(
                    "custom_models[{i}].context_window: must be at least 1"
                ));
            }
        }
        for (i, e) in self.models.iter().enumerate() {
            if !known(&e.platform) {
                return Err(format!(
                    "models[{i}].platform: unknown platform {:?}",
                    e.platform
                ));
            }
            if e.context_window == Some(Some(0)) {
                return Err(format!("models[{i}].context_window: must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Overrides {
        simd_json::serde::from_slice(&mut s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn edits_merge_over_the_builtin_catalog() {
        let o = parse(
            r#"{"models":[{"platform":"groq","model_id":"openai/gpt-oss-20b","rpm":5,"tpd":null,"enabled":false,"context_window":4096}]}"#,
        );
        let c = Catalog::builtin().merged(&o, &Default::default());
        let m = c
            .models
            .iter()
            .find(|m| m.model_id == "openai/gpt-oss-20b")
            .unwrap();
        assert_eq!(m.limits.rpm, Some(5));
        assert_eq!(m.limits.tpd, None, "null sets the limit to untracked");
        assert_eq!(
            m.limits.rpd,
            Some(1000),
            "fields not edited keep the built-in value"
        );
        assert!(!m.enabled);
        assert_eq!(m.context_window, Some(4096));
    }

    #[test]
    fn edits_survive_a_newer_builtin_catalog() {
        let o =
            parse(r#"{"models":[{"platform":"groq","model_id":"openai/gpt-oss-20b","rpm":5}]}"#);
        // A later release changes the shipped limits of the same model.
        let mut newer = Catalog::builtin();
        let m = newer
            .models
            .iter_mut()
            .find(|m| m.model_id == "openai/gpt-oss-20b")
            .unwrap();
        m.limits.rpm = Some(60);
        m.limits.rpd = Some(20_000);
        let merged = newer.merged(&o, &Default::default());
        let m = merged
            .models
            .iter()
            .find(|m| m.model_id == "openai/gpt-oss-20b")
            .unwrap();
        assert_eq!(m.limits.rpm, Some(5), "the user's edit wins");
        assert_eq!(
            m.limits.rpd,
            Some(20_000),
            "the new shipped value arrives where the user changed nothing"
        );
        // An edit for a model a newer catalog no longer ships is kept but harmless.
        let gone =
            parse(r#"{"models":[{"platform":"groq","model_id":"retired-model","enabled":false}]}"#);
        assert_eq!(
            Catalog::builtin()
                .merged(&gone, &Default::default())
                .models
                .len(),
            Catalog::builtin().models.len()
        );
    }

    #[test]
    fn absent_and_null_are_different() {
        let o = parse(r#"{"models":[{"platform":"groq","model_id":"m","rpm":null}]}"#);
        assert_eq!(o.models[0].rpm, Some(None));
        assert_eq!(o.models[0].rpd, None);
        let back = simd_json::serde::to_string(&o).unwrap();
        assert!(
            back.contains(r#""rpm":null"#) && !back.contains("rpd"),
            "{back}"
        );
    }

    #[test]
    fn custom_platforms_and_models_are_added() {
        let o = parse(
            r#"{"custom_platforms":[{"id":"custom-ollama","name":"Ollama","base_url":"http://127.0.0.1:11434/v1/","keyless":true}],
            "custom_models":[{"platform":"custom-ollama","model_id":"llama3.2:3b","context_window":8192},{"platform":"groq","model_id":"new-model"}]}"#,
        );
        o.validate(&Catalog::builtin()).unwrap();
        let c = Catalog::builtin().merged(&o, &Default::default());
        let p = c.platform_index("custom-ollama").unwrap();
        assert_eq!(c.platforms[p].auth, Auth::None);
        assert_eq!(c.platforms[p].base_url, "http://127.0.0.1:11434/v1");
        let m = c
            .models
            .iter()
            .find(|m| m.model_id == "llama3.2:3b")
            .unwrap();
        assert!(m.origin == crate::catalog::Origin::Custom && m.enabled && m.platform == p);
        assert!(c.find_model("groq/new-model").is_some());
    }

    #[test]
    fn validation_names_the_field() {
        let c = Catalog::builtin();
        let err = |s: &str| parse(s).validate(&c).unwrap_err();
        assert!(
            err(r#"{"custom_platforms":[{"id":"ollama","base_url":"http://x/v1"}]}"#)
                .starts_with("custom_platforms[0].id")
        );
        assert!(
            err(
                r#"{"custom_platforms":[{"id":"custom-a","base_url":"http://169.254.169.254/v1"}]}"#
            )
            .contains("refused")
        );
        assert!(
            err(r#"{"custom_models":[{"platform":"nope","model_id":"m"}]}"#)
                .contains("unknown platform")
        );
        assert!(
            err(r#"{"custom_models":[{"platform":"groq","model_id":"openai/gpt-oss-20b"}]}"#)
                .contains("already exists")
        );
        assert!(
            err(r#"{"custom_models":[{"platform":"groq","model_id":"a b"}]}"#)
                .contains("without spaces")
        );
        assert!(
            err(r#"{"models":[{"platform":"groq","model_id":"m","context_window":0}]}"#)
                .contains("at least 1")
        );
    }

    #[test]
    fn an_edit_changes_a_users_model_in_place_and_folds_into_a_builtins_override() {
        let mut o = Overrides::default();
        o.custom_models.push(CustomModel {
            platform: "groq".into(),
            model_id: "mine".into(),
            display_name: String::new(),
            context_window: None,
            limits: Limits::default(),
            intelligence_rank: 50,
            speed_rank: 50,
            enabled: true,
            capabilities: vec![],
        });
        let edit = |model: &str, enabled: Option<bool>, rpm: Option<Option<u32>>| ModelOverride {
            platform: "groq".into(),
            model_id: model.into(),
            enabled,
            rpm,
            ..ModelOverride::default()
        };
        o.edit_model(
            edit("mine", Some(false), Some(Some(9))),
            Some("Mine".into()),
        )
        .unwrap();
        let c = &o.custom_models[0];
        assert_eq!(
            (c.enabled, c.limits.rpm, c.display_name.as_str()),
            (false, Some(9), "Mine")
        );
        assert!(
            o.models.is_empty(),
            "the user's model has no separate override"
        );
        o.edit_model(edit("built-in", Some(false), None), None)
            .unwrap();
        o.edit_model(edit("built-in", None, Some(Some(3))), None)
            .unwrap();
        assert_eq!(o.models.len(), 1, "later edits fold into the same override");
        assert_eq!(
            (o.models[0].enabled, o.models[0].rpm),
            (Some(false), Some(Some(3)))
        );
        assert_eq!(
            o.edit_model(edit("built-in", None, None), Some("New".into())),
            Err("built-in models keep their names")
        );
    }
}
