//! One request's failover, shared by generation and embeddings: offer the request to the
//! plan's candidates in order until one serves it, the candidates run out, 20 attempts are
//! spent or the request budget is; report every outcome to the router and record every
//! attempt.
//!
//! Owns the loop's bookkeeping for one request (the router's progress, the trail the client
//! sees, the tally and the first upstream 400) and the message that says why nothing could
//! serve. Makes no upstream call itself: the caller's `attempt` does, and answers the client
//! when it succeeds.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::ClientError;
use super::trail::Trail;
use crate::app::App;
use crate::http::Responder;
use crate::outcome::Verdict;
use crate::router::{Candidate, Exhaustion, Plan, Progress, Snapshot, Task};
use crate::store::{Asked, RequestRecord, Spent};
use crate::time::now_ms;
use crate::upstream::watch;

pub const MAX_ATTEMPTS: u32 = 20;
/// An attempt started with less time than this left could not finish: the request is out of
/// time (and its remaining candidates are untried, not failed).
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(100);
/// How many untried candidates a request that ran out of time names.
const MAX_NAMED_UNTRIED: usize = 5;
/// Upstream 400s from this many platforms end the request with the first one's message.
const BAD_REQUESTS_TO_GIVE_UP: u32 = 3;

/// What one attempt came to.
pub(super) enum Step {
    Served {
        spent: Spent,
        /// The stream broke after the client had its first byte.
        interrupted: bool,
    },
    Failed {
        verdict: Verdict,
        status: Option<u16>,
        /// The provider's words, keys removed: a 400's for the client, a gone model's for
        /// its retirement.
        message: Option<String>,
    },
    Cancelled,
}

impl Step {
    /// A failure with nothing for the client to read (`Verdict::Cancelled` is the client
    /// gone, not a failure).
    pub(super) fn failed(verdict: Verdict, status: Option<u16>) -> Step {
        match verdict {
            Verdict::Cancelled => Step::Cancelled,
            verdict => Step::Failed {
                verdict,
                status,
                message: None,
            },
        }
    }
}

/// One request's failover: what it may try, until when, and what it has learned so far.
pub(super) struct Failover<'r> {
    app: &'r App,
    snap: &'r Snapshot,
    plan: &'r Plan,
    /// The conversation, whose next turn should go where this one was served.
    session: Option<u64>,
    deadline: Instant,
    progress: Progress,
    trail: Trail,
    tally: Tally,
    /// The first upstream 400: platform name and its (redacted) message.
    rejected: Option<(String, String)>,
    bad_requests: u32,
    attempts: u32,
}

/// The loop goes on, or has its answer.
enum Next {
    Continue,
    GiveUp,
}

impl<'r> Failover<'r> {
    /// A failover for a request that began at `started` (its budget counts from there).
    pub(super) fn new(
        app: &'r App,
        snap: &'r Snapshot,
        plan: &'r Plan,
        session: Option<u64>,
        started: Instant,
    ) -> Failover<'r> {
        Failover {
            app,
            snap,
            plan,
            session,
            deadline: started + app.request_budget(),
            progress: Progress::default(),
            trail: Trail::default(),
            tally: Tally::default(),
            rejected: None,
            bad_requests: 0,
            attempts: 0,
        }
    }

    /// Runs the loop; `attempt` makes one upstream call and answers the client when it
    /// succeeds. The client's socket is watched meanwhile: every upstream wait ends when the
    /// client leaves or the deadline passes.
    pub(super) fn run(
        mut self,
        client_fd: RawFd,
        rec: &mut RequestRecord,
        res: &mut Responder<'_>,
        mut attempt: impl FnMut(Candidate, &Trail, &mut Responder<'_>) -> Step,
    ) -> Result<(), ClientError> {
        let _watch = watch::client(client_fd, self.deadline);
        let exhaustion = loop {
            if self.attempts >= MAX_ATTEMPTS || out_of_time(self.deadline) {
                break None;
            }
            let cand = match self
                .app
                .router
                .select(self.snap, self.plan, &self.progress, now_ms())
            {
                Ok(c) => c,
                Err(why) => break Some(why),
            };
            let started = Instant::now();
            let step = attempt(cand, &self.trail, res);
            self.attempts += 1;
            let took = started.elapsed().as_millis() as u64;
            match step {
                Step::Served { spent, interrupted } => {
                    self.served(cand, spent, interrupted, took, rec);
                    return Ok(());
                }
                Step::Cancelled => {
                    rec.attempt(self.asked(cand), "cancelled", None, took);
                    log::info!(
                        "request {}: client went away; upstream call to {} abandoned",
                        rec.request_id,
                        self.name(cand)
                    );
                    rec.cancelled();
                    res.abandon();
                    return Ok(());
                }
                Step::Failed {
                    verdict,
                    status,
                    message,
                } => {
                    let next = self.failed(cand, verdict, status, message, took, rec);
                    if let Next::GiveUp = next {
                        break None;
                    }
                }
            }
        };
        Err(self.answer_for_none(exhaustion))
    }

    fn asked(&self, cand: Candidate) -> Asked<'r> {
        let model = self.snap.model(cand.entry);
        Asked {
            platform: &self.snap.catalog.platforms[model.platform].id,
            model: &model.model_id,
            key_id: self.snap.entries[cand.entry].slots[cand.slot].key.id,
        }
    }

    /// `platform/model`, for the log.
    fn name(&self, cand: Candidate) -> String {
        let a = self.asked(cand);
        format!("{}/{}", a.platform, a.model)
    }

    fn served(
        &mut self,
        cand: Candidate,
        spent: Spent,
        interrupted: bool,
        took_ms: u64,
        rec: &mut RequestRecord,
    ) {
        let (app, snap, now) = (self.app, self.snap, now_ms());
        let outcome = if interrupted { "interrupted" } else { "ok" };
        rec.attempt(self.asked(cand), outcome, Some(200), took_ms);
        let verdict = if interrupted {
            Verdict::Unavailable
        } else {
            Verdict::Success
        };
        let _ = app
            .router
            .report(snap, cand, verdict, &mut self.progress, now);
        app.router
            .record_tokens(snap, cand, spent.input_tokens + spent.output_tokens, now);
        if let (Some(session), false) = (self.session, interrupted) {
            app.router
                .sticky
                .put(session, snap.entries[cand.entry].model, now);
        }
        rec.served(self.asked(cand), spent, interrupted);
        log::debug!(
            "request {}: served by {} after {} failed attempts",
            rec.request_id,
            self.name(cand),
            self.attempts - 1
        );
    }

    fn failed(
        &mut self,
        cand: Candidate,
        verdict: Verdict,
        status: Option<u16>,
        message: Option<String>,
        took_ms: u64,
        rec: &mut RequestRecord,
    ) -> Next {
        let (app, snap) = (self.app, self.snap);
        let model = snap.model(cand.entry);
        let platform = &snap.catalog.platforms[model.platform];
        let asked = self.asked(cand);
        let class = verdict.class();
        rec.attempt(asked, class, status, took_ms);
        self.trail.push(&platform.id, &model.model_id, class);
        log::info!(
            "request {}: {}/{} key {} failed ({class}{}), trying the next candidate",
            rec.request_id,
            platform.id,
            model.model_id,
            asked.key_id,
            status.map(|s| format!(", HTTP {s}")).unwrap_or_default()
        );
        if let Some((key, until)) =
            app.router
                .report(snap, cand, verdict, &mut self.progress, now_ms())
        {
            app.note_rate_limited(key, until);
        }
        self.tally.add(verdict);
        match verdict {
            Verdict::ModelGone => app.retire_gone(
                platform,
                model,
                status.unwrap_or(0),
                message.as_deref().unwrap_or(""),
            ),
            Verdict::DataPolicy => log::warn!(
                "{}/{}: the key's data policy excludes every endpoint of this model; allow it in the provider's privacy settings (OpenRouter: https://openrouter.ai/settings/privacy)",
                platform.id,
                model.model_id
            ),
            Verdict::BadRequest => {
                self.bad_requests += 1;
                if let Some(m) = message {
                    self.rejected.get_or_insert((platform.name.clone(), m));
                }
                if self.bad_requests >= BAD_REQUESTS_TO_GIVE_UP {
                    return Next::GiveUp;
                }
            }
            _ => {}
        }
        Next::Continue
    }

    /// Nothing served: the first upstream 400's message, or why every candidate failed or
    /// could not be tried.
    fn answer_for_none(self, exhaustion: Option<Exhaustion>) -> ClientError {
        if let Some((platform, message)) = self.rejected {
            return ClientError::UpstreamRejected { platform, message };
        }
        let (snap, plan) = (self.snap, self.plan);
        let out_of_time = out_of_time(self.deadline);
        // Out of time with candidates left: say which, so the client knows a retry can succeed.
        let untried: Vec<String> = if self.attempts < MAX_ATTEMPTS && out_of_time {
            self.app
                .router
                .remaining(snap, plan, &self.progress, now_ms(), MAX_NAMED_UNTRIED)
                .into_iter()
                .map(|c| {
                    let m = snap.model(c.entry);
                    format!("{}/{}", snap.catalog.platforms[m.platform].id, m.model_id)
                })
                .collect()
        } else {
            Vec::new()
        };
        exhausted(Why {
            snap,
            plan,
            exhaustion: exhaustion.unwrap_or_default(),
            tally: &self.tally,
            attempts: self.attempts,
            budget_spent: out_of_time.then_some(self.app.request_budget()),
            untried: &untried,
        })
    }
}

fn out_of_time(deadline: Instant) -> bool {
    deadline.saturating_duration_since(Instant::now()) < MIN_ATTEMPT_TIME
}

/// Counts of failed attempts by class, for the exhaustion message.
#[derive(Default)]
struct Tally {
    rate_limited: u32,
    unavailable: u32,
    auth: u32,
    other: u32,
}

impl Tally {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::RateLimited { .. } => self.rate_limited += 1,
            Verdict::Unavailable => self.unavailable += 1,
            Verdict::Auth => self.auth += 1,
            _ => self.other += 1,
        }
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.rate_limited, "rate-limited"),
            (self.unavailable, "unavailable"),
            (self.auth, "rejected the key"),
            (self.other, "other"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        parts.join(", ")
    }
}

/// Everything the exhaustion message draws on.
struct Why<'a> {
    snap: &'a Snapshot,
    plan: &'a Plan,
    exhaustion: Exhaustion,
    tally: &'a Tally,
    attempts: u32,
    budget_spent: Option<Duration>,
    untried: &'a [String],
}

/// The honest 429 (or 400) when nothing could serve the request.
fn exhausted(w: Why<'_>) -> ClientError {
    let Why {
        snap,
        plan,
        exhaustion: why,
        tally,
        attempts,
        budget_spent,
        untried,
    } = w;
    if attempts == 0 && why.no_keys {
        let message = match plan.task {
            _ if plan.strict => "the pinned model has no usable provider key; add one with `freellmapi keys add <platform>`".to_string(),
            Task::Fim => "fill-in-the-middle (a prompt with a suffix) needs a model the catalog marks fim, such as Mistral's Codestral, and none has a usable provider key; add one with `freellmapi keys add mistral`".to_string(),
            Task::Embedding { like } => {
                let m = &snap.catalog.models[like];
                format!(
                    "no enabled model of the embedding family {:?} has a usable provider key (vectors of other models are not interchangeable); add a {} key with `freellmapi keys add {}`",
                    m.family.as_deref().unwrap_or(&m.model_id),
                    snap.catalog.platforms[m.platform].name,
                    snap.catalog.platforms[m.platform].id
                )
            }
            Task::Transcription { like } => {
                let m = &snap.catalog.models[like];
                format!(
                    "no enabled speech-to-text model of the {:?} family has a usable provider key; add a Groq or Cloudflare key with `freellmapi keys add groq` (or `cloudflare`)",
                    m.family.as_deref().unwrap_or(&m.model_id)
                )
            }
            Task::Chat => "no provider key is configured for any enabled model; add one with `freellmapi keys add <platform>`".to_string(),
        };
        return ClientError::Exhausted {
            message,
            retry_after_s: 60,
        };
    }
    if attempts == 0 && why.too_small > 0 && why.cooling == 0 && why.limited == 0 {
        return ClientError::ContextTooLarge {
            tokens: plan.demand.total(),
        };
    }
    let mut parts = Vec::new();
    if let Some(e) = plan.first.filter(|_| plan.strict) {
        let m = snap.model(e);
        parts.push(format!(
            "model '{}' is pinned (X-Freellmapi-Pin: strict) and cannot serve now",
            m.model_id
        ));
    }
    if attempts > 0 {
        parts.push(format!("{attempts} attempts failed ({})", tally.describe()));
    }
    if attempts >= MAX_ATTEMPTS {
        parts.push(format!("gave up after {MAX_ATTEMPTS} attempts"));
    } else if let Some(budget) = budget_spent {
        parts.push(format!(
            "gave up after the {} s request budget",
            budget.as_secs()
        ));
        if !untried.is_empty() {
            parts.push(format!(
                "not tried in time: {} (healthy; retry now)",
                untried.join(", ")
            ));
        }
    }
    let waiting = why.cooling + why.limited;
    if waiting > 0 {
        parts.push(format!(
            "{} candidates cooling down, {} at their rate limits",
            why.cooling, why.limited
        ));
    }
    if why.too_small > 0 {
        parts.push(format!(
            "{} too small for about {} tokens",
            why.too_small,
            plan.demand.total()
        ));
    }
    let retry_after_s = if untried.is_empty() {
        why.soonest_ms
            .map(|ms| ms.div_ceil(1000).clamp(1, 86_400))
            .unwrap_or(if attempts > 0 { 30 } else { 60 })
    } else {
        1
    };
    if let Some(ms) = why.soonest_ms {
        parts.push(format!("the soonest is free in {} s", ms.div_ceil(1000)));
    }
    if parts.is_empty() {
        parts.push("every candidate was tried".into());
    }
    ClientError::Exhausted {
        message: format!("no model can serve this request now: {}", parts.join("; ")),
        retry_after_s,
    }
}
