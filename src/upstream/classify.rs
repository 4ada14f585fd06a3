//! Turns what an upstream answered into a [`Verdict`] and reads provider rate-limit
//! headers into [`RateHints`]. Classification looks at the status, headers and structured
//! error fields (`error.code`, Google's `quotaId`), never at message text.

use simd_json::prelude::*;
use ureq::http::{HeaderMap, HeaderName};

use super::UpstreamError;
use crate::outcome::{RateHints, Verdict};

/// Classifies a transport-level failure.
pub fn transport(e: UpstreamError) -> Verdict {
    match e {
        UpstreamError::ClientGone => Verdict::Cancelled,
        UpstreamError::KeyUnreadable => Verdict::Auth,
        _ => Verdict::Unavailable,
    }
}

/// Classifies a non-2xx answer from its status, headers and (bounded) body.
pub fn status(code: u16, headers: &HeaderMap, body: &[u8]) -> Verdict {
    let retry_after_ms = retry_after(headers);
    match code {
        429 => {
            let quota = google_quota(body);
            // A per-minute quota waits its delay (or a minute) and never escalates.
            let retry_after_ms = retry_after_ms
                .or(quota.retry_delay_ms)
                .or(quota.per_minute.then_some(60_000));
            Verdict::RateLimited {
                retry_after_ms,
                daily: retry_after_ms.is_none() && quota.per_day,
            }
        }
        503 if retry_after_ms.is_some() => Verdict::RateLimited {
            retry_after_ms,
            daily: false,
        },
        // An account out of credits will not recover within minutes.
        402 => Verdict::RateLimited {
            retry_after_ms,
            daily: retry_after_ms.is_none(),
        },
        401 | 403 => Verdict::Auth,
        // Google answers a bad key with 400 and a structured reason, not 401.
        400 if error_reason(body).as_deref() == Some("API_KEY_INVALID") => Verdict::Auth,
        404 | 410 => Verdict::ModelGone,
        413 => Verdict::ContextTooLong,
        400 | 422 if error_code(body).as_deref() == Some("context_length_exceeded") => {
            Verdict::ContextTooLong
        }
        400 | 422 => Verdict::BadRequest,
        _ => Verdict::Unavailable,
    }
}

/// The client-facing message of an upstream 400: `error.message` (or `error` as a string).
pub fn error_message(body: &[u8]) -> Option<String> {
    let mut copy = body.to_vec();
    let v = crate::json::parse_object(&mut copy).ok()?;
    let err = v.get("error")?;
    let msg = err.get_str("message").or_else(|| err.as_str())?;
    Some(msg.chars().take(500).collect())
}

fn error_code(body: &[u8]) -> Option<String> {
    let mut copy = body.to_vec();
    let v = crate::json::parse_object(&mut copy).ok()?;
    let err = v.get("error")?;
    err.get_str("code")
        .or_else(|| err.get_str("type"))
        .map(str::to_string)
}

/// `error.details[].reason` (Google's `ErrorInfo`), if any.
fn error_reason(body: &[u8]) -> Option<String> {
    let mut copy = body.to_vec();
    let v = crate::json::parse_object(&mut copy).ok()?;
    let details = v.get("error")?.get_array("details")?;
    details
        .iter()
        .find_map(|d| d.get_str("reason"))
        .map(str::to_string)
}

/// What Google's structured 429 details say: `QuotaFailure` violations whose `quotaId` names
/// the quota (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`, `...PerMinute...`) and a
/// `RetryInfo` with a `retryDelay` such as `"37s"`.
#[derive(Default)]
struct GoogleQuota {
    per_day: bool,
    per_minute: bool,
    retry_delay_ms: Option<u64>,
}

fn google_quota(body: &[u8]) -> GoogleQuota {
    let mut q = GoogleQuota::default();
    let mut copy = body.to_vec();
    let Ok(v) = crate::json::parse_object(&mut copy) else {
        return q;
    };
    for d in v
        .get("error")
        .and_then(|e| e.get_array("details"))
        .into_iter()
        .flatten()
    {
        for viol in d.get_array("violations").into_iter().flatten() {
            let id = viol.get_str("quotaId").unwrap_or("");
            q.per_day |= id.contains("PerDay");
            q.per_minute |= id.contains("PerMinute");
        }
        if let Some(delay) = d.get_str("retryDelay").and_then(parse_duration_ms) {
            q.retry_delay_ms = Some(delay);
        }
    }
    q
}

// Read from every answer; as names made once, a lookup only hashes them.
const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

fn header<'a>(h: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The wait a rate-limited answer asks for: `Retry-After` seconds, or an `x-ratelimit-reset`
/// epoch, or the reset of an exhausted request window.
pub fn retry_after(h: &HeaderMap) -> Option<u64> {
    if let Some(s) = header(h, &RETRY_AFTER).and_then(|v| v.parse::<f64>().ok())
        && s.is_finite()
        && s >= 0.0
    {
        return Some((s * 1000.0) as u64);
    }
    if let Some(reset) = header(h, &RESET).and_then(|v| v.parse::<u64>().ok()) {
        let now = crate::time::now_ms();
        // OpenRouter sends epoch milliseconds; some providers epoch seconds.
        let at = if reset > 10_000_000_000 {
            reset
        } else {
            reset * 1000
        };
        if at > now {
            return Some(at - now);
        }
    }
    let hints = rate_hints(h);
    match (hints.remaining_requests, hints.reset_requests_ms) {
        (Some(0), Some(ms)) => Some(ms),
        _ => None,
    }
}

/// `x-ratelimit-remaining-*` / `x-ratelimit-reset-*` as Groq and OpenAI send them.
pub fn rate_hints(h: &HeaderMap) -> RateHints {
    let num = |name: &HeaderName| header(h, name).and_then(|v| v.parse::<u64>().ok());
    let dur = |name: &HeaderName| header(h, name).and_then(parse_duration_ms);
    RateHints {
        remaining_requests: num(&REMAINING_REQUESTS),
        reset_requests_ms: dur(&RESET_REQUESTS),
        remaining_tokens: num(&REMAINING_TOKENS),
        reset_tokens_ms: dur(&RESET_TOKENS),
    }
}

/// Parses `1m30.5s`, `6.5s`, `250ms`, `2h`, or plain seconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some((secs * 1000.0) as u64);
    }
    let mut total = 0.0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'h' => 3_600_000.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'm' => 60_000.0,
            's' => 1000.0,
            _ => return None,
        };
        total += n * unit;
        any = true;
    }
    (any && num.is_empty()).then_some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn statuses_map_to_verdicts() {
        let none = HeaderMap::new();
        assert_eq!(
            status(429, &none, b""),
            Verdict::RateLimited {
                retry_after_ms: None,
                daily: false
            }
        );
        assert_eq!(
            status(503, &headers(&[("retry-after", "7")]), b""),
            Verdict::RateLimited {
                retry_after_ms: Some(7000),
                daily: false
            }
        );
        assert_eq!(status(503, &none, b""), Verdict::Unavailable);
        assert_eq!(status(500, &none, b""), Verdict::Unavailable);
        assert_eq!(status(401, &none, b""), Verdict::Auth);
        assert_eq!(status(403, &none, b""), Verdict::Auth);
        assert_eq!(status(404, &none, b""), Verdict::ModelGone);
        assert_eq!(status(413, &none, b""), Verdict::ContextTooLong);
        assert_eq!(
            status(
                400,
                &none,
                br#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#
            ),
            Verdict::ContextTooLong
        );
        assert_eq!(
            status(
                400,
                &none,
                br#"{"error":{"message":"This mentions 429 and 500 and quota"}}"#
            ),
            Verdict::BadRequest
        );
        assert_eq!(status(422, &none, b"garbage"), Verdict::BadRequest);
        let google_bad_key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert_eq!(status(400, &none, google_bad_key), Verdict::Auth);
    }

    #[test]
    fn daily_quota_is_read_from_structured_fields() {
        let google = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#;
        assert_eq!(
            status(429, &HeaderMap::new(), google),
            Verdict::RateLimited {
                retry_after_ms: None,
                daily: true
            }
        );
        let minute = br#"{"error":{"details":[{"violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel"}]}]}}"#;
        assert_eq!(
            status(429, &HeaderMap::new(), minute),
            Verdict::RateLimited {
                retry_after_ms: Some(60_000),
                daily: false
            },
            "a per-minute quota waits a minute and does not escalate"
        );
        let with_delay = br#"{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
        assert_eq!(
            status(429, &HeaderMap::new(), with_delay),
            Verdict::RateLimited {
                retry_after_ms: Some(37_000),
                daily: false
            }
        );
    }

    #[test]
    fn rate_headers_are_read() {
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2m59.56s"),
            ("x-ratelimit-remaining-tokens", "5000"),
            ("x-ratelimit-reset-tokens", "250ms"),
        ]);
        let hints = rate_hints(&h);
        assert_eq!(hints.remaining_requests, Some(0));
        assert_eq!(hints.reset_requests_ms, Some(179_560));
        assert_eq!(hints.reset_tokens_ms, Some(250));
        assert_eq!(retry_after(&h), Some(179_560));
        let future = crate::time::now_ms() + 90_000;
        let or = headers(&[("x-ratelimit-reset", &future.to_string())]);
        assert!(retry_after(&or).unwrap() > 85_000);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("6.5s"), Some(6500));
        assert_eq!(parse_duration_ms("1h2m"), Some(3_720_000));
        assert_eq!(parse_duration_ms("30"), Some(30_000));
        assert_eq!(parse_duration_ms("soon"), None);
        assert_eq!(parse_duration_ms("5x"), None);
    }

    #[test]
    fn upstream_messages_are_extracted_and_capped() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad tool schema"}}"#).as_deref(),
            Some("bad tool schema")
        );
        assert_eq!(
            error_message(br#"{"error":"plain"}"#).as_deref(),
            Some("plain")
        );
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(2000));
        assert_eq!(error_message(long.as_bytes()).unwrap().len(), 500);
        assert_eq!(error_message(b"<html>"), None);
    }
}
