//! The chat pipeline behind every generating surface (`/v1/chat/completions`, `/v1/messages`,
//! `/v1/responses`, `/v1/completions`): parse (through the surface's front) → plan → fail over
//! across candidates → answer or relay in the surface's shape → account (the client key was
//! checked on the request's head, in `routes`).
//!
//! Owns the per-request failover loop and its bookkeeping: up to 20 attempts within the
//! request budget, each outcome reported to the router, one request record (with its attempts)
//! sent to the log at the end. Never writes upstream text to the client except the message of
//! an upstream 400, redacted.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::relay::{self, RelayEnd};
use super::trail::Trail;
use super::{ClientError, Missing};
use crate::app::App;
use crate::catalog::{AliasRoute, Caps, Kind, aliases};
use crate::chat::ChatRequest;
use crate::front::{self, Echo, Encoder, Inbound};
use crate::http::{Dialect, Request, Responder, header_safe};
use crate::outcome::Verdict;
use crate::router::{Candidate, Demand, Exhaustion, Order, Plan, Progress, Snapshot, Task};
use crate::store::{AttemptRecord, RequestOutcome, RequestRecord};
use crate::surface::Surface;
use crate::time::now_ms;
use crate::upstream::{self, Outbound, classify, watch};
use crate::wire::{self, Usage, WireError};

pub const MAX_ATTEMPTS: u32 = 20;
/// The largest completion body accepted from a provider (a 128 000-token answer is about
/// 0.5 MiB; images in answers stay well below this). Part of the per-request memory budget.
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// An attempt started with less time than this left could not finish: the request is out of
/// time (and its remaining candidates are untried, not failed).
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(100);
/// How many untried candidates a request that ran out of time names.
const MAX_NAMED_UNTRIED: usize = 5;
/// Upstream 400s from this many platforms end the request with the first one's message.
const BAD_REQUESTS_TO_GIVE_UP: u32 = 3;

/// The error shape of a surface's clients.
pub fn dialect(surface: Surface) -> Dialect {
    match surface {
        Surface::Messages => Dialect::Anthropic,
        _ => Dialect::OpenAi,
    }
}

/// Serves one generation request of `surface`. The client key was checked on the request's
/// head (`routes`).
#[inline(never)]
pub fn generate(app: &App, surface: Surface, req: &mut Request<'_>, res: &mut Responder<'_>) {
    recorded(app, surface, req, res, |req, res, rec, started| {
        serve(app, surface, req, res, rec, started)
    });
}

/// One client request, one record: runs `serve`, answers its failure in the surface's error
/// shape, and sends the record to the log.
pub(super) fn recorded<'a, 'b>(
    app: &App,
    surface: Surface,
    req: &mut Request<'a>,
    res: &mut Responder<'b>,
    serve: impl FnOnce(
        &mut Request<'a>,
        &mut Responder<'b>,
        &mut RequestRecord,
        Instant,
    ) -> Result<(), ClientError>,
) {
    let started = Instant::now();
    let _in_flight = app.metrics.request_started();
    let mut rec = RequestRecord::new(now_ms(), req.id().to_string(), surface);
    rec.client_key = super::caller(app, req);
    if let Err(e) = serve(req, res, &mut rec, started) {
        let problem = e.problem();
        rec.status = problem.status;
        rec.error = Some(problem.code.to_string());
        if e.is_rejection() {
            rec.outcome = RequestOutcome::Rejected;
        }
        problem.write(res, dialect(surface));
    }
    rec.latency_ms = started.elapsed().as_millis() as u64;
    app.metrics.observe(&rec);
    app.log.record(rec);
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

/// What one attempt came to.
pub(super) enum Step {
    Served {
        usage: Usage,
        estimated: bool,
        ttfb_ms: Option<u64>,
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

/// What the answer must say besides the completion, fixed by the client's request.
struct Shape<'a> {
    surface: Surface,
    echo_model: &'a str,
    /// `X-Freellmapi-Dropped-Tools`, when the front dropped any.
    dropped: Option<String>,
}

fn serve(
    app: &App,
    surface: Surface,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
    rec: &mut RequestRecord,
    started: Instant,
) -> Result<(), ClientError> {
    let Inbound {
        chat,
        echo_model,
        dropped_tools,
    } = front::parse(surface, req.body, app.router.session_hasher())
        .map_err(ClientError::Invalid)?;
    let shape = Shape {
        surface,
        echo_model: &echo_model,
        dropped: (!dropped_tools.is_empty()).then(|| header_safe(&dropped_tools.join(","))),
    };
    // The parsed request owns its text; the raw body (a long conversation can be megabytes)
    // need not live as long as a stream does.
    *req.body = Vec::new();
    rec.stream = chat.stream;
    rec.requested_model = chat.model.clone();
    // Tokens are recorded only when an upstream served the request: a refused or exhausted
    // request spent none, and must not count in the totals, the savings or the budget.
    let snap = app.router.snapshot();
    let plan = plan(app, &snap, &chat, req)?;
    failover(
        app,
        &snap,
        &plan,
        chat.session,
        (started, req.client_fd()),
        rec,
        res,
        |cand, trail, res| attempt(app, &snap, &chat, &shape, cand, trail, res),
    )
}

/// Offers the request to candidates in the plan's order until one serves it, the candidates
/// run out, or the request budget (from `started`) is spent; records every attempt in `rec`
/// and reports every outcome to the router. `attempt` makes one upstream call and answers the
/// client when it succeeds; the client's socket is watched meanwhile.
#[allow(clippy::too_many_arguments)]
pub(super) fn failover(
    app: &App,
    snap: &Snapshot,
    plan: &Plan,
    session: Option<u64>,
    (started, client_fd): (Instant, RawFd),
    rec: &mut RequestRecord,
    res: &mut Responder<'_>,
    mut attempt: impl FnMut(Candidate, &Trail, &mut Responder<'_>) -> Step,
) -> Result<(), ClientError> {
    let deadline = started + app.request_budget;
    // Every upstream wait of every attempt ends by the request's deadline.
    let _watch = watch::client(client_fd, deadline);
    let mut progress = Progress::default();
    let mut trail = Trail::default();
    let mut tally = Tally::default();
    let mut rejected: Option<(String, String)> = None;
    let mut bad_requests = 0;
    let mut attempts = 0u32;
    let exhaustion = loop {
        if attempts >= MAX_ATTEMPTS || out_of_time(deadline) {
            break None;
        }
        let cand = match app.router.select(snap, plan, &progress, now_ms()) {
            Ok(c) => c,
            Err(why) => break Some(why),
        };
        let attempt_started = Instant::now();
        let step = attempt(cand, &trail, res);
        attempts += 1;
        let model = snap.model(cand.entry);
        let platform = &snap.catalog.platforms[model.platform];
        let key_id = snap.entries[cand.entry].slots[cand.slot].key.id;
        let mut log_attempt = |outcome: &str, status: Option<u16>| {
            rec.attempts.push(AttemptRecord {
                platform: platform.id.clone(),
                model: model.model_id.clone(),
                key_id,
                outcome: outcome.to_string(),
                status,
                latency_ms: attempt_started.elapsed().as_millis() as u64,
            });
        };
        match step {
            Step::Served {
                usage,
                estimated,
                ttfb_ms,
                interrupted,
            } => {
                let now = now_ms();
                log_attempt(if interrupted { "interrupted" } else { "ok" }, Some(200));
                let verdict = if interrupted {
                    Verdict::Unavailable
                } else {
                    Verdict::Success
                };
                let _ = app.router.report(snap, cand, verdict, &mut progress, now);
                app.router.record_tokens(snap, cand, usage.total, now);
                if let (Some(session), false) = (session, interrupted) {
                    app.router
                        .sticky
                        .put(session, snap.entries[cand.entry].model, now);
                }
                rec.outcome = if interrupted {
                    RequestOutcome::Error
                } else {
                    RequestOutcome::Success
                };
                rec.error = interrupted.then(|| "stream_interrupted".to_string());
                rec.platform = Some(platform.id.clone());
                rec.model = Some(model.model_id.clone());
                rec.key_id = Some(key_id);
                rec.input_tokens = usage.prompt;
                rec.output_tokens = usage.completion;
                rec.tokens_estimated = estimated;
                rec.ttfb_ms = ttfb_ms;
                log::debug!(
                    "request {}: served by {}/{} after {} failed attempts",
                    rec.request_id,
                    platform.id,
                    model.model_id,
                    attempts - 1
                );
                return Ok(());
            }
            Step::Cancelled => {
                log_attempt("cancelled", None);
                log::info!(
                    "request {}: client went away; upstream call to {}/{} abandoned",
                    rec.request_id,
                    platform.id,
                    model.model_id
                );
                rec.outcome = RequestOutcome::Cancelled;
                rec.status = 499;
                res.abandon();
                return Ok(());
            }
            Step::Failed {
                verdict,
                status,
                message,
            } => {
                log_attempt(verdict_class(verdict), status);
                trail.push(&platform.id, &model.model_id, verdict_class(verdict));
                log::info!(
                    "request {}: {}/{} key {} failed ({}{}), trying the next candidate",
                    rec.request_id,
                    platform.id,
                    model.model_id,
                    key_id,
                    verdict_class(verdict),
                    status.map(|s| format!(", HTTP {s}")).unwrap_or_default()
                );
                if let Some((key, until)) =
                    app.router
                        .report(snap, cand, verdict, &mut progress, now_ms())
                {
                    app.note_rate_limited(key, until);
                }
                tally.add(verdict);
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
                    _ => {}
                }
                if verdict == Verdict::BadRequest {
                    bad_requests += 1;
                    if let Some(m) = message {
                        rejected.get_or_insert((platform.name.clone(), m));
                    }
                    if bad_requests >= BAD_REQUESTS_TO_GIVE_UP {
                        break None;
                    }
                }
            }
        }
    };
    if let Some((platform, message)) = rejected {
        return Err(ClientError::UpstreamRejected { platform, message });
    }
    // Out of time with candidates left: say which, so the client knows a retry can succeed.
    let untried: Vec<String> = if attempts < MAX_ATTEMPTS && out_of_time(deadline) {
        app.router
            .remaining(snap, plan, &progress, now_ms(), MAX_NAMED_UNTRIED)
            .into_iter()
            .map(|c| {
                let m = snap.model(c.entry);
                format!("{}/{}", snap.catalog.platforms[m.platform].id, m.model_id)
            })
            .collect()
    } else {
        Vec::new()
    };
    let budget_spent = out_of_time(deadline).then_some(app.request_budget);
    Err(exhausted(
        snap,
        plan,
        exhaustion,
        &tally,
        attempts,
        budget_spent,
        &untried,
    ))
}

fn out_of_time(deadline: Instant) -> bool {
    deadline.saturating_duration_since(Instant::now()) < MIN_ATTEMPT_TIME
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Success => "ok",
        Verdict::RateLimited { .. } => "rate_limited",
        Verdict::Unavailable => "unavailable",
        Verdict::Auth => "auth",
        Verdict::ModelGone => "model_gone",
        Verdict::DataPolicy => "data_policy",
        Verdict::ContextTooLong => "context_too_long",
        Verdict::BadRequest => "bad_request",
        Verdict::Empty => "empty",
        Verdict::Cancelled => "cancelled",
    }
}

/// What the request needs beyond plain text.
fn needs(chat: &ChatRequest) -> Caps {
    [
        (chat.needs_vision, Caps::VISION),
        (chat.needs_tools, Caps::TOOLS),
        (chat.needs_json_schema, Caps::JSON_SCHEMA),
    ]
    .into_iter()
    .filter(|(needed, _)| *needed)
    .fold(Caps::NONE, |acc, (_, c)| acc.with(c))
}

/// An explicit model goes first (and alone under `X-Freellmapi-Pin: strict`); an aliased
/// vendor name (`claude-*`) picks a model or an order; otherwise, and within an order, a
/// conversation's sticky model goes first.
fn plan(
    app: &App,
    snap: &Snapshot,
    chat: &ChatRequest,
    req: &Request<'_>,
) -> Result<Plan, ClientError> {
    let mut plan = Plan {
        first: None,
        strict: false,
        demand: Demand {
            input_tokens: chat.input_tokens,
            output_reserve: chat.output_reserve,
        },
        task: if chat.fim { Task::Fim } else { Task::Chat },
        order: Order::Chain,
        needs: needs(chat),
    };
    // A need that no enabled model with a key meets is the request's problem (400: waiting
    // will not help), not a wait (429).
    if !plan.needs.is_empty() {
        let capable = snap.entries.iter().any(|e| {
            let m = &snap.catalog.models[e.model];
            e.enabled
                && m.serves()
                && !e.slots.is_empty()
                && plan.task.fits(&snap.catalog, e.model)
                && m.caps.contains(plan.needs)
        });
        if !capable {
            return Err(ClientError::NoCapableModel {
                needs: plan.needs.names().join(" + "),
            });
        }
    }
    if let Some(name) = &chat.model {
        let found = snap.find_model(name);
        if found.is_none() && aliases::is_aliased(name) {
            match aliases::route(&snap.catalog.aliases, name) {
                AliasRoute::Chain => {}
                AliasRoute::Intelligence => plan.order = Order::Intelligence,
                AliasRoute::Speed => plan.order = Order::Speed,
                AliasRoute::Model(id) => {
                    plan.first = snap.find_model(id).and_then(|m| snap.entry_for_model(m));
                    return Ok(plan);
                }
            }
        } else {
            let m = found.ok_or_else(|| ClientError::ModelNotFound {
                model: name.clone(),
                why: Missing::Unknown,
            })?;
            if snap.catalog.models[m].kind != Kind::Chat {
                return Err(ClientError::ModelNotFound {
                    model: name.clone(),
                    why: Missing::WrongKind,
                });
            }
            let entry = snap
                .entry_for_model(m)
                .filter(|&e| snap.entries[e].enabled && snap.catalog.models[m].serves());
            let Some(entry) = entry else {
                return Err(ClientError::not_serving(snap, m, name));
            };
            plan.first = Some(entry);
            plan.strict = req
                .header("x-freellmapi-pin")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("strict"));
            return Ok(plan);
        }
    }
    plan.first = chat
        .session
        .filter(|_| chat.continues)
        .and_then(|s| app.router.sticky.get(s, now_ms()))
        .and_then(|m| snap.entry_for_model(m));
    Ok(plan)
}

/// Sends `out` for the candidate and classifies what came back: a 2xx reply (with when it was
/// sent), or the failed step. Counts the request against the candidate's limits and learns
/// from the provider's rate-limit headers.
pub(super) fn call(
    app: &App,
    snap: &Snapshot,
    cand: Candidate,
    out: Outbound,
) -> Result<(upstream::Reply, Instant), Step> {
    let entry = &snap.entries[cand.entry];
    let model = &snap.catalog.models[entry.model];
    let platform = &snap.catalog.platforms[model.platform];
    let key = &entry.slots[cand.slot].key;
    app.router.record_sent(snap, cand, now_ms());
    let sent_at = Instant::now();
    let key_ref = upstream::KeyRef {
        sealed: &key.sealed,
        proxy: key.proxy.as_deref(),
    };
    let mut reply = match app.upstream.send(platform, key_ref, &app.master, &out) {
        Ok(r) => r,
        Err(e) => {
            return Err(match classify::transport(e) {
                Verdict::Cancelled => Step::Cancelled,
                verdict => Step::Failed {
                    verdict,
                    status: None,
                    message: None,
                },
            });
        }
    };
    // The encoded request is not needed while the answer streams.
    drop(out);
    app.router
        .observe_hints(snap, cand, &classify::rate_hints(&reply.headers), now_ms());
    if !(200..300).contains(&reply.status) {
        let status = reply.status;
        let headers = reply.take_headers();
        let body = reply.read_body(MAX_ERROR_BODY).unwrap_or_default();
        let verdict = classify::status(status, &headers, &body, &platform.model_gone_codes);
        let message = matches!(verdict, Verdict::BadRequest | Verdict::ModelGone).then(|| {
            let text = classify::error_message(&body).unwrap_or_else(|| format!("HTTP {status}"));
            let keys = snap
                .keys
                .iter()
                .map(|k| (&snap.catalog.platforms[k.platform], &k.sealed[..]));
            upstream::scrub_keys(&text, keys, &app.master)
        });
        return Err(Step::Failed {
            verdict,
            status: Some(status),
            message,
        });
    }
    Ok((reply, sent_at))
}

/// The step a request that cannot be written for a platform comes to.
pub(super) fn untranslatable(e: WireError) -> Step {
    let why = match e {
        WireError::Unsupported(why) => why,
        _ => "the request cannot be translated for this platform",
    };
    Step::Failed {
        verdict: Verdict::BadRequest,
        status: None,
        message: Some(why.to_string()),
    }
}

fn attempt(
    app: &App,
    snap: &Snapshot,
    chat: &ChatRequest,
    shape: &Shape<'_>,
    cand: Candidate,
    before: &Trail,
    res: &mut Responder<'_>,
) -> Step {
    let model = snap.model(cand.entry);
    let platform = &snap.catalog.platforms[model.platform];
    let out = match wire::outbound(platform, model, chat) {
        Ok(o) => o,
        Err(e) => return untranslatable(e),
    };
    let (reply, sent_at) = match call(app, snap, cand, out) {
        Ok(r) => r,
        Err(step) => return step,
    };
    let routed = header_safe(&format!("{}/{}", platform.id, model.model_id));
    if chat.stream {
        let head = relay::Head {
            routed: &routed,
            before,
            dropped_tools: shape.dropped.as_deref(),
            keepalive: app.sse_keepalive,
            event_idle: app.event_idle,
        };
        let decoder = wire::Decoder::new(platform, model);
        let encoder = Encoder::new(shape.surface, shape.echo_model, chat.input_tokens);
        let _streaming = app.metrics.stream_started();
        return match relay::relay(res, reply, &head, chat, decoder, encoder, sent_at) {
            RelayEnd::Completed {
                usage,
                estimated,
                ttfb_ms,
            } => Step::Served {
                usage,
                estimated,
                ttfb_ms,
                interrupted: false,
            },
            RelayEnd::Interrupted { usage, ttfb_ms } => Step::Served {
                usage,
                estimated: true,
                ttfb_ms,
                interrupted: true,
            },
            RelayEnd::NotCommitted(verdict) => Step::Failed {
                verdict,
                status: Some(200),
                message: None,
            },
            RelayEnd::ClientGone => Step::Cancelled,
        };
    }
    let body = match reply.read_body(MAX_RESPONSE_BYTES) {
        Ok(b) => b,
        Err(e) => {
            return match classify::transport(e) {
                Verdict::Cancelled => Step::Cancelled,
                verdict => Step::Failed {
                    verdict,
                    status: Some(200),
                    message: None,
                },
            };
        }
    };
    let completion = match wire::completion(platform, model, body, chat) {
        Ok(c) if c.empty => {
            return Step::Failed {
                verdict: Verdict::Empty,
                status: Some(200),
                message: None,
            };
        }
        Ok(c) => c,
        Err(_) => {
            return Step::Failed {
                verdict: Verdict::Unavailable,
                status: Some(200),
                message: None,
            };
        }
    };
    let echo = Echo {
        model: shape.echo_model,
        usage: completion.usage,
    };
    let Ok(body) = front::render(shape.surface, completion.body, &echo) else {
        return Step::Failed {
            verdict: Verdict::Unavailable,
            status: Some(200),
            message: None,
        };
    };
    let mut head = res
        .head(200)
        .header("X-Routed-Via", &routed)
        .header("Cache-Control", "no-store");
    head = before.headers(head);
    if let Some(dropped) = &shape.dropped {
        head = head.header("X-Freellmapi-Dropped-Tools", dropped);
    }
    if head.body("application/json", &body).is_err() {
        return Step::Cancelled;
    }
    Step::Served {
        usage: completion.usage,
        estimated: completion.usage_estimated,
        ttfb_ms: Some(sent_at.elapsed().as_millis() as u64),
        interrupted: false,
    }
}

/// The honest 429 (or 400) when nothing could serve the request.
fn exhausted(
    snap: &Snapshot,
    plan: &Plan,
    why: Option<Exhaustion>,
    tally: &Tally,
    attempts: u32,
    budget_spent: Option<Duration>,
    untried: &[String],
) -> ClientError {
    let why = why.unwrap_or_default();
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
