//! Model aliases: how a model name the catalog does not hold (`claude-opus-4-5`, say, from a
//! client built for one vendor) is routed. An alias matches by substring, in list order; its
//! route is the fallback chain, the chain re-sorted by intelligence or by speed, or one catalog
//! model. Editable by the user (stored with the catalog overrides); these are the defaults.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    /// Matched as a substring of the requested name; `*` matches every name.
    pub pattern: String,
    /// `chain`, `intelligence`, `speed`, or a model (`model_id` or `platform/model_id`).
    pub route: String,
}

/// Where an alias sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasRoute<'a> {
    /// The fallback chain as configured.
    Chain,
    /// Enabled models by intelligence rank.
    Intelligence,
    /// Enabled models by speed rank.
    Speed,
    /// One model first (the chain after it).
    Model(&'a str),
}

/// Vendor prefixes whose names route by alias rather than as catalog ids (when the catalog
/// does not hold the name: `gemini-3.5-flash-lite` on Google's platform is a model).
pub const ALIASED_PREFIXES: &[&str] = &["claude-", "gemini-"];

/// The shipped aliases: Opus- and Pro-class requests get the most capable models, Haiku- and
/// Flash-Lite-class the fastest, everything else the chain.
pub fn defaults() -> Vec<Alias> {
    [
        ("opus", "intelligence"),
        ("haiku", "speed"),
        ("-pro", "intelligence"),
        ("flash-lite", "speed"),
        ("*", "chain"),
    ]
    .into_iter()
    .map(|(pattern, route)| Alias {
        pattern: pattern.into(),
        route: route.into(),
    })
    .collect()
}

/// Whether `name` is routed by alias (a vendor name the catalog does not hold).
pub fn is_aliased(name: &str) -> bool {
    ALIASED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The route of the first alias matching `name`; the chain when none does.
pub fn route<'a>(aliases: &'a [Alias], name: &str) -> AliasRoute<'a> {
    let Some(a) = aliases
        .iter()
        .find(|a| a.pattern == "*" || (!a.pattern.is_empty() && name.contains(&a.pattern)))
    else {
        return AliasRoute::Chain;
    };
    match a.route.as_str() {
        "chain" => AliasRoute::Chain,
        "intelligence" => AliasRoute::Intelligence,
        "speed" => AliasRoute::Speed,
        model => AliasRoute::Model(model),
    }
}

/// Checks an edited list; the message names the entry. `known_model` resolves a model route.
pub fn validate(aliases: &[Alias], known_model: impl Fn(&str) -> bool) -> Result<(), String> {
    if aliases.len() > 64 {
        return Err("aliases: at most 64".into());
    }
    for (i, a) in aliases.iter().enumerate() {
        if a.pattern.trim().is_empty() || a.pattern.len() > 128 {
            return Err(format!(
                "aliases[{i}].pattern: expected 1 to 128 characters"
            ));
        }
        match a.route.as_str() {
            "chain" | "intelligence" | "speed" => {}
            m if known_model(m) => {}
            m => {
                return Err(format!(
                    "aliases[{i}].route: {m:?} is not chain, intelligence, speed or a catalog model"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_route_by_family_then_chain() {
        let d = defaults();
        assert_eq!(route(&d, "claude-opus-4-5"), AliasRoute::Intelligence);
        assert_eq!(route(&d, "claude-3-5-haiku-latest"), AliasRoute::Speed);
        assert_eq!(route(&d, "claude-sonnet-4-5"), AliasRoute::Chain);
        assert_eq!(route(&[], "claude-sonnet-4-5"), AliasRoute::Chain);
        let custom = vec![Alias {
            pattern: "sonnet".into(),
            route: "groq/llama".into(),
        }];
        assert_eq!(
            route(&custom, "claude-sonnet-4"),
            AliasRoute::Model("groq/llama")
        );
        assert!(is_aliased("claude-x") && !is_aliased("gpt-4o"));
        assert_eq!(
            route(&d, "gemini-3.1-pro-preview"),
            AliasRoute::Intelligence
        );
        assert_eq!(route(&d, "gemini-3.5-flash-lite"), AliasRoute::Speed);
        assert_eq!(route(&d, "gemini-3.8-flash"), AliasRoute::Chain);
        assert!(is_aliased("gemini-9-ultra"));
    }

    #[test]
    fn validation_names_the_entry() {
        let bad = vec![
            Alias {
                pattern: "opus".into(),
                route: "speed".into(),
            },
            Alias {
                pattern: "x".into(),
                route: "nope".into(),
            },
        ];
        let e = validate(&bad, |m| m == "known").unwrap_err();
        assert!(e.starts_with("aliases[1].route"), "{e}");
        assert!(validate(&defaults(), |_| false).is_ok());
    }
}
