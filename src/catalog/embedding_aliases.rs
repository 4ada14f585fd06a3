//! Embedding model names the catalog does not hold: OpenAI's (`text-embedding-3-small`,
//! `-3-large`, `-ada-002`), which LangChain and LlamaIndex send by default. Each routes to an
//! embedding model of the catalog, or to `default`: the one the admin chose. Vectors of
//! different models are not interchangeable, so the choice is the admin's and stays put;
//! until one is made, `default` is the first enabled embedding model with a key. Editable
//! (stored with the catalog overrides); these are the defaults.

use serde::{Deserialize, Serialize};

/// OpenAI's embedding model names.
pub const OPENAI_NAMES: [&str; 3] = [
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
];

/// The route meaning "the admin's chosen embedding model".
pub const DEFAULT_ROUTE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingAlias {
    /// The requested name, matched whole (case does not matter).
    pub name: String,
    /// `default`, or an embedding model (`model_id` or `platform/model_id`).
    pub route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingAliases {
    /// The embedding model `default` means; `None` until the admin chooses one.
    #[serde(default)]
    pub default: Option<String>,
    pub aliases: Vec<EmbeddingAlias>,
}

impl Default for EmbeddingAliases {
    fn default() -> EmbeddingAliases {
        EmbeddingAliases {
            default: None,
            aliases: OPENAI_NAMES
                .iter()
                .map(|n| EmbeddingAlias {
                    name: n.to_string(),
                    route: DEFAULT_ROUTE.into(),
                })
                .collect(),
        }
    }
}

/// Where an embedding alias sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingRoute<'a> {
    /// The admin's chosen model, or (none chosen) the first enabled one with a key.
    Default(Option<&'a str>),
    Model(&'a str),
}

impl EmbeddingAliases {
    /// The route of `name`, when an alias has it.
    pub fn route(&self, name: &str) -> Option<EmbeddingRoute<'_>> {
        let a = self
            .aliases
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))?;
        Some(match a.route.as_str() {
            DEFAULT_ROUTE => EmbeddingRoute::Default(self.default.as_deref()),
            model => EmbeddingRoute::Model(model),
        })
    }

    /// Checks an edited set; the message names the field. `is_embedding` says whether a model
    /// name is an embedding model of the catalog.
    pub fn validate(&self, is_embedding: impl Fn(&str) -> bool) -> Result<(), String> {
        if let Some(d) = &self.default
            && !is_embedding(d)
        {
            return Err(format!(
                "default: {d:?} is not an embedding model of the catalog"
            ));
        }
        if self.aliases.len() > 32 {
            return Err("aliases: at most 32".into());
        }
        for (i, a) in self.aliases.iter().enumerate() {
            if a.name.trim().is_empty() || a.name.len() > 128 {
                return Err(format!("aliases[{i}].name: expected 1 to 128 characters"));
            }
            if a.route != DEFAULT_ROUTE && !is_embedding(&a.route) {
                return Err(format!(
                    "aliases[{i}].route: {:?} is not default or an embedding model of the catalog",
                    a.route
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_names_route_to_the_default_until_edited() {
        let mut a = EmbeddingAliases::default();
        assert_eq!(
            a.route("text-embedding-3-small"),
            Some(EmbeddingRoute::Default(None))
        );
        assert_eq!(
            a.route("TEXT-EMBEDDING-ADA-002"),
            Some(EmbeddingRoute::Default(None))
        );
        assert_eq!(a.route("text-embedding-3"), None, "whole names only");
        a.default = Some("mistral-embed".into());
        a.aliases[1].route = "embed-v4.0".into();
        assert_eq!(
            a.route("text-embedding-3-small"),
            Some(EmbeddingRoute::Default(Some("mistral-embed")))
        );
        assert_eq!(
            a.route("text-embedding-3-large"),
            Some(EmbeddingRoute::Model("embed-v4.0"))
        );
        let known = |m: &str| m == "mistral-embed" || m == "embed-v4.0";
        assert!(a.validate(known).is_ok());
        a.aliases[2].route = "gpt-oss-20b".into();
        assert!(
            a.validate(known)
                .unwrap_err()
                .starts_with("aliases[2].route")
        );
        a.default = Some("nope".into());
        assert!(a.validate(known).unwrap_err().starts_with("default:"));
    }
}
