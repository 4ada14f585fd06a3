//! Analytics over the request log: `summary`, `by-model`, `by-platform`, `timeline` and `errors`
//! for the last 24 h, 7 d or 30 d. One log record is one client request with its attempts, so
//! every count here is of client requests; attempts are reported beside them, never instead.
//!
//! Each report folds the records one at a time (the log holds up to 100 000 of them), on a
//! worker thread off the coroutine workers. Pure functions of (records, now): tested directly.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use super::AdminError;
use super::{bad, off_worker, storage};
use crate::app::App;
use crate::http::{Request, Responder};
use crate::store::{RequestOutcome, RequestRecord};
use crate::surface::Surface;
use crate::time::{now_ms, rfc3339_ms};

const HOUR_MS: u64 = 3_600_000;
const RECENT_ERRORS: usize = 50;
/// What the same tokens would cost on a paid frontier API, per million (input, output).
const PAID_USD_PER_MTOK: (f64, f64) = (3.0, 15.0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Day,
    Week,
    Month,
}

impl Range {
    pub fn parse(s: Option<&str>) -> Result<Range, AdminError> {
        match s {
            None | Some("7d") => Ok(Range::Week),
            Some("24h") => Ok(Range::Day),
            Some("30d") => Ok(Range::Month),
            Some(other) => Err(bad(
                "range",
                format!("unknown range {other:?}; use 24h, 7d or 30d"),
            )),
        }
    }

    fn span_ms(self) -> u64 {
        match self {
            Range::Day => 24 * HOUR_MS,
            Range::Week => 7 * 24 * HOUR_MS,
            Range::Month => 30 * 24 * HOUR_MS,
        }
    }

    /// Timeline bucket width: 24 hourly, 28 six-hourly or 30 daily points.
    fn bucket_ms(self) -> u64 {
        match self {
            Range::Day => HOUR_MS,
            Range::Week => 6 * HOUR_MS,
            Range::Month => 24 * HOUR_MS,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }
}

/// The (platform, model) that served a request, or that the last attempt went to.
fn served(r: &RequestRecord) -> Option<(&str, &str)> {
    match (&r.platform, &r.model) {
        (Some(p), Some(m)) => Some((p, m)),
        _ => r
            .attempts
            .last()
            .map(|a| (a.platform.as_str(), a.model.as_str())),
    }
}

fn rate(ok: u64, failed: u64) -> Option<f64> {
    let n = ok + failed;
    (n > 0).then(|| (ok as f64 * 1000.0 / n as f64).round() / 10.0)
}

#[derive(Default)]
struct Tally {
    requests: u64,
    succeeded: u64,
    failed: u64,
    latency_sum: u64,
    input: u64,
    output: u64,
    attempts: u64,
    failed_attempts: u64,
}

impl Tally {
    fn add(&mut self, r: &RequestRecord) {
        self.requests += 1;
        match r.outcome {
            RequestOutcome::Success => {
                self.succeeded += 1;
                self.latency_sum += r.latency_ms;
            }
            RequestOutcome::Error => self.failed += 1,
            RequestOutcome::Rejected | RequestOutcome::Cancelled => {}
        }
        self.input += r.input_tokens;
        self.output += r.output_tokens;
    }

    fn avg_latency(&self) -> Option<u64> {
        (self.succeeded > 0).then(|| self.latency_sum / self.succeeded)
    }
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    range: &'static str,
    total_requests: u64,
    succeeded: u64,
    failed: u64,
    /// Refused before routing (bad key, bad body, unknown model).
    rejected: u64,
    /// The client went away first.
    cancelled: u64,
    /// Percent of routed requests that succeeded (succeeded / (succeeded + failed)).
    success_rate: Option<f64>,
    input_tokens: u64,
    output_tokens: u64,
    avg_latency_ms: Option<u64>,
    avg_ttfb_ms: Option<u64>,
    /// Successful requests that needed more than one attempt.
    fallbacks: u64,
    /// Upstream attempts, all requests together.
    attempts: u64,
    estimated_savings_usd: f64,
    /// Served requests whose token counts are estimates (characters / 4): the provider
    /// reported none.
    estimated_token_requests: u64,
    /// Served requests whose tool calls were rescued from text (`tool_rescue` in the log).
    tool_rescues: u64,
}

pub fn summary(records: impl IntoIterator<Item = RequestRecord>, range: Range) -> Summary {
    let mut t = Tally::default();
    let (mut rejected, mut cancelled, mut fallbacks, mut attempts) = (0, 0, 0, 0);
    let (mut ttfb_sum, mut ttfb_n) = (0u64, 0u64);
    let (mut estimated, mut rescues) = (0, 0);
    for r in records {
        t.add(&r);
        rescues += u64::from(r.tool_rescue.is_some());
        estimated += u64::from(r.tokens_estimated && r.outcome == RequestOutcome::Success);
        attempts += r.attempts.len() as u64;
        match r.outcome {
            RequestOutcome::Rejected => rejected += 1,
            RequestOutcome::Cancelled => cancelled += 1,
            RequestOutcome::Success if r.attempts.len() > 1 => fallbacks += 1,
            _ => {}
        }
        if let (RequestOutcome::Success, Some(ms)) = (r.outcome, r.ttfb_ms) {
            ttfb_sum += ms;
            ttfb_n += 1;
        }
    }
    let savings =
        t.input as f64 / 1e6 * PAID_USD_PER_MTOK.0 + t.output as f64 / 1e6 * PAID_USD_PER_MTOK.1;
    Summary {
        range: range.label(),
        total_requests: t.requests,
        succeeded: t.succeeded,
        failed: t.failed,
        rejected,
        cancelled,
        success_rate: rate(t.succeeded, t.failed),
        input_tokens: t.input,
        output_tokens: t.output,
        avg_latency_ms: t.avg_latency(),
        avg_ttfb_ms: (ttfb_n > 0).then(|| ttfb_sum / ttfb_n),
        fallbacks,
        attempts,
        estimated_savings_usd: (savings * 100.0).round() / 100.0,
        estimated_token_requests: estimated,
        tool_rescues: rescues,
    }
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_id: Option<String>,
    requests: u64,
    succeeded: u64,
    failed: u64,
    success_rate: Option<f64>,
    avg_latency_ms: Option<u64>,
    input_tokens: u64,
    output_tokens: u64,
    /// Upstream attempts that went to this group, including ones that failed over elsewhere.
    attempts: u64,
    failed_attempts: u64,
}

/// Requests grouped by the model (or, with `by_model` false, the platform) that served them or
/// failed last; attempts are counted where they went.
pub fn grouped(records: impl IntoIterator<Item = RequestRecord>, by_model: bool) -> Vec<Group> {
    let mut groups: HashMap<(String, String), Tally> = HashMap::new();
    let key = |p: &str, m: &str| {
        (
            p.to_string(),
            if by_model {
                m.to_string()
            } else {
                String::new()
            },
        )
    };
    for r in records {
        if let Some((p, m)) = served(&r) {
            groups.entry(key(p, m)).or_default().add(&r);
        }
        for a in &r.attempts {
            let t = groups.entry(key(&a.platform, &a.model)).or_default();
            t.attempts += 1;
            t.failed_attempts += u64::from(a.outcome != "ok");
        }
    }
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|((platform, model), t)| Group {
            platform,
            model_id: by_model.then_some(model),
            requests: t.requests,
            succeeded: t.succeeded,
            failed: t.failed,
            success_rate: rate(t.succeeded, t.failed),
            avg_latency_ms: t.avg_latency(),
            input_tokens: t.input,
            output_tokens: t.output,
            attempts: t.attempts,
            failed_attempts: t.failed_attempts,
        })
        .collect();
    out.sort_by(|a, b| {
        (b.requests, b.attempts)
            .cmp(&(a.requests, a.attempts))
            .then_with(|| (&a.platform, &a.model_id).cmp(&(&b.platform, &b.model_id)))
    });
    out
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SurfaceGroup {
    surface: &'static str,
    requests: u64,
    succeeded: u64,
    failed: u64,
    rejected: u64,
    success_rate: Option<f64>,
    avg_latency_ms: Option<u64>,
    input_tokens: u64,
    output_tokens: u64,
}

/// Requests by the client API they came through, every surface listed (empty ones too).
pub fn by_surface(records: impl IntoIterator<Item = RequestRecord>) -> Vec<SurfaceGroup> {
    let mut tallies: Vec<(Tally, u64)> = Surface::ALL.iter().map(|_| Default::default()).collect();
    for r in records {
        let i = Surface::ALL
            .iter()
            .position(|s| *s == r.surface)
            .unwrap_or(0);
        tallies[i].0.add(&r);
        tallies[i].1 += u64::from(r.outcome == RequestOutcome::Rejected);
    }
    Surface::ALL
        .iter()
        .zip(tallies)
        .map(|(s, (t, rejected))| SurfaceGroup {
            surface: s.as_str(),
            requests: t.requests,
            succeeded: t.succeeded,
            failed: t.failed,
            rejected,
            success_rate: rate(t.succeeded, t.failed),
            avg_latency_ms: t.avg_latency(),
            input_tokens: t.input,
            output_tokens: t.output,
        })
        .collect()
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClientGroup {
    /// `None`: the unified key.
    id: Option<u64>,
    /// The key's label; "unified key", or "revoked key N" for one since removed.
    client: String,
    requests: u64,
    succeeded: u64,
    failed: u64,
    rejected: u64,
    input_tokens: u64,
    output_tokens: u64,
}

/// Requests by the client key that made them (the unified key first, then by requests).
pub fn by_client(
    records: impl IntoIterator<Item = RequestRecord>,
    labels: &[(u64, String)],
) -> Vec<ClientGroup> {
    let mut tallies: HashMap<Option<u64>, (Tally, u64)> = HashMap::new();
    tallies.entry(None).or_default();
    for (id, _) in labels {
        tallies.entry(Some(*id)).or_default();
    }
    for r in records {
        let t = tallies.entry(r.client_key).or_default();
        t.0.add(&r);
        t.1 += u64::from(r.outcome == RequestOutcome::Rejected);
    }
    let mut out: Vec<ClientGroup> = tallies
        .into_iter()
        .map(|(id, (t, rejected))| ClientGroup {
            id,
            client: match id {
                None => "unified key".to_string(),
                Some(id) => labels
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map_or_else(|| format!("revoked key {id}"), |(_, l)| l.clone()),
            },
            requests: t.requests,
            succeeded: t.succeeded,
            failed: t.failed,
            rejected,
            input_tokens: t.input,
            output_tokens: t.output,
        })
        .collect();
    out.sort_by(|a, b| {
        (a.id.is_some(), std::cmp::Reverse(a.requests), a.id).cmp(&(
            b.id.is_some(),
            std::cmp::Reverse(b.requests),
            b.id,
        ))
    });
    out
}

#[derive(Serialize, Debug, PartialEq, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Bucket start, Unix ms (the dashboard shows it in local time).
    ts: u64,
    at: String,
    requests: u64,
    succeeded: u64,
    failed: u64,
}

/// Requests per bucket over the whole range, empty buckets included.
pub fn timeline(
    records: impl IntoIterator<Item = RequestRecord>,
    range: Range,
    now: u64,
) -> Vec<Point> {
    let width = range.bucket_ms();
    let last = now / width * width;
    let n = range.span_ms() / width;
    let first = last - (n - 1) * width;
    let mut points: Vec<Point> = (0..n)
        .map(|i| {
            let ts = first + i * width;
            Point {
                ts,
                at: rfc3339_ms(ts),
                requests: 0,
                succeeded: 0,
                failed: 0,
            }
        })
        .collect();
    for r in records {
        if r.ts_ms < first {
            continue;
        }
        let Some(p) = points.get_mut(((r.ts_ms - first) / width) as usize) else {
            continue;
        };
        p.requests += 1;
        match r.outcome {
            RequestOutcome::Success => p.succeeded += 1,
            RequestOutcome::Error => p.failed += 1,
            _ => {}
        }
    }
    points
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    platform: String,
    model_id: String,
    outcome: String,
    status: Option<u16>,
    latency_ms: u64,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorView {
    request_id: String,
    at: String,
    ts: u64,
    /// `error` (nothing could serve it) or `rejected` (refused before routing).
    outcome: RequestOutcome,
    status: u16,
    /// A short reason class; never upstream text.
    error: Option<String>,
    requested_model: Option<String>,
    platform: Option<String>,
    model_id: Option<String>,
    latency_ms: u64,
    attempts: Vec<AttemptView>,
}

/// The most recent failed or refused requests, newest first.
pub fn errors(records: impl IntoIterator<Item = RequestRecord>) -> Vec<ErrorView> {
    let mut recent: VecDeque<RequestRecord> = VecDeque::with_capacity(RECENT_ERRORS);
    for r in records {
        if matches!(r.outcome, RequestOutcome::Error | RequestOutcome::Rejected) {
            if recent.len() == RECENT_ERRORS {
                recent.pop_front();
            }
            recent.push_back(r);
        }
    }
    recent
        .into_iter()
        .rev()
        .map(|r| {
            let (platform, model_id) = match served(&r) {
                Some((p, m)) => (Some(p.to_string()), Some(m.to_string())),
                None => (None, None),
            };
            ErrorView {
                at: rfc3339_ms(r.ts_ms),
                ts: r.ts_ms,
                outcome: r.outcome,
                status: r.status,
                platform,
                model_id,
                latency_ms: r.latency_ms,
                attempts: r
                    .attempts
                    .into_iter()
                    .map(|a| AttemptView {
                        platform: a.platform,
                        model_id: a.model,
                        outcome: a.outcome,
                        status: a.status,
                        latency_ms: a.latency_ms,
                    })
                    .collect(),
                request_id: r.request_id,
                error: r.error,
                requested_model: r.requested_model,
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Report {
    Summary,
    ByModel,
    ByPlatform,
    BySurface,
    ByClient,
    Timeline,
    Errors,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    simd_json::serde::to_vec(value).unwrap_or_else(|_| b"null".to_vec())
}

/// `GET /api/analytics/{summary,by-model,by-platform,by-surface,by-client,timeline,errors}?range=24h|7d|30d`.
pub fn route(
    app: &App,
    which: &str,
    req: &Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let report = match which {
        "summary" => Report::Summary,
        "by-model" => Report::ByModel,
        "by-platform" => Report::ByPlatform,
        "by-surface" => Report::BySurface,
        "by-client" => Report::ByClient,
        "timeline" => Report::Timeline,
        "errors" => Report::Errors,
        _ => {
            return Err(AdminError::NotFound(format!(
                "no report {which:?}; use summary, by-model, by-platform, by-surface, by-client, timeline or errors"
            )));
        }
    };
    let range = Range::parse(req.query_param("range"))?;
    let store = app.store.clone();
    let now = now_ms();
    let since = now.saturating_sub(range.span_ms());
    let body = off_worker(move || {
        let labels: Vec<(u64, String)> = match report {
            Report::ByClient => store
                .client_keys()?
                .into_iter()
                .map(|k| (k.id, k.label))
                .collect(),
            _ => Vec::new(),
        };
        store.scan_requests_since(since, |records| match report {
            Report::Summary => encode(&summary(records, range)),
            Report::ByModel => encode(&grouped(records, true)),
            Report::ByPlatform => encode(&grouped(records, false)),
            Report::BySurface => encode(&by_surface(records)),
            Report::ByClient => encode(&by_client(records, &labels)),
            Report::Timeline => encode(&timeline(records, range, now)),
            Report::Errors => encode(&errors(records)),
        })
    })?
    .map_err(storage)?;
    let _ = res
        .head(200)
        .header("Cache-Control", "no-store")
        .body("application/json", &body);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AttemptRecord;

    const NOW: u64 = 1_795_517_999_123; // 2026-11-24T10:59:59.123Z

    fn attempt(platform: &str, outcome: &str) -> AttemptRecord {
        AttemptRecord {
            platform: platform.into(),
            model: format!("{platform}-m"),
            key_id: 1,
            outcome: outcome.into(),
            status: Some(if outcome == "ok" { 200 } else { 429 }),
            latency_ms: 5,
        }
    }

    fn rec(ts_ms: u64, outcome: RequestOutcome, attempts: Vec<AttemptRecord>) -> RequestRecord {
        let served = attempts.iter().find(|a| a.outcome == "ok");
        RequestRecord {
            surface: Default::default(),
            ts_ms,
            request_id: format!("r{ts_ms}"),
            requested_model: None,
            platform: served.map(|a| a.platform.clone()),
            model: served.map(|a| a.model.clone()),
            key_id: served.map(|a| a.key_id),
            outcome,
            status: match outcome {
                RequestOutcome::Success => 200,
                RequestOutcome::Error => 429,
                _ => 400,
            },
            stream: false,
            input_tokens: 10,
            output_tokens: 20,
            tokens_estimated: false,
            latency_ms: 100,
            ttfb_ms: Some(40),
            error: (outcome != RequestOutcome::Success).then(|| "exhausted".into()),
            attempts,
            client_key: None,
            tool_rescue: None,
        }
    }

    fn sample() -> Vec<RequestRecord> {
        vec![
            rec(
                NOW - 3 * HOUR_MS,
                RequestOutcome::Success,
                vec![attempt("groq", "rate_limited"), attempt("cerebras", "ok")],
            ),
            rec(
                NOW - 2 * HOUR_MS,
                RequestOutcome::Success,
                vec![attempt("cerebras", "ok")],
            ),
            rec(
                NOW - HOUR_MS,
                RequestOutcome::Error,
                vec![
                    attempt("groq", "rate_limited"),
                    attempt("cerebras", "rate_limited"),
                ],
            ),
            rec(NOW - 10, RequestOutcome::Rejected, vec![]),
            rec(
                NOW - 5,
                RequestOutcome::Cancelled,
                vec![attempt("groq", "cancelled")],
            ),
        ]
    }

    #[test]
    fn summary_counts_requests_and_reports_attempts_beside_them() {
        let s = summary(sample(), Range::Day);
        assert_eq!(s.total_requests, 5);
        assert_eq!(
            (s.succeeded, s.failed, s.rejected, s.cancelled),
            (2, 1, 1, 1)
        );
        assert_eq!(s.success_rate, Some(66.7));
        assert_eq!(s.fallbacks, 1);
        assert_eq!(s.attempts, 6);
        assert_eq!(s.avg_latency_ms, Some(100));
        assert_eq!(s.avg_ttfb_ms, Some(40));
        assert_eq!((s.input_tokens, s.output_tokens), (50, 100));
        assert_eq!(s.estimated_token_requests, 0);
        let mut guessed = sample();
        for r in &mut guessed {
            r.tokens_estimated = true;
        }
        assert_eq!(
            summary(guessed, Range::Day).estimated_token_requests,
            2,
            "served requests with estimated tokens are counted, failed ones are not"
        );
        let empty = summary(Vec::new(), Range::Week);
        assert_eq!(
            (
                empty.total_requests,
                empty.success_rate,
                empty.avg_latency_ms
            ),
            (0, None, None)
        );
    }

    #[test]
    fn groups_credit_requests_to_who_served_and_attempts_to_who_was_tried() {
        let by_platform = grouped(sample(), false);
        let cerebras = by_platform
            .iter()
            .find(|g| g.platform == "cerebras")
            .unwrap();
        // Two served, one failed last there; three attempts, one of them failed.
        assert_eq!(
            (cerebras.requests, cerebras.succeeded, cerebras.failed),
            (3, 2, 1)
        );
        assert_eq!((cerebras.attempts, cerebras.failed_attempts), (3, 1));
        let groq = by_platform.iter().find(|g| g.platform == "groq").unwrap();
        assert_eq!(
            (groq.requests, groq.attempts, groq.failed_attempts),
            (1, 3, 3),
            "the cancelled one"
        );
        assert_eq!(by_platform[0].platform, "cerebras", "most requests first");
        let by_model = grouped(sample(), true);
        assert!(by_model.iter().all(|g| g.model_id.is_some()));
    }

    #[test]
    fn timeline_has_every_bucket_and_drops_nothing_in_range() {
        let points = timeline(sample(), Range::Day, NOW);
        assert_eq!(points.len(), 24);
        assert_eq!(points.last().unwrap().at, "2026-11-24T10:00:00.000Z");
        assert_eq!(points.iter().map(|p| p.requests).sum::<u64>(), 5);
        assert_eq!(points.iter().map(|p| p.failed).sum::<u64>(), 1);
        assert!(points.windows(2).all(|w| w[1].ts - w[0].ts == HOUR_MS));
        let old = vec![rec(NOW - 30 * HOUR_MS, RequestOutcome::Success, vec![])];
        assert_eq!(
            timeline(old, Range::Day, NOW)
                .iter()
                .map(|p| p.requests)
                .sum::<u64>(),
            0
        );
        assert_eq!(timeline(Vec::new(), Range::Week, NOW).len(), 28);
        assert_eq!(timeline(Vec::new(), Range::Month, NOW).len(), 30);
    }

    #[test]
    fn errors_are_newest_first_and_bounded() {
        let e = errors(sample());
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].outcome, RequestOutcome::Rejected);
        assert_eq!(e[1].attempts.len(), 2);
        let many: Vec<RequestRecord> = (0..120)
            .map(|i| rec(NOW - 1000 + i, RequestOutcome::Error, vec![]))
            .collect();
        let e = errors(many);
        assert_eq!(e.len(), RECENT_ERRORS);
        assert_eq!(e[0].ts, NOW - 1000 + 119);
    }

    #[test]
    fn ranges_parse_strictly() {
        assert_eq!(Range::parse(None).unwrap(), Range::Week);
        assert_eq!(Range::parse(Some("24h")).unwrap(), Range::Day);
        assert_eq!(Range::parse(Some("30d")).unwrap(), Range::Month);
        assert!(Range::parse(Some("24H")).is_err());
    }

    #[test]
    fn by_client_names_keys_by_label_and_keeps_the_unified_key_apart() {
        let mut named = rec(1, RequestOutcome::Success, vec![attempt("groq", "ok")]);
        named.client_key = Some(2);
        let mut gone = rec(2, RequestOutcome::Success, vec![attempt("groq", "ok")]);
        gone.client_key = Some(9);
        let unified = rec(3, RequestOutcome::Rejected, vec![]);
        let labels = vec![(2, "laptop".to_string()), (5, "unused".to_string())];
        let out = by_client(vec![named, gone, unified], &labels);
        let names: Vec<(&str, u64)> = out
            .iter()
            .map(|g| (g.client.as_str(), g.requests))
            .collect();
        assert_eq!(
            names,
            vec![
                ("unified key", 1),
                ("laptop", 1),
                ("revoked key 9", 1),
                ("unused", 0)
            ]
        );
        assert_eq!(out[0].rejected, 1);
    }
}
