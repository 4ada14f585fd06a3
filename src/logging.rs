//! The process logger: one line per event on stderr, filtered by `FREELLMAPI_LOG`, with every
//! known secret shape redacted before it is written.
//!
//! Under systemd (`JOURNAL_STREAM` set) lines carry a `<N>` syslog priority prefix instead of a
//! timestamp, so journald records the level. Redaction is a second line of defence: code must
//! not format secrets in the first place.

use std::borrow::Cow;
use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// A parsed `FREELLMAPI_LOG` value: a default level for our own code plus per-target levels.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    own: LevelFilter,
    targets: Vec<(String, LevelFilter)>,
}

/// Other crates stay at this level unless named, so `debug` shows our decisions, not TLS noise.
const DEPENDENCY_DEFAULT: LevelFilter = LevelFilter::Warn;

/// The HTTP client's crates. At trace they dump every byte sent as hex and text, 16 bytes a
/// line: the `Authorization` header's key arrives cut across lines, where no redaction can
/// recognise it. So they never go above debug, whatever is asked.
const WIRE_TARGETS: &[&str] = &["ureq", "ureq_proto"];
const WIRE_MAX: LevelFilter = LevelFilter::Debug;

fn is_wire(target: &str) -> bool {
    WIRE_TARGETS
        .iter()
        .any(|t| target == *t || target.strip_prefix(t).is_some_and(|r| r.starts_with("::")))
}

impl Filter {
    /// Parses `info`, `debug`, `freellmapi=debug,ureq=info`, ...
    pub fn parse(spec: &str) -> Result<Filter, String> {
        let mut filter = Filter {
            own: LevelFilter::Info,
            targets: Vec::new(),
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((target, level)) => {
                    let level = parse_level(level)?;
                    if target == "freellmapi" {
                        filter.own = level;
                    } else {
                        filter.targets.push((target.to_string(), level));
                    }
                }
                None => filter.own = parse_level(part)?,
            }
        }
        Ok(filter)
    }

    fn level_for(&self, target: &str) -> LevelFilter {
        if target == "freellmapi" || target.starts_with("freellmapi::") {
            return self.own;
        }
        let level = self
            .targets
            .iter()
            .filter(|(t, _)| {
                target == t
                    || target
                        .strip_prefix(t.as_str())
                        .is_some_and(|r| r.starts_with("::"))
            })
            .map(|(_, l)| *l)
            .next_back()
            .unwrap_or(DEPENDENCY_DEFAULT);
        if is_wire(target) {
            level.min(WIRE_MAX)
        } else {
            level
        }
    }

    /// Whether trace was asked for a wire target (and is refused).
    fn asks_wire_trace(&self) -> bool {
        self.targets
            .iter()
            .any(|(t, l)| *l > WIRE_MAX && is_wire(t))
    }

    fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.own.max(DEPENDENCY_DEFAULT), |a, b| a.max(b))
    }
}

fn parse_level(s: &str) -> Result<LevelFilter, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(LevelFilter::Off),
        "error" => Ok(LevelFilter::Error),
        "warn" | "warning" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        other => Err(format!(
            "unknown log level {other:?}; use off, error, warn, info, debug or trace"
        )),
    }
}

struct StderrLogger {
    filter: Filter,
    journald: bool,
}

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= self.filter.level_for(m.target())
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        let text = redact(&text);
        let line = if self.journald {
            let prio = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            format!("<{prio}>{text}\n")
        } else {
            format!(
                "{} {:<5} {text}\n",
                crate::time::rfc3339_ms(crate::time::now_ms()),
                record.level()
            )
        };
        // One write per line so concurrent coroutines never interleave inside a line.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the logger once per process; later calls keep the first filter.
pub fn init(filter: Filter) {
    let max = filter.max();
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let wire_trace = filter.asks_wire_trace();
    if log::set_boxed_logger(Box::new(StderrLogger { filter, journald })).is_ok() {
        log::set_max_level(max);
        if wire_trace {
            log::warn!(
                "ureq and ureq_proto log at debug at most: their trace output dumps request bytes, provider keys included"
            );
        }
    }
}

/// Prefixes that start a provider key or our unified key. After one of these, at a word
/// boundary, the token that follows is replaced. `key=` covers keys placed in URLs. The unified
/// key is matched on its hex body only, so paths like `/tmp/freellmapi-test` stay readable.
const UNIFIED_PREFIX: &str = "freellmapi-";
const SECRET_PREFIXES: &[(&str, usize)] = &[
    (UNIFIED_PREFIX, 8),
    ("github_pat_", 8),
    ("nvapi-", 8),
    ("gsk_", 8),
    ("csk-", 8),
    ("ghp_", 8),
    ("AIza", 8),
    ("sk-", 12),
    ("hf_", 8),
    ("key=", 1),
];

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~' | b'%' | b'+' | b'/')
}

/// Replaces anything shaped like a secret with `<prefix>[redacted]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let hit = if boundary {
            SECRET_PREFIXES
                .iter()
                .find(|(p, _)| bytes[i..].starts_with(p.as_bytes()))
        } else {
            None
        };
        if let Some((prefix, min_len)) = hit {
            let start = i + prefix.len();
            let mut end = start;
            let in_token = |b: u8| {
                if *prefix == UNIFIED_PREFIX {
                    b.is_ascii_hexdigit()
                } else {
                    is_token_byte(b)
                }
            };
            while end < bytes.len() && in_token(bytes[end]) {
                end += 1;
            }
            if end - start >= *min_len {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..start]);
                o.push_str("[redacted]");
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_secret_shape() {
        let cases = [
            ("key gsk_abcdefghijklmnop used", "key gsk_[redacted] used"),
            (
                "Bearer sk-proj-abcdefghijklmnopqrst",
                "Bearer sk-[redacted]",
            ),
            ("csk-12345678abcd", "csk-[redacted]"),
            ("nvapi-ABCDEFGHIJ", "nvapi-[redacted]"),
            ("AIzaSyA1234567890", "AIza[redacted]"),
            ("ghp_abcdefghij12", "ghp_[redacted]"),
            ("github_pat_11ABCDEFG_xyz", "github_pat_[redacted]"),
            ("hf_abcdefghijkl", "hf_[redacted]"),
            (
                "token freellmapi-0123456789abcdef0123",
                "token freellmapi-[redacted]",
            ),
            (
                "https://x/v1?alt=sse&key=AIzaSECRET",
                "https://x/v1?alt=sse&key=[redacted]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn leaves_ordinary_words_alone() {
        for s in [
            "task-runner started",
            "disk-usage",
            "freellmapi-v1",
            "/tmp/freellmapi-test-proxy-1",
            "monkey=1x",
            "no secrets here",
        ] {
            assert_eq!(redact(s), s);
        }
    }

    #[test]
    fn filter_parsing() {
        let f = Filter::parse("debug").unwrap();
        assert_eq!(f.level_for("freellmapi::router"), LevelFilter::Debug);
        assert_eq!(f.level_for("ureq::run"), LevelFilter::Warn);
        let f = Filter::parse("warn,ureq=debug,rustls=trace").unwrap();
        assert_eq!(f.level_for("freellmapi"), LevelFilter::Warn);
        assert_eq!(f.level_for("ureq::run"), LevelFilter::Debug);
        assert_eq!(f.level_for("ureq_proto"), LevelFilter::Warn);
        assert_eq!(f.level_for("rustls::conn"), LevelFilter::Trace);
        assert!(!f.asks_wire_trace());
        assert!(Filter::parse("loud").is_err());
    }

    /// Tries: trace asked for the HTTP client's crates, by name and by module. Their trace
    /// output would dump the key-bearing request bytes; they stay at debug.
    #[test]
    fn wire_logs_never_go_above_debug() {
        let f = Filter::parse("trace,ureq=trace,ureq_proto::util=trace").unwrap();
        assert_eq!(f.level_for("freellmapi::upstream"), LevelFilter::Trace);
        assert_eq!(f.level_for("ureq::run"), LevelFilter::Debug);
        assert_eq!(f.level_for("ureq_proto::util"), LevelFilter::Debug);
        assert_eq!(
            f.level_for("ureq_protocol"),
            LevelFilter::Warn,
            "another crate"
        );
        assert!(f.asks_wire_trace());
    }
}
