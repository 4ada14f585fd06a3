//! Key health: probes (catalog data per platform), what a probe outcome means for a key, and
//! the checker that runs them.
//!
//! A probe is one cheap authenticated request, never a completion. Its outcome is classified by
//! status and structured error fields: valid, invalid (confirmed bad credentials), rate-limited
//! (valid but throttled) or error (transport failures, 5xx, region blocks) which never counts
//! against the key. Three consecutive confirmed failures disable a key; the checker re-probes
//! keys it disabled hourly and re-enables them once valid. Results are written through the
//! store writer thread so no coroutine waits on an fsync.

use std::time::Duration;

use simd_json::prelude::*;

use crate::catalog::{Catalog, Platform};
use crate::crypto::MasterKey;
use crate::store::{KeyRecord, KeyStatus, Store, StoreError};
use crate::upstream::{KeyRef, Upstream, UpstreamError};

pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_CONCURRENT_PROBES: usize = 4;
pub const AUTO_DISABLE_AFTER: u32 = 3;
pub const FIRST_PASS_AFTER: Duration = Duration::from_secs(30);
pub const PASS_EVERY: Duration = Duration::from_secs(300);
/// Keys the checker disabled are probed again this often.
pub const DISABLED_RECHECK_MS: u64 = 3_600_000;

/// What one probe said about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Valid,
    /// The provider confirmed the credentials are not valid.
    Invalid {
        detail: String,
    },
    /// Valid, but throttled right now.
    RateLimited,
    /// Could not tell (network, timeout, 5xx, region or API-disabled errors).
    Error {
        detail: String,
    },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid { .. } => "invalid",
            Outcome::RateLimited => "rate-limited",
            Outcome::Error { .. } => "error",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Outcome::Valid => "ok".into(),
            Outcome::RateLimited => "HTTP 429".into(),
            Outcome::Invalid { detail } | Outcome::Error { detail } => detail.clone(),
        }
    }
}

/// `error.details[].reason` or `error.status` of a Google-style error body.
fn reasons(body: &[u8]) -> Vec<String> {
    let mut copy = body.to_vec();
    let Ok(v) = crate::json::parse_object(&mut copy) else {
        return vec![];
    };
    let Some(err) = v.get("error") else {
        return vec![];
    };
    let mut out: Vec<String> = err
        .get_array("details")
        .map(|d| {
            d.iter()
                .filter_map(|x| x.get_str("reason").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.extend(err.get_str("status").map(str::to_string));
    out
}

/// Classifies a probe's answer with the platform's probe rules.
pub fn classify(platform: &Platform, answer: Result<(u16, Vec<u8>), UpstreamError>) -> Outcome {
    let (status, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            return Outcome::Error {
                detail: e.to_string(),
            };
        }
    };
    let probe = &platform.probe;
    if (200..300).contains(&status) {
        return Outcome::Valid;
    }
    if status == 429 {
        return Outcome::RateLimited;
    }
    let reasons = reasons(&body);
    if let Some(r) = reasons.iter().find(|r| probe.invalid_reasons.contains(r)) {
        return Outcome::Invalid {
            detail: format!("HTTP {status} {r}"),
        };
    }
    if probe.invalid.contains(&status) {
        return Outcome::Invalid {
            detail: format!("HTTP {status}"),
        };
    }
    let reason = reasons.first().map(|r| format!(" {r}")).unwrap_or_default();
    Outcome::Error {
        detail: format!("HTTP {status}{reason}"),
    }
}

/// Applies an outcome to a key row. Returns a line for the operator when something changed
/// that they should know about (disabled, re-enabled).
pub fn apply(record: &mut KeyRecord, outcome: &Outcome, now_ms: u64) -> Option<String> {
    record.last_checked_ms = Some(now_ms);
    record.last_detail = Some(outcome.detail());
    match outcome {
        Outcome::Valid | Outcome::RateLimited => {
            record.status = if *outcome == Outcome::Valid {
                KeyStatus::Healthy
            } else {
                KeyStatus::RateLimited
            };
            record.auth_failures = 0;
            if record.auto_disabled {
                record.auto_disabled = false;
                record.enabled = true;
                record.disabled_reason = None;
                return Some(format!(
                    "key {} ({}) is valid again and was re-enabled",
                    record.id, record.platform
                ));
            }
        }
        Outcome::Invalid { detail } => {
            record.status = KeyStatus::Invalid;
            record.auth_failures = record.auth_failures.saturating_add(1);
            if record.auth_failures >= AUTO_DISABLE_AFTER && record.enabled {
                record.enabled = false;
                record.auto_disabled = true;
                let reason = format!(
                    "{AUTO_DISABLE_AFTER} consecutive authentication failures (last: {detail})"
                );
                let line = format!(
                    "key {} ({}) disabled after {reason}",
                    record.id, record.platform
                );
                record.disabled_reason = Some(reason);
                return Some(line);
            }
        }
        // Not the key's fault: never counted towards disabling it.
        Outcome::Error { .. } => record.status = KeyStatus::Error,
    }
    None
}

/// `{base}`, `{origin}` (scheme://host:port of the base) in a probe URL; `{account_id}` is filled
/// where the key is opened.
pub fn probe_url(platform: &Platform) -> String {
    let base = &platform.base_url;
    let origin = base
        .find("://")
        .map(|i| {
            let rest = &base[i + 3..];
            let end = rest.find('/').map(|j| i + 3 + j).unwrap_or(base.len());
            &base[..end]
        })
        .unwrap_or(base);
    platform
        .probe
        .url
        .replace("{base}", base)
        .replace("{origin}", origin)
}

/// Which keys a health pass probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The scheduler's pass: enabled keys, and keys the checker disabled once their hourly
    /// re-probe is due.
    Due,
    /// The dashboard's "check all": enabled keys and every key the checker disabled.
    Checkable,
    /// The CLI's `check`: every key, whatever its state.
    Every,
    /// One key, whatever its state (the dashboard's "check now").
    One(u64),
}

impl Selection {
    fn includes(self, record: &KeyRecord, now_ms: u64) -> bool {
        match self {
            Selection::Due => due(record, now_ms),
            Selection::Checkable => record.enabled || record.auto_disabled,
            Selection::Every => true,
            Selection::One(id) => record.id == id,
        }
    }
}

/// Whether the scheduled pass should probe this key now.
pub fn due(record: &KeyRecord, now_ms: u64) -> bool {
    if record.enabled {
        return true;
    }
    record.auto_disabled
        && record
            .last_checked_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= DISABLED_RECHECK_MS)
}

/// A key a pass probed: its row as saved, what the probe said, and the operator's line when
/// the key was disabled or re-enabled.
#[derive(Debug, Clone)]
pub struct Checked {
    pub record: KeyRecord,
    pub outcome: Outcome,
    pub note: Option<String>,
}

/// The first half of a health pass: reads the selected keys and probes them (socket I/O that
/// parks only the calling coroutine). Nothing is written; [`save`] does that, on a thread that
/// may wait for a disk commit.
pub fn probe(
    upstream: &Upstream,
    catalog: &Catalog,
    master: &MasterKey,
    store: &Store,
    selection: Selection,
    now_ms: u64,
) -> Result<Vec<(KeyRecord, Outcome)>, StoreError> {
    let keys: Vec<KeyRecord> = store
        .list_keys()?
        .into_iter()
        .filter(|k| selection.includes(k, now_ms))
        .collect();
    let outcomes = check_all(upstream, catalog, master, &keys);
    Ok(keys.into_iter().zip(outcomes).collect())
}

/// The second half: applies each outcome to its key row and saves it. A key removed meanwhile
/// is passed over; a failed write stops the pass.
pub fn save(
    store: &Store,
    probed: Vec<(KeyRecord, Outcome)>,
    now_ms: u64,
) -> Result<Vec<Checked>, StoreError> {
    let mut checked = Vec::with_capacity(probed.len());
    for (record, outcome) in probed {
        let mut saved = None;
        store.update_key(record.id, |r| {
            let note = apply(r, &outcome, now_ms);
            saved = Some((r.clone(), note));
        })?;
        if let Some((record, note)) = saved {
            checked.push(Checked {
                record,
                outcome,
                note,
            });
        }
    }
    Ok(checked)
}

/// Probes one key.
fn check(
    upstream: &Upstream,
    catalog: &Catalog,
    master: &MasterKey,
    record: &KeyRecord,
) -> Outcome {
    let Some(p) = catalog.platform_index(&record.platform) else {
        return Outcome::Error {
            detail: format!("unknown platform {}", record.platform),
        };
    };
    let platform = &catalog.platforms[p];
    let Some(sealed) = record.sealed_bytes() else {
        return Outcome::Error {
            detail: "unreadable key row".into(),
        };
    };
    // The probe goes the way the key's calls go: through its own proxy, if it has one.
    let Ok(proxy) = record.open_proxy(master) else {
        return Outcome::Error {
            detail: "its proxy cannot be decrypted with this master key".into(),
        };
    };
    let key = KeyRef {
        sealed: &sealed,
        proxy: proxy.as_deref(),
    };
    let answer = upstream.probe(
        platform,
        Some(key),
        master,
        &platform.probe.method,
        &probe_url(platform),
        PROBE_TIMEOUT,
    );
    classify(platform, answer)
}

/// Probes `records`, at most four at a time, each on its own coroutine. Returns the outcomes
/// in the order given.
fn check_all(
    upstream: &Upstream,
    catalog: &Catalog,
    master: &MasterKey,
    records: &[KeyRecord],
) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(records.len());
    for group in records.chunks(MAX_CONCURRENT_PROBES) {
        may::coroutine::scope(|scope| {
            let handles: Vec<_> = group
                .iter()
                .map(|r| {
                    // SAFETY: the scope joins every coroutine before the borrowed arguments go away.
                    unsafe { scope.spawn(move || check(upstream, catalog, master, r)) }
                })
                .collect();
            for h in handles {
                out.push(h.join());
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(id: &str) -> Platform {
        let c = Catalog::builtin();
        c.platforms[c.platform_index(id).unwrap()].clone()
    }

    fn record() -> KeyRecord {
        KeyRecord {
            id: 7,
            platform: "groq".into(),
            label: String::new(),
            sealed: String::new(),
            masked: String::new(),
            enabled: true,
            status: KeyStatus::Unknown,
            unlimited: false,
            created_ms: 0,
            last_checked_ms: None,
            auth_failures: 0,
            auto_disabled: false,
            disabled_reason: None,
            last_detail: None,
            rate_limited_until: None,
            proxy_sealed: None,
            proxy_shown: None,
        }
    }

    #[test]
    fn openai_compatible_probes() {
        let p = platform("groq");
        assert_eq!(classify(&p, Ok((200, vec![]))), Outcome::Valid);
        assert_eq!(
            classify(&p, Ok((401, vec![]))),
            Outcome::Invalid {
                detail: "HTTP 401".into()
            }
        );
        assert_eq!(
            classify(&p, Ok((403, vec![]))),
            Outcome::Invalid {
                detail: "HTTP 403".into()
            }
        );
        assert_eq!(classify(&p, Ok((429, vec![]))), Outcome::RateLimited);
        assert_eq!(
            classify(&p, Ok((503, vec![]))),
            Outcome::Error {
                detail: "HTTP 503".into()
            }
        );
        assert_eq!(
            classify(&p, Err(UpstreamError::Timeout)),
            Outcome::Error {
                detail: "timed out".into()
            }
        );
        assert_eq!(
            classify(&p, Err(UpstreamError::Connect)),
            Outcome::Error {
                detail: "connection failed".into()
            }
        );
    }

    #[test]
    fn google_probes_read_the_reason() {
        let p = platform("google");
        let bad_key = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(
            classify(&p, Ok((400, bad_key.to_vec()))),
            Outcome::Invalid {
                detail: "HTTP 400 API_KEY_INVALID".into()
            }
        );
        let region = br#"{"error":{"code":403,"status":"PERMISSION_DENIED","message":"User location is not supported"}}"#;
        assert_eq!(
            classify(&p, Ok((403, region.to_vec()))),
            Outcome::Error {
                detail: "HTTP 403 PERMISSION_DENIED".into()
            }
        );
        let disabled = br#"{"error":{"code":403,"details":[{"reason":"SERVICE_DISABLED"}]}}"#;
        assert!(matches!(
            classify(&p, Ok((403, disabled.to_vec()))),
            Outcome::Error { .. }
        ));
        assert!(
            matches!(
                classify(&p, Ok((400, b"{}".to_vec()))),
                Outcome::Error { .. }
            ),
            "a 400 without the reason is not a verdict on the key"
        );
    }

    #[test]
    fn three_confirmed_failures_disable_and_recovery_re_enables() {
        let mut r = record();
        let bad = Outcome::Invalid {
            detail: "HTTP 401".into(),
        };
        assert_eq!(apply(&mut r, &bad, 1), None);
        assert_eq!(r.status, KeyStatus::Invalid);
        apply(
            &mut r,
            &Outcome::Error {
                detail: "timed out".into(),
            },
            2,
        );
        assert_eq!(
            r.auth_failures, 1,
            "a transport blip neither counts nor resets"
        );
        assert!(r.enabled);
        apply(&mut r, &bad, 3);
        let line = apply(&mut r, &bad, 4).unwrap();
        assert!(
            line.contains("disabled after 3 consecutive authentication failures"),
            "{line}"
        );
        assert!(!r.enabled && r.auto_disabled);
        assert!(r.disabled_reason.as_deref().unwrap().contains("HTTP 401"));
        assert!(
            !due(&r, 4 + DISABLED_RECHECK_MS - 1),
            "disabled keys wait an hour"
        );
        assert!(due(&r, 4 + DISABLED_RECHECK_MS));
        let line = apply(&mut r, &Outcome::Valid, 5).unwrap();
        assert!(line.contains("re-enabled"));
        assert!(r.enabled && !r.auto_disabled && r.disabled_reason.is_none());
        assert_eq!((r.status, r.auth_failures), (KeyStatus::Healthy, 0));
    }

    #[test]
    fn transport_blips_never_disable() {
        let mut r = record();
        for t in 0..10 {
            apply(
                &mut r,
                &Outcome::Error {
                    detail: "connection failed".into(),
                },
                t,
            );
        }
        assert!(r.enabled);
        assert_eq!(r.status, KeyStatus::Error);
        assert_eq!(r.auth_failures, 0);
    }

    #[test]
    fn a_user_disabled_key_is_not_re_enabled() {
        let mut r = record();
        r.enabled = false;
        assert!(!due(&r, 0));
        apply(&mut r, &Outcome::Valid, 1);
        assert!(!r.enabled);
    }

    #[test]
    fn probe_urls_expand_base_and_origin() {
        let mut p = platform("cloudflare");
        p.base_url = "http://127.0.0.1:9/client/v4/accounts/{account_id}/ai/v1".into();
        assert_eq!(
            probe_url(&p),
            "http://127.0.0.1:9/client/v4/accounts/{account_id}/ai/models/search?per_page=1"
        );
        let g = platform("groq");
        assert_eq!(probe_url(&g), "https://api.groq.com/openai/v1/models");
    }
}
