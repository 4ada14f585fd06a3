//! `POST /v1/audio/transcriptions`: spool the upload → read the form → plan within the Whisper
//! family → fail over across keys and platforms, the audio streamed from disk each time →
//! the transcript in the client's `response_format` → account.
//!
//! The body is read by this handler as it arrives (the route is admitted with
//! `BodyLimit::Streamed`): the file part goes straight to a spool file, never to memory, and
//! the form fails with a 413 the moment the file crosses 25 MiB. The spool file is removed when
//! the request is over, however it ends (`SpoolFile`'s drop).

use std::time::Instant;

use super::failover::{Failover, Step};
use super::proxy::{Answer, Whole, call_with, recorded, untranslatable};
use super::trail::Trail;
use super::{ClientError, Missing};
use crate::app::App;
use crate::catalog::Kind;
use crate::chat::invalid;
use crate::front::transcriptions::{self as front, Parsed};
use crate::http::multipart::{self, Limits, MultipartError};
use crate::http::{HttpError, Request, Responder, header_safe};
use crate::outcome::Verdict;
use crate::router::{Candidate, Plan, Snapshot, Task};
use crate::spool::SpoolError;
use crate::store::{RequestRecord, Spent};
use crate::surface::Surface;
use crate::upstream::classify;
use crate::wire::transcriptions::{self as stt, Audio};

/// The largest audio file: OpenAI's limit, and Groq's on its free plan (25 MB).
pub const MAX_AUDIO_BYTES: u64 = 25 * 1024 * 1024;
/// The whole body: the file, the other fields and the multipart framing.
pub const BODY_LIMIT: usize = MAX_AUDIO_BYTES as usize + 1024 * 1024;
/// The form's text fields (model, language, prompt, ...).
const LIMITS: Limits = Limits {
    file: MAX_AUDIO_BYTES,
    field: 16 * 1024,
    parts: 16,
};
/// What may follow the form's closing boundary (an epilogue) before the request is refused.
const MAX_EPILOGUE: usize = 64 * 1024;
/// OpenAI's name for Whisper: any model of the family, in chain order.
pub const OPENAI_NAME: &str = "whisper-1";
const FAMILY: &str = "whisper";
/// A transcript with segment and word timestamps of a long recording is a few MiB.
const MAX_TRANSCRIPT_BODY: u64 = 8 * 1024 * 1024;

#[inline(never)]
pub fn transcriptions(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) {
    recorded(
        app,
        Surface::Transcriptions,
        crate::http::Dialect::OpenAi,
        req,
        res,
        |req, res, rec, _| serve(app, req, res, rec),
    );
}

fn serve(
    app: &App,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
    rec: &mut RequestRecord,
) -> Result<(), ClientError> {
    let boundary = multipart::boundary(req.header("content-type"))
        .map_err(|why| ClientError::Invalid(invalid("invalid_content_type", why.to_string())))?;
    let mut spooled = match app.spool().create() {
        Ok(f) => f,
        Err(SpoolError::Busy) => return Err(ClientError::UploadsBusy),
        Err(SpoolError::Io(e)) => {
            log::error!(
                "request {}: no spool file in {}: {e}",
                rec.request_id,
                app.spool().dir().display()
            );
            return Err(ClientError::Internal(
                "the upload could not be stored on the server's disk",
            ));
        }
    };
    let form = {
        let Some(mut body) = req.body_reader(res) else {
            return Err(ClientError::Internal("the upload could not be read"));
        };
        multipart::read_form(
            boundary,
            "file",
            LIMITS,
            |buf| body.read(buf),
            |piece| spooled.append(piece),
        )
        .and_then(|form| {
            // The body is read to its end (an epilogue, the chunked terminator) before the
            // provider is called: bytes left unread on the socket would look like a client
            // that went away to the watch that stops an upstream call when it does.
            let mut rest = [0u8; 1024];
            let mut left = MAX_EPILOGUE;
            loop {
                match body.read(&mut rest) {
                    Ok(0) => break Ok(form),
                    Ok(n) if n < left => left -= n,
                    Ok(_) => {
                        break Err(MultipartError::Malformed(
                            "more than 64 KiB after the form's closing boundary",
                        ));
                    }
                    Err(e) => break Err(MultipartError::Body(e)),
                }
            }
        })
    };
    let form = match form {
        Ok(f) => f,
        Err(MultipartError::Body(HttpError::Closed)) => {
            log::info!(
                "request {}: client went away during its upload",
                rec.request_id
            );
            rec.cancelled();
            res.abandon();
            return Ok(());
        }
        Err(e) => return Err(upload_error(rec, e)),
    };
    let Some(file) = &form.file else {
        return Err(ClientError::Invalid(invalid(
            "missing_required_parameter",
            "file: required; send the audio as the multipart field `file`".into(),
        )));
    };
    if file.size == 0 {
        return Err(ClientError::Invalid(invalid(
            "invalid_value",
            "file: empty".into(),
        )));
    }
    let parsed = front::parse(&form).map_err(ClientError::Invalid)?;
    rec.requested_model = Some(parsed.model.clone());
    let snap = app.router.snapshot();
    let plan = plan(&snap, &parsed, req)?;
    let audio = Audio {
        file: &spooled,
        filename: file.filename.as_deref(),
        content_type: file.content_type.as_deref(),
    };
    // The budget starts now: a slow upload must not leave the providers no time.
    Failover::new(app, &snap, &plan, None, Instant::now()).run(
        req.client_fd(),
        rec,
        res,
        |cand, trail, res| attempt(app, &snap, &parsed, &audio, cand, trail, res),
    )
}

/// A form that could not be read, as the client's error.
fn upload_error(rec: &RequestRecord, e: MultipartError) -> ClientError {
    match e {
        MultipartError::Body(e) => ClientError::Body(e),
        MultipartError::FileTooLarge { limit } => ClientError::UploadTooLarge { limit },
        MultipartError::Sink(e) => {
            log::error!(
                "request {}: the upload could not be written to the spool: {e}",
                rec.request_id
            );
            ClientError::Internal("the upload could not be stored on the server's disk")
        }
        e @ MultipartError::Malformed(_) => {
            ClientError::Invalid(invalid("invalid_multipart", e.to_string()))
        }
        e => ClientError::Invalid(invalid("invalid_value", e.to_string())),
    }
}

/// `whisper-1` goes to the Whisper family in chain order; a catalog id goes first (alone under
/// `X-Freellmapi-Pin: strict`), then its family.
fn plan(snap: &Snapshot, parsed: &Parsed, req: &Request<'_>) -> Result<Plan, ClientError> {
    let name = &parsed.model;
    let missing = |why| ClientError::ModelNotFound {
        model: name.clone(),
        why,
    };
    if name == OPENAI_NAME {
        // The family's first model in chain order stands for it (one that serves, if any).
        let whisper = |m: usize| {
            let x = &snap.catalog.models[m];
            x.kind == Kind::Transcription && x.family.as_deref() == Some(FAMILY)
        };
        let in_chain = || snap.entries.iter().map(|e| e.model).filter(|&m| whisper(m));
        let like = in_chain()
            .find(|&m| snap.catalog.models[m].serves())
            .or_else(|| in_chain().next())
            .ok_or_else(|| missing(Missing::NoTranscriptionModel))?;
        return Ok(Plan {
            task: Task::Transcription { like },
            ..Plan::default()
        });
    }
    let m = snap
        .find_model(name)
        .ok_or_else(|| missing(Missing::UnknownTranscription))?;
    let model = &snap.catalog.models[m];
    if model.kind != Kind::Transcription {
        return Err(missing(Missing::WrongKind));
    }
    let entry = snap
        .entry_for_model(m)
        .filter(|&e| snap.entries[e].enabled && model.serves())
        .ok_or_else(|| ClientError::not_serving(snap, m, name))?;
    Ok(Plan {
        first: Some(entry),
        strict: req
            .header("x-freellmapi-pin")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("strict")),
        task: Task::Transcription { like: m },
        ..Plan::default()
    })
}

fn attempt(
    app: &App,
    snap: &Snapshot,
    parsed: &Parsed,
    audio: &Audio<'_, '_>,
    cand: Candidate,
    before: &Trail,
    res: &mut Responder<'_>,
) -> Step {
    let model = snap.model(cand.entry);
    let platform = &snap.catalog.platforms[model.platform];
    let up = match stt::outbound(platform, model, &parsed.request, audio) {
        Ok(u) => u,
        Err(e) => return untranslatable(e),
    };
    let (reply, sent_at) = match call_with(app, snap, cand, &[], |platform, key| {
        app.send_upload(platform, key, up)
    }) {
        Ok(Answer::Reply(reply, sent_at)) => (reply, sent_at),
        // Nothing is rescued without tools.
        Ok(Answer::Rescued(..)) => return Step::failed(Verdict::Unavailable, Some(400)),
        Err(step) => return step,
    };
    let body = match reply.read_body(MAX_TRANSCRIPT_BODY) {
        Ok(b) => b,
        Err(e) => return Step::failed(classify::transport(e), Some(200)),
    };
    let Ok(transcript) = stt::read(platform, body) else {
        return Step::failed(Verdict::Unavailable, Some(200));
    };
    let (content_type, body) = front::render(&transcript, parsed);
    drop(transcript);
    let routed = header_safe(&format!("{}/{}", platform.id, model.model_id));
    let answer = Whole {
        routed: &routed,
        before,
        extra: None,
        content_type,
    };
    if !answer.write(res, &body) {
        return Step::Cancelled;
    }
    Step::Served {
        // Audio is not counted in tokens; the request log keeps its latency and who served it.
        spent: Spent {
            input_tokens: 0,
            output_tokens: 0,
            estimated: false,
            ttfb_ms: Some(sent_at.elapsed().as_millis() as u64),
            tool_rescue: None,
        },
        interrupted: false,
    }
}
