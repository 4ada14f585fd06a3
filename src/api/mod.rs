//! Routes: maps (method, path) to handlers, checks the client key, and turns every failure
//! into the JSON error shape through [`ApiError`]. Unknown paths get a JSON 404, wrong methods
//! a 405 with `Allow` (SPEC §2).

mod errors;
mod models;
mod proxy;
mod relay;

use crate::app::App;
use crate::crypto::ct_eq;
use crate::http::{Handler, Method, Request, Responder};

pub use errors::ApiError;

impl Handler for App {
    fn handle(&self, req: &mut Request<'_>, res: &mut Responder<'_>) {
        let get = matches!(req.method, Method::Get | Method::Head);
        let outcome = match req.path {
            "/healthz" if get => respond_json(res, 200, br#"{"status":"ok"}"#),
            "/readyz" if get => models::readyz(self, res),
            "/v1/models" if get => authorized(self, req).and_then(|_| models::list(self, req, res)),
            "/healthz" | "/readyz" | "/v1/models" => {
                Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
            }
            "/v1/chat/completions" if req.method == Method::Post => {
                proxy::chat_completions(self, req, res);
                Ok(())
            }
            "/v1/chat/completions" => Err(ApiError::MethodNotAllowed { allow: "POST" }),
            "/" | "/index.html" if get => crate::admin::web::index(req, res),
            p if p.starts_with("/assets/") && get => crate::admin::web::asset(req, res),
            "/" | "/index.html" => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }),
            p if p.starts_with("/assets/") => {
                Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
            }
            p if p.starts_with("/api/") => crate::admin::handle(self, req, res),
            p if p.starts_with("/v1/models/") => match get {
                true => authorized(self, req)
                    .and_then(|_| models::one(self, &p["/v1/models/".len()..], res)),
                false => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }),
            },
            _ => Err(ApiError::NotFound),
        };
        if let Err(e) = outcome {
            e.respond(res);
        }
    }
}

fn respond_json(res: &mut Responder<'_>, status: u16, body: &[u8]) -> Result<(), ApiError> {
    let _ = res
        .head(status)
        .header("Cache-Control", "no-store")
        .body("application/json", body);
    Ok(())
}

/// Client auth (SPEC §2): `Authorization: Bearer <key>` exactly, or `x-api-key: <key>`, from
/// every peer. No loopback exemption, no trust in forwarding headers.
pub fn authorized(app: &App, req: &Request<'_>) -> Result<(), ApiError> {
    let token = app.token();
    let presented = match req.header_bytes("authorization") {
        Some(v) => v.strip_prefix(b"Bearer "),
        None => req.header_bytes("x-api-key"),
    };
    match presented {
        Some(k) if ct_eq(k, token.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// `%XX` decoding for path segments (model ids may contain `/`, `:` and `@`).
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `X-Routed-Via` value: bytes outside visible ASCII (and `%`) are percent-encoded, so no
/// model id can break or inject a header.
pub(crate) fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_cannot_break_headers() {
        assert_eq!(
            header_safe("groq/openai/gpt-oss-120b"),
            "groq/openai/gpt-oss-120b"
        );
        assert_eq!(
            header_safe("x/evil\r\nSet-Cookie: a"),
            "x/evil%0D%0ASet-Cookie:%20a"
        );
        assert_eq!(header_safe("m/é%"), "m/%C3%A9%25");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%40cf%2Fmeta").as_deref(), Some("@cf/meta"));
        assert_eq!(
            percent_decode("qwen/qwen3:free").as_deref(),
            Some("qwen/qwen3:free")
        );
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%C3"), None);
    }
}
