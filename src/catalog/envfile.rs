//! Provider keys as `.env` lines: reading `GROQ_API_KEY=…` style files (the names each platform
//! lists in `key_env`; Cloudflare as `CLOUDFLARE_ACCOUNT_ID` + `CLOUDFLARE_API_TOKEN`) and
//! writing them back out. Used by `freellmapi keys import` and the dashboard's import/export.
//! Owns the format only; storing keys is the caller's business.

use super::Catalog;

/// What a `.env` text holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EnvKeys {
    /// (platform id, key), in file order; a variable repeated gives several keys.
    pub found: Vec<(String, String)>,
    /// Variables that name no provider key (`NAME (line N)`).
    pub ignored: Vec<String>,
    /// Half a Cloudflare pair (an account id without a token, or the reverse).
    pub cloudflare_incomplete: bool,
}

/// One `NAME=value` line: `export ` prefixes, quotes and comments allowed.
pub fn env_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (name, value) = line.split_once('=')?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Some((name.trim(), value))
}

pub fn parse(catalog: &Catalog, text: &str) -> EnvKeys {
    let mut out = EnvKeys::default();
    let (mut cf_account, mut cf_token) = (None, None);
    for (n, line) in text.lines().enumerate() {
        let Some((name, value)) = env_line(line) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        match name {
            "CLOUDFLARE_ACCOUNT_ID" => cf_account = Some(value.to_string()),
            "CLOUDFLARE_API_TOKEN" | "CLOUDFLARE_API_KEY" => cf_token = Some(value.to_string()),
            _ => match catalog
                .platforms
                .iter()
                .find(|p| p.key_env.iter().any(|e| e == name))
            {
                Some(p) => out.found.push((p.id.clone(), value.to_string())),
                None => out.ignored.push(format!("{name} (line {})", n + 1)),
            },
        }
    }
    match (cf_account, cf_token) {
        (Some(a), Some(t)) => out.found.push(("cloudflare".into(), format!("{a}:{t}"))),
        (None, None) => {}
        _ => out.cloudflare_incomplete = true,
    }
    out
}

/// `.env` lines for `keys` ((platform id, key)); a platform without a variable name is
/// written as a comment. Several keys of one platform repeat its variable: `parse` (and so
/// `keys import`) reads every one; most other tools keep only the last.
pub fn write(catalog: &Catalog, keys: &[(String, String)]) -> String {
    let mut out = String::from(
        "# freellmapi provider keys (plaintext: keep this file private)\n# import: freellmapi keys import FILE, or the dashboard's Keys page\n",
    );
    for (platform, key) in keys {
        if platform == "cloudflare"
            && let Some((account, token)) = key.split_once(':')
        {
            out.push_str(&format!(
                "CLOUDFLARE_ACCOUNT_ID={account}\nCLOUDFLARE_API_TOKEN={token}\n"
            ));
            continue;
        }
        match catalog
            .platforms
            .iter()
            .find(|p| p.id == *platform)
            .and_then(|p| p.key_env.first())
        {
            Some(name) => out.push_str(&format!("{name}={key}\n")),
            None => out.push_str(&format!(
                "# {platform}: no variable name; add with freellmapi keys add {platform}\n"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines() {
        assert_eq!(
            env_line("GROQ_API_KEY=gsk_1"),
            Some(("GROQ_API_KEY", "gsk_1"))
        );
        assert_eq!(env_line("export X=\"a b\""), Some(("X", "a b")));
        assert_eq!(env_line("Y='q'"), Some(("Y", "q")));
        assert_eq!(env_line("# c"), None);
        assert_eq!(env_line("junk"), None);
    }

    #[test]
    fn written_keys_read_back_the_same() {
        let c = Catalog::builtin();
        let keys = vec![
            ("groq".to_string(), "gsk_one".to_string()),
            ("groq".to_string(), "gsk_two".to_string()),
            ("cloudflare".to_string(), "0123abcd:tok".to_string()),
        ];
        let text = write(&c, &keys);
        assert_eq!(parse(&c, &text).found, keys);
        let odd = parse(
            &c,
            "export GROQ_API_KEY='gsk_x'\nNOPE=1\nCLOUDFLARE_ACCOUNT_ID=a\n",
        );
        assert_eq!(odd.found, vec![("groq".to_string(), "gsk_x".to_string())]);
        assert_eq!(odd.ignored, vec!["NOPE (line 2)".to_string()]);
        assert!(odd.cloudflare_incomplete);
    }
}
