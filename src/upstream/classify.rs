//! Turns what an upstream answered into a [`Verdict`] and reads provider rate-limit
//! headers into [`RateHints`]. Classification looks at the status, headers and structured
//! error fields (`error.code`, Google's `quotaId`). The one place it reads message text is
//! whether a model is gone: providers say so in words more often than in codes (Groq's
//! "has been decommissioned", Cloudflare's "No such model", OpenRouter's "No endpoints
//! found for"), and retiring a model on a wrong guess costs its traffic, so the phrases are
//! the recorded ones and each must name the model.

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

/// Classifies a non-2xx answer from its status, headers and (bounded) body. `gone_codes` are
/// the platform's own error codes for a model that does not exist (catalog data).
pub fn status(code: u16, headers: &HeaderMap, body: &[u8], gone_codes: &[String]) -> Verdict {
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
        401 => Verdict::Auth,
        403 => match gone(body, gone_codes) {
            // Cloudflare (error 5035) and Ollama answer a model that needs a paid plan so.
            Gone::Model => Verdict::ModelGone,
            _ => Verdict::Auth,
        },
        // Google answers a bad key with 400 and a structured reason, not 401.
        400 if error_reason(body).as_deref() == Some("API_KEY_INVALID") => Verdict::Auth,
        404 | 410 => match gone(body, gone_codes) {
            Gone::Model => Verdict::ModelGone,
            Gone::DataPolicy => Verdict::DataPolicy,
            Gone::NeedsFeature => Verdict::BadRequest,
            // A 404 that names no model is the base URL's (a wrong override, a moved API).
            Gone::No => Verdict::Unavailable,
        },
        400 | 422 if gone(body, gone_codes) == Gone::Model => Verdict::ModelGone,
        413 => Verdict::ContextTooLong,
        400 | 422 if error_code(body).as_deref() == Some("context_length_exceeded") => {
            Verdict::ContextTooLong
        }
        400 | 422 => Verdict::BadRequest,
        _ => Verdict::Unavailable,
    }
}

/// The client-facing message of an upstream error, in the shapes providers use:
/// `error.message` (or `error` as a string), Cloudflare's `errors[0].message`, a top-level
/// `message` (Cerebras, Cohere) or `detail` (NVIDIA's RFC 7807 problems).
pub fn error_message(body: &[u8]) -> Option<String> {
    let mut copy = body.to_vec();
    let v = crate::json::parse_object(&mut copy).ok()?;
    let first_error = v.get_array("errors").and_then(|e| e.first());
    let msg = match v.get("error") {
        Some(err) => err.get_str("message").or_else(|| err.as_str()),
        None => first_error
            .and_then(|e| e.get_str("message"))
            .or_else(|| v.get_str("message"))
            .or_else(|| v.get_str("detail")),
    }?;
    Some(msg.chars().take(500).collect())
}

/// What an error answer says about the model asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// It does not exist (any more), or not for this plan.
    Model,
    /// It exists; the account's privacy settings exclude it (OpenRouter).
    DataPolicy,
    /// It exists, without something this request needs (OpenRouter: "No endpoints found that
    /// support tool use").
    NeedsFeature,
    No,
}

/// Codes by which providers say a model does not exist: OpenAI's and Groq's, Groq's older
/// one, Mistral's `type` (its `code` is "1500"), Cloudflare's "No such model" (5007), "The
/// model name is invalid" (3042), "deprecated" (5028) and "requires Workers Paid" (5035).
const GONE_CODES: &[&str] = &[
    "model_not_found",
    "model_decommissioned",
    "invalid_model",
    "5007",
    "3042",
    "5028",
    "5035",
];

/// Words that, beside "model", say it is gone, as providers answered (the recorded answers
/// are in this module's tests).
const GONE_PHRASES: &[&str] = &[
    "decommissioned",
    "deprecated",
    "no longer supported",
    "no longer available",
    "does not exist",
    "not found",
    "no such model",
    "unknown model",
    "not a valid model",
    "invalid model",
    "unavailable for free",
    "end of life",
    "requires a subscription",
    "require workers paid",
];

fn gone(body: &[u8], platform_codes: &[String]) -> Gone {
    let mut copy = body.to_vec();
    let Ok(v) = crate::json::parse_object(&mut copy) else {
        return Gone::No;
    };
    let err = v.get("error").filter(|e| e.is_object());
    let cf = v.get_array("errors").and_then(|e| e.first());
    // `error.code`/`error.type`, Cloudflare's `errors[0].code`, or top-level ones (Cerebras).
    let codes: Vec<String> = [err, cf, Some(&v)]
        .into_iter()
        .flatten()
        .flat_map(|o| ["code", "type"].map(|f| o.get(f)))
        .flatten()
        .filter_map(|c| {
            c.as_str()
                .map(str::to_string)
                .or_else(|| c.as_u64().map(|n| n.to_string()))
        })
        .collect();
    let message = error_message(body).unwrap_or_default().to_ascii_lowercase();
    let reasons = err
        .and_then(|e| e.get("metadata"))
        .and_then(|m| m.get_array("ineligibility_reasons"));
    if message.contains("data policy")
        || message.contains("guardrail")
        || reasons.is_some_and(|r| {
            r.iter().any(|x| {
                x.get_str("reason")
                    .is_some_and(|s| s.contains("training-violation"))
            })
        })
    {
        return Gone::DataPolicy;
    }
    if message.contains("no endpoints found that support") {
        return Gone::NeedsFeature;
    }
    if codes
        .iter()
        .any(|c| GONE_CODES.contains(&c.as_str()) || platform_codes.contains(c))
    {
        return Gone::Model;
    }
    // OpenRouter: "No endpoints found for <model>." is a model no provider serves any more.
    if message.starts_with("no endpoints found for ")
        || (message.contains("model") && GONE_PHRASES.iter().any(|p| message.contains(p)))
    {
        return Gone::Model;
    }
    Gone::No
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
            status(429, &none, b"", &[]),
            Verdict::RateLimited {
                retry_after_ms: None,
                daily: false
            }
        );
        assert_eq!(
            status(503, &headers(&[("retry-after", "7")]), b"", &[]),
            Verdict::RateLimited {
                retry_after_ms: Some(7000),
                daily: false
            }
        );
        assert_eq!(status(503, &none, b"", &[]), Verdict::Unavailable);
        assert_eq!(status(500, &none, b"", &[]), Verdict::Unavailable);
        assert_eq!(status(401, &none, b"", &[]), Verdict::Auth);
        assert_eq!(status(403, &none, b"", &[]), Verdict::Auth);
        assert_eq!(
            status(404, &none, b"", &[]),
            Verdict::Unavailable,
            "a bare 404 is the URL's"
        );
        assert_eq!(status(413, &none, b"", &[]), Verdict::ContextTooLong);
        assert_eq!(
            status(
                400,
                &none,
                br#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#,
                &[]
            ),
            Verdict::ContextTooLong
        );
        assert_eq!(
            status(
                400,
                &none,
                br#"{"error":{"message":"This mentions 429 and 500 and quota"}}"#,
                &[]
            ),
            Verdict::BadRequest
        );
        assert_eq!(status(422, &none, b"garbage", &[]), Verdict::BadRequest);
        let google_bad_key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert_eq!(status(400, &none, google_bad_key, &[]), Verdict::Auth);
    }

    /// Answers providers gave for a model that is gone, as recorded in public logs and docs
    /// (December 2026), and the ones that look alike but are not.
    #[test]
    fn gone_models_are_told_from_policies_features_and_wrong_urls() {
        let none = HeaderMap::new();
        let gone: &[(u16, &str)] = &[
            // Groq, a model shut down in 2026 (ITSpecialist111/ai_automation_suggester#187).
            (
                404,
                r#"{"error":{"message":"The model `llama-3.3-70b-versatile` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}}"#,
            ),
            // Groq, an older decommissioned one.
            (
                400,
                r#"{"error":{"message":"The model `llama-3.2-11b-vision-preview` has been decommissioned and is no longer supported. Please refer to https://console.groq.com/docs/deprecations for a recommendation on which model to use instead.","type":"invalid_request_error","code":"model_decommissioned"}}"#,
            ),
            // Cerebras (no "error" wrapper).
            (
                404,
                r#"{"message":"Model does not exist or you do not have access to it.","type":"not_found_error","param":"model","code":"model_not_found"}"#,
            ),
            // Gemini.
            (
                404,
                r#"{"error":{"code":404,"message":"models/gemini-2.0-pro is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.","status":"NOT_FOUND"}}"#,
            ),
            (
                404,
                r#"{"error":{"code":404,"message":"This model models/gemini-2.5-flash is no longer available to new users. Please update your code to use a newer model for the latest features and improvements.","status":"NOT_FOUND"}}"#,
            ),
            // OpenRouter: removed, and no longer free.
            (
                404,
                r#"{"error":{"message":"No endpoints found for qwen/qwen3-coder:free.","code":404},"user_id":"user_x"}"#,
            ),
            (
                404,
                r#"{"error":{"message":"This model is unavailable for free. The paid version is available now - use this slug instead: openai/gpt-oss-20b","code":404}}"#,
            ),
            (
                400,
                r#"{"error":{"message":"foo/bar is not a valid model ID","code":400}}"#,
            ),
            // Mistral.
            (
                400,
                r#"{"object":"error","message":"Invalid model: mistral-medium-3.5","type":"invalid_model","param":null,"code":"1500","raw_status_code":400}"#,
            ),
            // NVIDIA: end of life (RFC 7807).
            (
                410,
                r#"{"type":"about:blank","title":"Gone","status":410,"detail":"The model 'meta/llama-3.3-70b-instruct' has reached its end of life on 2026-08-26T09:00:00Z and is no longer available."}"#,
            ),
            // Cohere.
            (
                404,
                r#"{"message":"model 'xyz' not found, make sure the correct model ID was used and that you have access to the model."}"#,
            ),
            // Cloudflare: no such model, deprecated, paid plan only.
            (
                400,
                r#"{"result":null,"success":false,"errors":[{"code":5007,"message":"No such model @cf/x/y or task"}],"messages":[]}"#,
            ),
            (
                400,
                r#"{"result":null,"success":false,"errors":[{"code":5028,"message":"This model was deprecated on 2026-05-30. Please use an alternative model."}],"messages":[]}"#,
            ),
            (
                403,
                r#"{"result":null,"success":false,"errors":[{"code":5035,"message":"This model requires Workers Paid"}],"messages":[]}"#,
            ),
            // MiniMax.
            (
                400,
                r#"{"error":{"message":"invalid params, unknown model 'gpt-5.5' (2013)","type":"bad_request_error","param":"","code":null}}"#,
            ),
        ];
        for (code, body) in gone {
            assert_eq!(
                status(*code, &none, body.as_bytes(), &[]),
                Verdict::ModelGone,
                "{body}"
            );
        }
        // Zhipu says it only by its own code (in Chinese or English): catalog data.
        let zhipu = r#"{"error":{"code":"1211","message":"模型不存在，请检查模型代码。"}}"#;
        assert_eq!(
            status(400, &none, zhipu.as_bytes(), &[]),
            Verdict::BadRequest
        );
        assert_eq!(
            status(400, &none, zhipu.as_bytes(), &["1211".to_string()]),
            Verdict::ModelGone
        );
        // OpenRouter's privacy settings: the model exists (three generations of wording).
        for body in [
            r#"{"error":{"message":"No endpoints found matching your data policy. Check your settings: https://openrouter.ai/settings/privacy","code":404}}"#,
            r#"{"error":{"message":"No endpoints available matching your guardrail restrictions and data policy. Configure: https://openrouter.ai/settings/privacy","code":404}}"#,
            r#"{"error":{"message":"0 endpoints out of 1 requested are available","code":404,"metadata":{"ineligibility_reasons":[{"reason":"free-model-training-violation-by-guardrail"}],"failed_routing_step":"Filter by Guardrails"}}}"#,
        ] {
            assert_eq!(
                status(404, &none, body.as_bytes(), &[]),
                Verdict::DataPolicy,
                "{body}"
            );
        }
        // A request a model cannot serve is the request's, not the model's end.
        let tools = r#"{"error":{"message":"No endpoints found that support tool use. To learn more about provider routing, visit: https://openrouter.ai/docs/provider-routing","code":404}}"#;
        assert_eq!(
            status(404, &none, tools.as_bytes(), &[]),
            Verdict::BadRequest
        );
        // A 404 that names no model is the base URL's: NVIDIA's plain text, a proxy's page, a
        // bare Not Found.
        for body in [
            "404 page not found",
            "<html>Not Found</html>",
            r#"{"error":"Not Found"}"#,
            r#"{"detail":"Not Found"}"#,
            // A whole platform retired (GitHub Models): not one model's end.
            r#"{"error":{"code":"github_models_retirement_brownout","message":"GitHub Models is temporarily unavailable as part of a scheduled retirement brownout."}}"#,
        ] {
            assert_eq!(
                status(404, &none, body.as_bytes(), &[]),
                Verdict::Unavailable,
                "{body}"
            );
        }
        // A 400 about something else, naming a model, is still the request's.
        let other = r#"{"error":{"message":"The model `x` does not support the parameter `logprobs`","type":"invalid_request_error","code":"unsupported_parameter"}}"#;
        assert_eq!(
            status(400, &none, other.as_bytes(), &[]),
            Verdict::BadRequest
        );
        // An account's 403 stays an auth problem.
        assert_eq!(
            status(403, &none, br#"{"error":{"message":"Forbidden"}}"#, &[]),
            Verdict::Auth
        );
    }

    #[test]
    fn daily_quota_is_read_from_structured_fields() {
        let google = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#;
        assert_eq!(
            status(429, &HeaderMap::new(), google, &[]),
            Verdict::RateLimited {
                retry_after_ms: None,
                daily: true
            }
        );
        let minute = br#"{"error":{"details":[{"violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel"}]}]}}"#;
        assert_eq!(
            status(429, &HeaderMap::new(), minute, &[]),
            Verdict::RateLimited {
                retry_after_ms: Some(60_000),
                daily: false
            },
            "a per-minute quota waits a minute and does not escalate"
        );
        let with_delay = br#"{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
        assert_eq!(
            status(429, &HeaderMap::new(), with_delay, &[]),
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
