//! The Gemini API ingress: `POST …/models/{model}:generateContent`, `:streamGenerateContent`
//! (`alt=sse`, or one JSON array), `:countTokens`, `:embedContent` and `:batchEmbedContents`
//! under `/v1beta` and `/v1` (Google's SDK picks either once a base URL is set), and the model
//! list in Google's shape. The client key comes as `x-goog-api-key`, as Google's SDKs send it.
//!
//! Generation runs the shared chat pipeline with the Gemini front; `gemini-*` names the
//! catalog lacks route by alias, and every answer names the model asked for.

use super::models::listed;
use super::proxy::{recorded, serve_inbound};
use super::{ClientError, Missing, respond_json};
use crate::app::App;
use crate::catalog::{Kind, Model};
use crate::front::gemini;
use crate::http::{Dialect, Request, Responder, percent_decode};
use crate::json::write_str;
use crate::surface::Surface;

/// A path's `{model}:{method}` (after `models/`), split at the last colon.
fn split(rest: &str) -> Option<(String, &str)> {
    let (model, method) = rest.rsplit_once(':')?;
    let model = percent_decode(model)?;
    (!model.is_empty()).then_some((model, method))
}

/// `POST …/models/{model}:{method}`; answers (and records) its own failures.
#[inline(never)]
pub fn post(app: &App, rest: &str, req: &mut Request<'_>, res: &mut Responder<'_>) {
    let Some((model, method)) = split(rest) else {
        return not_found(res, rest);
    };
    let model = gemini::model_name(&model).to_string();
    match method {
        "generateContent" | "streamGenerateContent" => {
            let stream = method == "streamGenerateContent";
            let json_array = stream && req.query_param("alt") != Some("sse");
            recorded(
                app,
                Surface::Gemini,
                Dialect::Google,
                req,
                res,
                |req, res, rec, started| {
                    let inbound =
                        gemini::parse(req.body, &model, stream, app.router.session_hasher())
                            .map_err(ClientError::Invalid)?;
                    serve_inbound(
                        app,
                        Surface::Gemini,
                        inbound,
                        json_array,
                        req,
                        res,
                        rec,
                        started,
                    )
                },
            );
        }
        "countTokens" => {
            let counted = gemini::parse(req.body, &model, false, app.router.session_hasher())
                .map_err(ClientError::Invalid)
                .and_then(|i| respond_json(res, 200, &gemini::token_count(i.chat.input_tokens)));
            if let Err(e) = counted {
                e.problem().write(res, Dialect::Google);
            }
        }
        "embedContent" => super::embeddings::gemini_embeddings(app, &model, false, req, res),
        "batchEmbedContents" => super::embeddings::gemini_embeddings(app, &model, true, req, res),
        _ => not_found(res, rest),
    }
}

fn not_found(res: &mut Responder<'_>, rest: &str) {
    crate::http::Problem::new(
        404,
        "invalid_request_error",
        "not_found",
        format!(
            "no such method {rest:?}; models/{{model}} takes :generateContent, \
             :streamGenerateContent, :countTokens, :embedContent and :batchEmbedContents"
        ),
    )
    .write(res, Dialect::Google);
}

fn write_model(out: &mut Vec<u8>, id: &str, m: Option<&Model>, input_limit: Option<u32>) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, &format!("models/{id}"));
    out.extend_from_slice(b",\"baseModelId\":");
    write_str(out, id);
    out.extend_from_slice(b",\"version\":\"001\",\"displayName\":");
    write_str(
        out,
        m.map_or("Auto (the fallback chain)", |m| m.display_name.as_str()),
    );
    out.extend_from_slice(b",\"description\":\"\"");
    if let Some(c) = input_limit {
        out.extend_from_slice(format!(",\"inputTokenLimit\":{c}").as_bytes());
    }
    if let Some(o) = m.and_then(|m| m.max_output_tokens) {
        out.extend_from_slice(format!(",\"outputTokenLimit\":{o}").as_bytes());
    }
    out.extend_from_slice(b",\"supportedGenerationMethods\":");
    out.extend_from_slice(if m.is_some_and(|m| m.kind == Kind::Embedding) {
        b"[\"embedContent\",\"batchEmbedContents\"]"
    } else {
        b"[\"generateContent\",\"streamGenerateContent\",\"countTokens\"]"
    });
    out.push(b'}');
}

/// `GET /v1beta/models` (and `GET /v1/models` from a Google client): one page, every model.
pub fn list(app: &App, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let snap = app.router.snapshot();
    let entries = listed(app, &snap, false);
    let widest = entries
        .iter()
        .filter_map(|&e| snap.model(e).context_window)
        .max();
    let mut out = Vec::with_capacity(256 * (entries.len() + 1));
    out.extend_from_slice(b"{\"models\":[");
    write_model(&mut out, "auto", None, widest);
    for e in entries {
        let m = snap.model(e);
        if !matches!(m.kind, Kind::Chat | Kind::Embedding) {
            continue;
        }
        out.push(b',');
        write_model(&mut out, &m.model_id, Some(m), m.context_window);
    }
    out.extend_from_slice(b"]}");
    respond_json(res, 200, &out)
}

/// `GET /v1beta/models/{model}`.
pub fn one(app: &App, rest: &str, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let id = percent_decode(rest).unwrap_or_default();
    let id = gemini::model_name(&id);
    let snap = app.router.snapshot();
    let mut out = Vec::with_capacity(256);
    if id == "auto" {
        let widest = listed(app, &snap, false)
            .iter()
            .filter_map(|&e| snap.model(e).context_window)
            .max();
        write_model(&mut out, "auto", None, widest);
        return respond_json(res, 200, &out);
    }
    let entry = snap.find_model(id).and_then(|m| snap.entry_for_model(m));
    match entry {
        Some(e) if snap.entries[e].enabled && snap.model(e).serves() => {
            let m = snap.model(e);
            write_model(&mut out, &m.model_id, Some(m), m.context_window);
            respond_json(res, 200, &out)
        }
        _ => Err(ClientError::ModelNotFound {
            model: id.to_string(),
            why: Missing::Unlisted,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_last_colon() {
        assert_eq!(
            split("gemini-3.8-flash:generateContent"),
            Some(("gemini-3.8-flash".into(), "generateContent"))
        );
        assert_eq!(
            split("z-ai/glm-5.2:free:streamGenerateContent"),
            Some(("z-ai/glm-5.2:free".into(), "streamGenerateContent"))
        );
        assert_eq!(
            split("openai%2Fgpt-oss-20b:countTokens"),
            Some(("openai/gpt-oss-20b".into(), "countTokens"))
        );
        assert_eq!(split("no-method"), None);
        assert_eq!(split(":generateContent"), None);
    }
}
