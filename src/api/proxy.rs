//! The chat pipeline behind every generating surface (`/v1/chat/completions`, `/v1/messages`,
//! `/v1/responses`, `/v1/completions`): parse (through the surface's front) → plan → fail over
//! across candidates → answer or relay in the surface's shape → account (the client key was
//! checked on the request's head, in `routes`).
//!
//! Owns the per-request failover loop and its bookkeeping: up to 20 attempts within the
//! request budget, each outcome reported to the router, one request record (with its attempts)
//! sent to the log at the end. Never writes upstream text to the client except the message of
//! an upstream 400, redacted.

use std::cell::RefCell;
use std::time::Instant;

use super::failover::{Failover, Step};
use super::relay::{self, RelayEnd};
use super::trail::Trail;
use super::{ClientError, Missing};
use crate::app::App;
use crate::catalog::{AliasRoute, Caps, Kind, Platform, aliases};
use crate::chat::ChatRequest;
use crate::front::{self, Echo, Encoder, Inbound};
use crate::http::{Dialect, Request, Responder, header_safe};
use crate::outcome::Verdict;
use crate::router::{Candidate, Demand, Order, Plan, Snapshot, Task};
use crate::store::{RequestRecord, Spent};
use crate::surface::Surface;
use crate::time::now_ms;
use crate::upstream::{self, Outbound, UpstreamError, classify};
use crate::wire::{self, Usage, WireError, rescue};

/// The largest completion body accepted from a provider (a 128 000-token answer is about
/// 0.5 MiB; images in answers stay well below this). Part of the per-request memory budget.
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// The error shape of a surface's clients.
pub fn dialect(surface: Surface) -> Dialect {
    match surface {
        Surface::Messages => Dialect::Anthropic,
        Surface::OllamaChat | Surface::OllamaGenerate => Dialect::Ollama,
        Surface::Gemini => Dialect::Google,
        _ => Dialect::OpenAi,
    }
}

/// Serves one generation request of `surface`. The client key was checked on the request's
/// head (`routes`).
#[inline(never)]
pub fn generate(app: &App, surface: Surface, req: &mut Request<'_>, res: &mut Responder<'_>) {
    recorded(
        app,
        surface,
        dialect(surface),
        req,
        res,
        |req, res, rec, started| serve(app, surface, req, res, rec, started),
    );
}

/// One client request, one record: runs `serve`, answers its failure in the client's error
/// shape, and sends the record to the log.
pub(super) fn recorded<'a, 'b>(
    app: &App,
    surface: Surface,
    dialect: Dialect,
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
        rec.failed(problem.status, problem.code, e.is_rejection());
        problem.write(res, dialect);
    }
    rec.latency_ms = started.elapsed().as_millis() as u64;
    app.account(rec);
}

/// What the answer must say besides the completion, fixed by the client's request.
pub(super) struct Shape<'a> {
    pub(super) surface: Surface,
    pub(super) echo_model: &'a str,
    /// `X-Freellmapi-Dropped-Tools`, when the front dropped any.
    pub(super) dropped: Option<String>,
    /// Set for one prompt of several: a served answer (the chat completion and its usage) is
    /// kept here instead of being written, and all are answered together (`batch`).
    pub(super) capture: Option<RefCell<Answers>>,
    /// A Gemini stream written as one JSON array (no `alt=sse`).
    pub(super) json_array: bool,
    /// The request's declared tools, whose calls written as text are rescued (empty: none,
    /// and no filter). Read once per request, not per attempt.
    pub(super) tools: Vec<String>,
}

/// Served answers kept for a request of several prompts: each chat completion with its usage.
pub(super) type Answers = Vec<(Vec<u8>, Usage)>;

pub(super) fn serve(
    app: &App,
    surface: Surface,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
    rec: &mut RequestRecord,
    started: Instant,
) -> Result<(), ClientError> {
    let inbound = front::parse(surface, req.body, app.router.session_hasher())
        .map_err(ClientError::Invalid)?;
    serve_inbound(app, surface, inbound, false, req, res, rec, started)
}

/// A parsed request through the pipeline (`json_array`: a Gemini stream without `alt=sse`).
#[allow(clippy::too_many_arguments)]
pub(super) fn serve_inbound(
    app: &App,
    surface: Surface,
    inbound: Inbound,
    json_array: bool,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
    rec: &mut RequestRecord,
    started: Instant,
) -> Result<(), ClientError> {
    let Inbound {
        chat,
        echo_model,
        dropped_tools,
    } = inbound;
    let shape = Shape {
        surface,
        echo_model: &echo_model,
        dropped: (!dropped_tools.is_empty()).then(|| header_safe(&dropped_tools.join(","))),
        capture: None,
        json_array,
        tools: if chat.needs_tools {
            rescue::declared(&chat.body)
        } else {
            Vec::new()
        },
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
    Failover::new(app, &snap, &plan, chat.session, started).run(
        req.client_fd(),
        rec,
        res,
        |cand, trail, res| attempt(app, &snap, &chat, &shape, cand, trail, res),
    )
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
pub(super) fn plan(
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
        // A vendor name the catalog lacks routes by alias; so does one it holds but cannot
        // serve now, for clients that pick such names themselves (Gemini CLI): an OpenAI
        // client naming it is told why it is off instead.
        let ready = |m: usize| {
            snap.entry_for_model(m).is_some_and(|e| {
                let entry = &snap.entries[e];
                entry.enabled && snap.catalog.models[m].serves() && !entry.slots.is_empty()
            })
        };
        let by_alias = match found {
            None => true,
            Some(m) => chat.alias_when_unready && !ready(m),
        };
        if by_alias && aliases::is_aliased(name) {
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

/// What a call came back with: the provider's reply, or a whole answer made here from a
/// refusal that carried the model's tool call as text (Groq's `tool_use_failed`).
pub(super) enum Answer {
    Reply(upstream::Reply, Instant),
    Rescued(rescue::Rescued, Instant),
}

/// Sends `out` for the candidate and classifies what came back (see [`call_with`]).
/// `tools`: the request's declared tools, for whose calls a refusal may be rescued.
pub(super) fn call_for(
    app: &App,
    snap: &Snapshot,
    cand: Candidate,
    out: Outbound,
    tools: &[String],
) -> Result<Answer, Step> {
    // The encoded request is dropped once sent: it is not needed while the answer streams.
    call_with(app, snap, cand, tools, move |platform, key| {
        app.send(platform, key, &out)
    })
}

/// Sends through `send` (an upload's body streams from disk) and classifies what came back:
/// a 2xx reply (with when it was sent), a rescued refusal, or the failed step. Counts the
/// request against the candidate's limits and learns from the provider's rate-limit headers.
pub(super) fn call_with(
    app: &App,
    snap: &Snapshot,
    cand: Candidate,
    tools: &[String],
    send: impl FnOnce(&Platform, upstream::KeyRef<'_>) -> Result<upstream::Reply, UpstreamError>,
) -> Result<Answer, Step> {
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
    let mut reply = match send(platform, key_ref) {
        Ok(r) => r,
        Err(e) => return Err(Step::failed(classify::transport(e), None)),
    };
    app.router
        .observe_hints(snap, cand, &classify::rate_hints(&reply.headers), now_ms());
    if !(200..300).contains(&reply.status) {
        let status = reply.status;
        let headers = reply.take_headers();
        let body = reply.read_body(MAX_ERROR_BODY).unwrap_or_default();
        if status == 400 && !tools.is_empty() {
            let names: Vec<&str> = tools.iter().map(String::as_str).collect();
            if let Some(r) = rescue::from_groq_error(&body, &names) {
                return Ok(Answer::Rescued(r, sent_at));
            }
        }
        let verdict = classify::status(status, &headers, &body, &platform.model_gone_codes);
        let message = matches!(verdict, Verdict::BadRequest | Verdict::ModelGone).then(|| {
            let text = classify::error_message(&body).unwrap_or_else(|| format!("HTTP {status}"));
            app.scrub_keys(snap, &text)
        });
        return Err(Step::Failed {
            verdict,
            status: Some(status),
            message,
        });
    }
    Ok(Answer::Reply(reply, sent_at))
}

/// [`call_for`] a request without tools: the provider's reply or the failed step.
pub(super) fn call(
    app: &App,
    snap: &Snapshot,
    cand: Candidate,
    out: Outbound,
) -> Result<(upstream::Reply, Instant), Step> {
    match call_for(app, snap, cand, out, &[])? {
        Answer::Reply(reply, sent_at) => Ok((reply, sent_at)),
        Answer::Rescued(..) => Err(Step::failed(Verdict::Unavailable, Some(400))),
    }
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

pub(super) fn attempt(
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
    let tools = &shape.tools;
    let answer = match call_for(app, snap, cand, out, tools) {
        Ok(a) => a,
        Err(step) => return step,
    };
    let routed = header_safe(&format!("{}/{}", platform.id, model.model_id));
    let head = relay::Head {
        routed: &routed,
        before,
        dropped_tools: shape.dropped.as_deref(),
        keepalive: app.stream_timing().0,
        event_idle: app.stream_timing().1,
    };
    let encoder = || {
        let e = Encoder::new(shape.surface, shape.echo_model, chat.input_tokens);
        if shape.json_array { e.json_array() } else { e }
    };
    let (reply, sent_at) = match answer {
        Answer::Reply(reply, sent_at) => (reply, sent_at),
        Answer::Rescued(r, sent_at) => {
            let completion = rescue::completion_of(&r);
            let usage = Usage::estimate(chat.input_tokens, &completion);
            if chat.stream {
                let _streaming = app.metrics.stream_started();
                let chunks = rescue::chunks_of(&completion);
                let end = relay::replay(res, &head, chat, encoder(), &chunks, usage, sent_at);
                return streamed(end, Some(r.dialect));
            }
            let completion = wire::Completion {
                body: completion,
                usage,
                usage_estimated: true,
                empty: false,
            };
            return answer_whole(shape, completion, sent_at, Some(r.dialect), &head, res);
        }
    };
    if chat.stream {
        let decoder = wire::Decoder::new(platform, model);
        let _streaming = app.metrics.stream_started();
        let end = relay::relay(
            res,
            reply,
            &head,
            chat,
            decoder,
            encoder(),
            tools.clone(),
            sent_at,
        );
        return streamed(end, None);
    }
    let body = match reply.read_body(MAX_RESPONSE_BYTES) {
        Ok(b) => b,
        Err(e) => return Step::failed(classify::transport(e), Some(200)),
    };
    let mut completion = match wire::completion(platform, model, body, chat) {
        Ok(c) if c.empty => return Step::failed(Verdict::Empty, Some(200)),
        Ok(c) => c,
        Err(_) => return Step::failed(Verdict::Unavailable, Some(200)),
    };
    let mut rescued = None;
    if let Some((body, dialect)) = rescue::completion(&completion.body, tools) {
        completion.body = body;
        rescued = Some(dialect);
    }
    answer_whole(shape, completion, sent_at, rescued, &head, res)
}

/// A stream's end as the attempt's step.
fn streamed(end: RelayEnd, rescued_before: Option<rescue::Dialect>) -> Step {
    match end {
        RelayEnd::Completed {
            usage,
            estimated,
            ttfb_ms,
            rescued,
        } => {
            let mut spent = spent(usage, estimated, ttfb_ms);
            spent.tool_rescue = rescued.or(rescued_before).map(rescue::Dialect::as_str);
            Step::Served {
                spent,
                interrupted: false,
            }
        }
        RelayEnd::Interrupted { usage, ttfb_ms } => Step::Served {
            spent: spent(usage, true, ttfb_ms),
            interrupted: true,
        },
        RelayEnd::NotCommitted(verdict) => Step::failed(verdict, Some(200)),
        RelayEnd::ClientGone => Step::Cancelled,
    }
}

/// A whole (not streamed) answer: kept for a batch, or rendered in the surface's shape.
fn answer_whole(
    shape: &Shape<'_>,
    completion: wire::Completion,
    sent_at: Instant,
    rescued: Option<rescue::Dialect>,
    head_info: &relay::Head<'_>,
    res: &mut Responder<'_>,
) -> Step {
    let mut spent_here = spent(
        completion.usage,
        completion.usage_estimated,
        Some(sent_at.elapsed().as_millis() as u64),
    );
    spent_here.tool_rescue = rescued.map(rescue::Dialect::as_str);
    if let Some(kept) = &shape.capture {
        kept.borrow_mut().push((completion.body, completion.usage));
        return Step::Served {
            spent: spent_here,
            interrupted: false,
        };
    }
    let echo = Echo {
        model: shape.echo_model,
        usage: completion.usage,
        took: sent_at.elapsed(),
    };
    let Ok(body) = front::render(shape.surface, completion.body, &echo) else {
        return Step::failed(Verdict::Unavailable, Some(200));
    };
    let dropped = shape
        .dropped
        .as_deref()
        .map(|d| ("X-Freellmapi-Dropped-Tools", d));
    let answer = Whole {
        routed: head_info.routed,
        before: head_info.before,
        extra: dropped,
        content_type: "application/json",
    };
    if !answer.write(res, &body) {
        return Step::Cancelled;
    }
    Step::Served {
        spent: spent_here,
        interrupted: false,
    }
}

/// A whole 200 answer: where it was routed, the failed attempts before it, and one more
/// header when there is one.
pub(super) struct Whole<'a> {
    pub(super) routed: &'a str,
    pub(super) before: &'a Trail,
    pub(super) extra: Option<(&'static str, &'a str)>,
    pub(super) content_type: &'a str,
}

impl Whole<'_> {
    /// Writes it; `false` when the client is gone.
    pub(super) fn write(&self, res: &mut Responder<'_>, body: &[u8]) -> bool {
        let mut head = res
            .head(200)
            .header("X-Routed-Via", self.routed)
            .header("Cache-Control", "no-store");
        head = self.before.headers(head);
        if let Some((name, value)) = self.extra {
            head = head.header(name, value);
        }
        head.body(self.content_type, body).is_ok()
    }
}

/// What a served attempt cost, for the request's record.
pub(super) fn spent(usage: Usage, estimated: bool, ttfb_ms: Option<u64>) -> Spent {
    Spent {
        input_tokens: usage.prompt,
        output_tokens: usage.completion,
        estimated,
        ttfb_ms,
        tool_rescue: None,
    }
}
