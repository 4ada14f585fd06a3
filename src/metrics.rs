//! The counters behind `/metrics`: requests by client API, platform, model and outcome; attempts
//! by verdict class; tokens in and out; upstream latency and time-to-first-byte histograms; and
//! the in-flight requests and streams. Everything the request path touches is an atomic: a
//! request's record is counted once, as it is logged ([`Metrics::observe`]), through a
//! per-model tally found under a read lock held for one map lookup. Tallies are created the first time
//! a model serves (a short lock, then never again) and bounded in number.
//!
//! Owns the counters and their text form ([`Exposition`], the Prometheus 0.0.4 format). Gauges
//! that belong to other parts (keys, cooldowns, the log queue, memory) are read by the route
//! at scrape time; this module must not reach into them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::store::{RequestOutcome, RequestRecord};
use crate::surface::Surface;

const SURFACES: [Surface; 6] = [
    Surface::Chat,
    Surface::Messages,
    Surface::Responses,
    Surface::Completions,
    Surface::Embeddings,
    Surface::Transcriptions,
];
const OUTCOMES: [RequestOutcome; 4] = [
    RequestOutcome::Success,
    RequestOutcome::Error,
    RequestOutcome::Rejected,
    RequestOutcome::Cancelled,
];
/// Attempt classes as the request log names them; anything else counts as `other`.
const ATTEMPT_CLASSES: [&str; 12] = [
    "ok",
    "interrupted",
    "cancelled",
    "rate_limited",
    "unavailable",
    "auth",
    "model_gone",
    "data_policy",
    "context_too_long",
    "bad_request",
    "empty",
    "other",
];
/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Distinct (platform, model) tallies kept; past it, requests count under `other`.
const MAX_TALLIES: usize = 1024;
const NONE: &str = "none";
const OTHER: &str = "other";

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative; the exposition sums them), then +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ms: AtomicU64,
}

impl Histogram {
    fn observe(&self, ms: u64) {
        let secs = ms as f64 / 1000.0;
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// One (platform, model)'s counters.
#[derive(Default)]
struct Tally {
    requests: [[AtomicU64; OUTCOMES.len()]; SURFACES.len()],
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    latency: Histogram,
    ttfb: Histogram,
}

type Tallies = HashMap<Box<str>, HashMap<Box<str>, Arc<Tally>>>;

#[derive(Default)]
pub struct Metrics {
    /// A lock, not an `ArcSwap` (see `App::client_keys` for why): held for an `Arc` clone.
    tallies: RwLock<Arc<Tallies>>,
    /// Serialises the rare insertion of a new tally (copy, insert, swap).
    adding: Mutex<()>,
    attempts: [AtomicU64; ATTEMPT_CLASSES.len()],
    requests_in_flight: AtomicI64,
    streams_in_flight: AtomicI64,
}

/// Counts one in-flight request or stream until dropped.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn index_of<T: PartialEq>(all: &[T], x: &T) -> usize {
    all.iter().position(|a| a == x).unwrap_or(0)
}

impl Metrics {
    pub fn request_started(&self) -> InFlight<'_> {
        self.requests_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.requests_in_flight)
    }

    pub fn stream_started(&self) -> InFlight<'_> {
        self.streams_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.streams_in_flight)
    }

    /// Counts a finished request from its record.
    pub fn observe(&self, rec: &RequestRecord) {
        let platform = rec.platform.as_deref().unwrap_or(NONE);
        let model = rec.model.as_deref().unwrap_or(NONE);
        let tally = self.tally(platform, model);
        let s = index_of(&SURFACES, &rec.surface);
        let o = index_of(&OUTCOMES, &rec.outcome);
        tally.requests[s][o].fetch_add(1, Ordering::Relaxed);
        tally
            .input_tokens
            .fetch_add(rec.input_tokens, Ordering::Relaxed);
        tally
            .output_tokens
            .fetch_add(rec.output_tokens, Ordering::Relaxed);
        if rec.outcome == RequestOutcome::Success
            && let Some(served) = rec.attempts.last()
        {
            tally.latency.observe(served.latency_ms);
        }
        if let Some(ttfb) = rec.ttfb_ms {
            tally.ttfb.observe(ttfb);
        }
        for a in &rec.attempts {
            let class = ATTEMPT_CLASSES
                .iter()
                .position(|c| *c == a.outcome)
                .unwrap_or(ATTEMPT_CLASSES.len() - 1);
            self.attempts[class].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn tally(&self, platform: &str, model: &str) -> Arc<Tally> {
        let find = |t: &Tallies| t.get(platform).and_then(|m| m.get(model)).cloned();
        if let Some(t) = find(&self.tallies.read()) {
            return t;
        }
        let _adding = self.adding.lock();
        let current = self.tallies.read().clone();
        if let Some(t) = find(&current) {
            return t;
        }
        let count: usize = current.values().map(|m| m.len()).sum();
        let (platform, model) = if count >= MAX_TALLIES {
            (OTHER, OTHER)
        } else {
            (platform, model)
        };
        if let Some(t) = current.get(platform).and_then(|m| m.get(model)) {
            return t.clone();
        }
        let mut next: Tallies = (*current).clone();
        let tally = Arc::new(Tally::default());
        next.entry(platform.into())
            .or_default()
            .insert(model.into(), tally.clone());
        *self.tallies.write() = Arc::new(next);
        tally
    }

    /// Writes every counter and histogram (the route adds its gauges).
    pub fn write(&self, out: &mut Exposition) {
        let tallies = self.tallies.read().clone();
        let mut rows: Vec<(&str, &str, &Tally)> = tallies
            .iter()
            .flat_map(|(p, models)| models.iter().map(move |(m, t)| (&**p, &**m, &**t)))
            .collect();
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

        out.family(
            "freellmapi_requests_total",
            "counter",
            "Requests by client API, serving platform and model (none before routing), and outcome.",
        );
        for (p, m, t) in &rows {
            for (s, surface) in SURFACES.iter().enumerate() {
                for (o, outcome) in OUTCOMES.iter().enumerate() {
                    let n = t.requests[s][o].load(Ordering::Relaxed);
                    if n > 0 {
                        out.sample(
                            "freellmapi_requests_total",
                            &[
                                ("surface", surface.as_str()),
                                ("platform", p),
                                ("model", m),
                                ("outcome", outcome.as_str()),
                            ],
                            n as f64,
                        );
                    }
                }
            }
        }
        out.family(
            "freellmapi_attempts_total",
            "counter",
            "Upstream attempts by result class (a request may make several).",
        );
        for (class, n) in ATTEMPT_CLASSES.iter().zip(&self.attempts) {
            out.sample(
                "freellmapi_attempts_total",
                &[("class", class)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
        for (name, help, field) in [
            (
                "freellmapi_input_tokens_total",
                "Prompt tokens by serving platform and model (estimated where the provider gave none).",
                (|t: &Tally| &t.input_tokens) as fn(&Tally) -> &AtomicU64,
            ),
            (
                "freellmapi_output_tokens_total",
                "Completion tokens by serving platform and model (estimated where the provider gave none).",
                |t: &Tally| &t.output_tokens,
            ),
        ] {
            out.family(name, "counter", help);
            for (p, m, t) in rows.iter().filter(|r| r.0 != NONE) {
                out.sample(
                    name,
                    &[("platform", p), ("model", m)],
                    field(t).load(Ordering::Relaxed) as f64,
                );
            }
        }
        for (name, help, field) in [
            (
                "freellmapi_upstream_latency_seconds",
                "Time of the serving upstream attempt, request sent to answer complete.",
                (|t: &Tally| &t.latency) as fn(&Tally) -> &Histogram,
            ),
            (
                "freellmapi_time_to_first_byte_seconds",
                "Time from the request to the first byte of the answer the client got.",
                |t: &Tally| &t.ttfb,
            ),
        ] {
            out.family(name, "histogram", help);
            for (p, m, t) in rows.iter().filter(|r| r.0 != NONE) {
                let h = field(t);
                if h.count() == 0 {
                    continue;
                }
                out.histogram(name, &[("platform", p), ("model", m)], h);
            }
        }
        out.family(
            "freellmapi_requests_in_flight",
            "gauge",
            "Client API requests being served now.",
        );
        out.sample(
            "freellmapi_requests_in_flight",
            &[],
            self.requests_in_flight.load(Ordering::Relaxed) as f64,
        );
        out.family(
            "freellmapi_streams_in_flight",
            "gauge",
            "Streams being relayed now.",
        );
        out.sample(
            "freellmapi_streams_in_flight",
            &[],
            self.streams_in_flight.load(Ordering::Relaxed) as f64,
        );
    }
}

/// The Prometheus text format (version 0.0.4), written line by line.
#[derive(Default)]
pub struct Exposition {
    pub text: String,
}

impl Exposition {
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";

    /// `# HELP` and `# TYPE` lines; every family is announced once, before its samples.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", help.replace('\\', "\\\\"));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(k);
                self.text.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        self.sample(
            &format!("{name}_sum"),
            labels,
            h.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        );
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AttemptRecord;

    fn record(outcome: RequestOutcome, served_ms: u64) -> RequestRecord {
        let mut r = RequestRecord::new(1, "r".into(), Surface::Messages);
        r.outcome = outcome;
        r.platform = Some("groq".into());
        r.model = Some("llama \"3\"".into());
        r.input_tokens = 10;
        r.output_tokens = 5;
        r.ttfb_ms = Some(120);
        r.attempts.push(AttemptRecord {
            platform: "groq".into(),
            model: "llama".into(),
            key_id: 1,
            outcome: "ok".into(),
            status: Some(200),
            latency_ms: served_ms,
        });
        r
    }

    #[test]
    fn records_count_into_labelled_series_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe(&record(RequestOutcome::Success, 300));
        m.observe(&record(RequestOutcome::Success, 70_000));
        let mut out = Exposition::default();
        m.write(&mut out);
        let t = out.text;
        assert!(t.contains(
            "freellmapi_requests_total{surface=\"messages\",platform=\"groq\",model=\"llama \\\"3\\\"\",outcome=\"success\"} 2\n"
        ), "{t}");
        assert!(t.contains(
            "freellmapi_input_tokens_total{platform=\"groq\",model=\"llama \\\"3\\\"\"} 20\n"
        ));
        assert!(t.contains("freellmapi_attempts_total{class=\"ok\"} 2\n"));
        assert!(t.contains("_bucket{platform=\"groq\",model=\"llama \\\"3\\\"\",le=\"0.5\"} 1\n"));
        assert!(t.contains("_bucket{platform=\"groq\",model=\"llama \\\"3\\\"\",le=\"60\"} 1\n"));
        assert!(t.contains("_bucket{platform=\"groq\",model=\"llama \\\"3\\\"\",le=\"300\"} 2\n"));
        assert!(t.contains("_bucket{platform=\"groq\",model=\"llama \\\"3\\\"\",le=\"+Inf\"} 2\n"));
        assert!(t.contains("freellmapi_upstream_latency_seconds_sum{platform=\"groq\",model=\"llama \\\"3\\\"\"} 70.3\n"));
    }

    #[test]
    fn tallies_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_TALLIES + 50 {
            let mut r = record(RequestOutcome::Error, 1);
            r.model = Some(format!("m{i}"));
            m.observe(&r);
        }
        let count: usize = m.tallies.read().values().map(|x| x.len()).sum();
        assert_eq!(count, MAX_TALLIES + 1);
        let other = m
            .tallies
            .read()
            .get(OTHER)
            .and_then(|x| x.get(OTHER))
            .cloned()
            .unwrap();
        assert_eq!(other.requests[1][1].load(Ordering::Relaxed), 50);
    }

    #[test]
    fn in_flight_gauges_fall_back_when_dropped() {
        let m = Metrics::default();
        let a = m.request_started();
        let s = m.stream_started();
        assert_eq!(m.requests_in_flight.load(Ordering::Relaxed), 1);
        drop((a, s));
        assert_eq!(m.requests_in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(m.streams_in_flight.load(Ordering::Relaxed), 0);
    }
}
