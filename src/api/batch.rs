//! Several prompts in one `/v1/completions` request (`prompt: ["…", "…"]`, what LangChain's
//! `batch` sends): each is planned and failed over on its own, one after another, each with
//! the whole request budget, and the answers go back together as one choice per prompt.
//!
//! Owns only the fan-out and the merged answer; parsing, planning, attempts and their
//! accounting are the generation pipeline's (`proxy`, `failover`). The request keeps one log
//! record: every attempt of every prompt, the tokens summed, the last prompt's route.

use std::cell::RefCell;
use std::time::Instant;

use super::ClientError;
use super::failover::Failover;
use super::proxy::{Shape, attempt, dialect, plan, recorded};
use crate::app::App;
use crate::front::{self, Inbound};
use crate::http::{Request, Responder, header_safe};
use crate::store::{RequestOutcome, RequestRecord};
use crate::surface::Surface;

/// `POST /v1/completions`: several prompts fanned out here, one through the pipeline.
#[inline(never)]
pub fn completions(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) {
    let surface = Surface::Completions;
    recorded(
        app,
        surface,
        dialect(surface),
        req,
        res,
        |req, res, rec, started| match front::completions::split_prompts(req.body)
            .map_err(ClientError::Invalid)?
        {
            Some(prompts) => serve(app, req, res, rec, prompts),
            None => super::proxy::serve(app, surface, req, res, rec, started),
        },
    );
}

fn serve(
    app: &App,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
    rec: &mut RequestRecord,
    prompts: Vec<Vec<u8>>,
) -> Result<(), ClientError> {
    *req.body = Vec::new();
    let snap = app.router.snapshot();
    let kept = RefCell::new(Vec::with_capacity(prompts.len()));
    let (mut input, mut output) = (0, 0);
    let mut routes: Vec<String> = Vec::new();
    let mut echo = String::new();
    for mut body in prompts {
        let Inbound {
            chat, echo_model, ..
        } = front::parse(Surface::Completions, &mut body, app.router.session_hasher())
            .map_err(ClientError::Invalid)?;
        drop(body);
        rec.requested_model = chat.model.clone();
        echo = echo_model;
        let plan = plan(app, &snap, &chat, req)?;
        let shape = Shape {
            surface: Surface::Completions,
            echo_model: &echo,
            dropped: None,
            capture: Some(RefCell::new(Vec::new())),
            json_array: false,
            // Legacy completions carry no tools.
            tools: Vec::new(),
        };
        Failover::new(app, &snap, &plan, chat.session, Instant::now()).run(
            req.client_fd(),
            rec,
            res,
            |cand, trail, res| attempt(app, &snap, &chat, &shape, cand, trail, res),
        )?;
        if rec.outcome == RequestOutcome::Cancelled {
            return Ok(());
        }
        kept.borrow_mut()
            .extend(shape.capture.map(RefCell::into_inner).unwrap_or_default());
        input += rec.input_tokens;
        output += rec.output_tokens;
        if let (Some(p), Some(m)) = (&rec.platform, &rec.model) {
            let route = format!("{p}/{m}");
            if !routes.contains(&route) {
                routes.push(route);
            }
        }
    }
    rec.input_tokens = input;
    rec.output_tokens = output;
    let body = front::completions::render_many(kept.into_inner(), &echo).map_err(|e| {
        log::error!(
            "request {}: merging the answers failed: {e:?}",
            rec.request_id
        );
        ClientError::Internal("the answers to the prompts could not be put together")
    })?;
    let head = res
        .head(200)
        .header("X-Routed-Via", &header_safe(&routes.join(", ")))
        .header("Cache-Control", "no-store");
    if head.body("application/json", &body).is_err() {
        rec.cancelled();
        res.abandon();
    }
    Ok(())
}
