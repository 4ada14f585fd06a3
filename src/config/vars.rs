//! Every environment variable the server reads: its name, the flag that beats it, what it is
//! when unset, and what it does. `Config::build` takes names and defaults from here, and
//! `--help` and README's configuration table are made from [`ALL`], so none of them can say
//! something else.

/// What a variable is when it is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// A value, as the user would write it.
    Value(&'static str),
    /// A whole number (seconds, MiB, hours).
    Number(u64),
    /// Nothing is set; the words say what happens then.
    Says(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// `FREELLMAPI_…`; a `<PLATFORM>` part stands for a platform id in capitals.
    pub name: &'static str,
    /// The command-line flag that beats the variable, with its argument.
    pub flag: Option<&'static str>,
    pub unset: Unset,
    /// One line for `--help` and README.
    pub about: &'static str,
}

impl Var {
    /// The default of a numeric variable.
    pub const fn number(&self) -> u64 {
        match self.unset {
            Unset::Number(n) => n,
            _ => panic!("not a numeric variable"),
        }
    }

    /// The default of a variable with a textual one.
    pub const fn value(&self) -> &'static str {
        match self.unset {
            Unset::Value(v) => v,
            _ => panic!("not a variable with a value"),
        }
    }

    /// The default as `--help` and README show it.
    pub fn shown_default(&self) -> String {
        match self.unset {
            Unset::Value(v) => format!("`{v}`"),
            Unset::Number(n) => n.to_string(),
            Unset::Says(s) => s.to_string(),
        }
    }
}

pub const LISTEN: Var = Var {
    name: "FREELLMAPI_LISTEN",
    flag: Some("--listen ADDR"),
    unset: Unset::Value("127.0.0.1:3001"),
    about: "the address to serve on; `0.0.0.0:3001` for direct LAN use",
};
pub const DATA_DIR: Var = Var {
    name: "FREELLMAPI_DATA_DIR",
    flag: Some("--data-dir DIR"),
    unset: Unset::Value("./data"),
    about: "the LMDB store and `master.key`",
};
pub const TRUST_PROXY: Var = Var {
    name: "FREELLMAPI_TRUST_PROXY",
    flag: Some("--trust-proxy CIDRS"),
    unset: Unset::Says("none"),
    about: "peers whose `X-Forwarded-*` headers are believed, comma-separated CIDRs",
};
pub const LOG: Var = Var {
    name: "FREELLMAPI_LOG",
    flag: Some("--log-level LEVEL"),
    unset: Unset::Value("info"),
    about: "error, warn, info, debug, trace, or per target: `freellmapi=debug,ureq=info`",
};
pub const ENCRYPTION_KEY: Var = Var {
    name: "FREELLMAPI_ENCRYPTION_KEY",
    flag: None,
    unset: Unset::Says("`master.key`"),
    about: "the master key as 64 hex characters, instead of the data dir's `master.key` (0600)",
};
pub const UPSTREAM: Var = Var {
    name: "FREELLMAPI_UPSTREAM_<PLATFORM>",
    flag: None,
    unset: Unset::Says("catalog"),
    about: "a platform's base URL (mirrors, tests); Cloudflare's may contain `{account_id}`",
};
pub const MAX_BODY_MIB: Var = Var {
    name: "FREELLMAPI_MAX_BODY_MIB",
    flag: None,
    unset: Unset::Number(8),
    about: "the largest request body, in MiB (1 to 1024)",
};
pub const BODY_TIMEOUT: Var = Var {
    name: "FREELLMAPI_BODY_TIMEOUT_SECS",
    flag: None,
    unset: Unset::Number(120),
    about: "the longest a whole request body may take to arrive, in seconds",
};
pub const REQUEST_BUDGET: Var = Var {
    name: "FREELLMAPI_REQUEST_BUDGET_SECS",
    flag: None,
    unset: Unset::Number(60),
    about: "the deadline of every attempt until the client has its first byte, in seconds",
};
pub const FIRST_BYTE_TIMEOUT: Var = Var {
    name: "FREELLMAPI_FIRST_BYTE_TIMEOUT_SECS",
    flag: None,
    unset: Unset::Number(60),
    about: "a provider's time to its first byte, in seconds",
};
pub const IDLE_TIMEOUT: Var = Var {
    name: "FREELLMAPI_IDLE_TIMEOUT_SECS",
    flag: None,
    unset: Unset::Number(90),
    about: "a provider's silence allowed mid-answer, in seconds",
};
pub const SSE_KEEPALIVE: Var = Var {
    name: "FREELLMAPI_SSE_KEEPALIVE_SECS",
    flag: None,
    unset: Unset::Number(15),
    about: "seconds between keep-alive comments on a quiet stream",
};
pub const HEALTH_INTERVAL: Var = Var {
    name: "FREELLMAPI_HEALTH_INTERVAL_SECS",
    flag: None,
    unset: Unset::Number(300),
    about: "seconds between key health checks (the first comes 30 s after start)",
};
pub const SYNC_HOURS: Var = Var {
    name: "FREELLMAPI_SYNC_HOURS",
    flag: None,
    unset: Unset::Number(24),
    about: "hours between syncs of the providers' model lists (the first 5 min after start); \
            `0` for none (a new key is still followed by one)",
};
pub const WORKERS: Var = Var {
    name: "FREELLMAPI_WORKERS",
    flag: None,
    unset: Unset::Says("one per core"),
    about: "coroutine worker threads, 1 to 64 (upstream waits never block one)",
};
pub const PROXY: Var = Var {
    name: "FREELLMAPI_PROXY",
    flag: None,
    unset: Unset::Says("none"),
    about: "an outbound proxy for every platform: `http://`, `socks5://` or `socks5h://`",
};
pub const PROXY_PLATFORM: Var = Var {
    name: "FREELLMAPI_PROXY_<PLATFORM>",
    flag: None,
    unset: Unset::Says("none"),
    about: "an outbound proxy for one platform; beats `FREELLMAPI_PROXY`",
};
pub const CA_FILE: Var = Var {
    name: "FREELLMAPI_CA_FILE",
    flag: None,
    unset: Unset::Says("built-in"),
    about: "PEM root certificates to verify providers with instead of the built-in Mozilla \
            roots (a network that re-signs TLS)",
};
pub const ALLOWED_HOSTS: Var = Var {
    name: "FREELLMAPI_ALLOWED_HOSTS",
    flag: None,
    unset: Unset::Says("none"),
    about: "names (or addresses) the dashboard answers to besides this machine's own, \
            comma-separated; `*` for any",
};

pub const OLLAMA_LISTEN: Var = Var {
    name: "FREELLMAPI_OLLAMA_LISTEN",
    flag: None,
    unset: Unset::Says("off"),
    about: "also serve the Ollama API on this address (`0.0.0.0:11434`), for Open WebUI, \
            Home Assistant, Zed, JetBrains and the `ollama` libraries",
};
pub const OLLAMA_ALLOW: Var = Var {
    name: "FREELLMAPI_OLLAMA_ALLOW",
    flag: None,
    unset: Unset::Value("127.0.0.0/8,::1/128"),
    about: "addresses that may use the Ollama API without a key, comma-separated CIDRs; \
            others send a client key as `Authorization: Bearer`",
};
pub const VOCAB_DIR: Var = Var {
    name: "FREELLMAPI_VOCAB_DIR",
    flag: None,
    unset: Unset::Says(
        "`vocab/` beside the binary, then `../share/freellmapi/vocab/`, then \
         `/usr/share/freellmapi/vocab/`",
    ),
    about: "where the token vocabularies (`cl100k_base.tiktoken`, `o200k_base.tiktoken`) are, \
            for embeddings sent as token ids",
};

/// Every variable, flags first.
pub const ALL: &[Var] = &[
    LISTEN,
    DATA_DIR,
    TRUST_PROXY,
    LOG,
    ENCRYPTION_KEY,
    UPSTREAM,
    MAX_BODY_MIB,
    BODY_TIMEOUT,
    REQUEST_BUDGET,
    FIRST_BYTE_TIMEOUT,
    IDLE_TIMEOUT,
    SSE_KEEPALIVE,
    HEALTH_INTERVAL,
    SYNC_HOURS,
    WORKERS,
    PROXY,
    PROXY_PLATFORM,
    CA_FILE,
    ALLOWED_HOSTS,
    OLLAMA_LISTEN,
    OLLAMA_ALLOW,
    VOCAB_DIR,
];

/// The `--help` section: flags with their variables, then the rest, each with its default.
pub fn help() -> String {
    let mut out = String::from("OPTIONS AND ENVIRONMENT (flag > environment > default):\n");
    for v in ALL {
        let left = match v.flag {
            Some(flag) => format!("{flag}  {}", v.name),
            None => v.name.to_string(),
        };
        let default = v.shown_default().replace('`', "");
        let about = format!("{} [{default}]", v.about.replace('`', ""));
        out.push_str(&format!("  {left}\n"));
        let mut line = String::new();
        for word in about.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > 88 {
                out.push_str(&format!("      {line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&format!("      {line}\n"));
    }
    out
}
