//! What went wrong with a request, said once in neutral terms, and the writers that put it on
//! the wire in a client's error dialect.
//!
//! Each face of the server (the client API, the dashboard API, this layer's own framing errors)
//! has its own error enum and turns each variant into a [`Problem`] in one place: status,
//! family, code and message together. A renderer only formats; adding a client dialect (the
//! Anthropic error shape, say) is one more `write_*` here, not a change to any enum.

use std::borrow::Cow;

use super::{Methods, Responder};

/// The error shape a client reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    /// `{"error":{"message","type","code"}}`.
    #[default]
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}`.
    Anthropic,
    /// `{"error":"message"}`, the Ollama API's.
    Ollama,
    /// `{"error":{"code","message","status"}}`, Google's (the Gemini API's).
    Google,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    /// The error family: `invalid_request_error`, `authentication_error`, `rate_limit_error`...
    pub kind: &'static str,
    /// The machine-readable code; also the class recorded in the request log.
    pub code: &'static str,
    /// For people. Must never carry a secret.
    pub message: Cow<'static, str>,
    /// Sent as `Retry-After` (seconds).
    pub retry_after_s: Option<u64>,
    /// Sent as `Allow` with a 405.
    pub allow: Option<Methods>,
}

impl Problem {
    pub fn new(
        status: u16,
        kind: &'static str,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Problem {
        Problem {
            status,
            kind,
            code,
            message: message.into(),
            retry_after_s: None,
            allow: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Problem {
        self.retry_after_s = Some(seconds);
        self
    }

    /// No route has this path.
    pub fn no_route() -> Problem {
        Problem::new(404, "invalid_request_error", "not_found", "no such route")
    }

    /// The path exists, the method does not.
    pub fn method_not_allowed(allow: Methods) -> Problem {
        let mut p = Problem::new(
            405,
            "invalid_request_error",
            "method_not_allowed",
            format!("method not allowed; use {allow}"),
        );
        p.allow = Some(allow);
        p
    }

    /// Something failed inside the server; the detail went to the log.
    pub fn internal(message: &'static str) -> Problem {
        Problem::new(500, "server_error", "internal_error", message)
    }

    /// `{"error":{"message","type","code"}}`, the OpenAI error shape.
    pub fn openai_body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64 + self.message.len());
        body.extend_from_slice(b"{\"error\":{\"message\":");
        crate::json::write_str(&mut body, &self.message);
        body.extend_from_slice(b",\"type\":");
        crate::json::write_str(&mut body, self.kind);
        body.extend_from_slice(b",\"code\":");
        crate::json::write_str(&mut body, self.code);
        body.extend_from_slice(b"}}");
        body
    }

    /// Anthropic's error type for this status.
    fn anthropic_type(&self) -> &'static str {
        match self.status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            s if s >= 500 => "api_error",
            _ => "invalid_request_error",
        }
    }

    /// `{"type":"error","error":{"type","message"}}`, Anthropic's error shape.
    pub fn anthropic_body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64 + self.message.len());
        body.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":");
        crate::json::write_str(&mut body, self.anthropic_type());
        body.extend_from_slice(b",\"message\":");
        crate::json::write_str(&mut body, &self.message);
        body.extend_from_slice(b"}}");
        body
    }

    /// `{"error":"message"}`, the Ollama API's error shape.
    pub fn ollama_body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(16 + self.message.len());
        body.extend_from_slice(b"{\"error\":");
        crate::json::write_str(&mut body, &self.message);
        body.push(b'}');
        body
    }

    /// Google's canonical status name for this HTTP status.
    fn google_status(&self) -> &'static str {
        match self.status {
            400 | 413 | 422 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            405 | 501 => "UNIMPLEMENTED",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        }
    }

    /// `{"error":{"code","message","status"}}`, Google's error shape.
    pub fn google_body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64 + self.message.len());
        body.extend_from_slice(
            format!("{{\"error\":{{\"code\":{},\"message\":", self.status).as_bytes(),
        );
        crate::json::write_str(&mut body, &self.message);
        body.extend_from_slice(b",\"status\":");
        crate::json::write_str(&mut body, self.google_status());
        body.extend_from_slice(b"}}");
        body
    }

    /// Writes the response in the OpenAI error shape.
    pub fn write_openai(&self, res: &mut Responder<'_>) {
        self.write(res, Dialect::OpenAi);
    }

    /// Writes the response: status, `Allow` / `Retry-After`, and the body in `dialect`.
    pub fn write(&self, res: &mut Responder<'_>, dialect: Dialect) {
        let body = match dialect {
            Dialect::OpenAi => self.openai_body(),
            Dialect::Anthropic => self.anthropic_body(),
            Dialect::Ollama => self.ollama_body(),
            Dialect::Google => self.google_body(),
        };
        let mut head = res.head(self.status);
        if let Some(allow) = self.allow {
            head = head.header("Allow", &allow.to_string());
        }
        if let Some(seconds) = self.retry_after_s {
            head = head.header_u64("Retry-After", seconds);
        }
        // A failed write means the client is gone; the responder closes the connection.
        let _ = head.body("application/json", &body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_carry_their_headers() {
        use super::super::Method;
        let get = Methods::default().with(Method::Head).with(Method::Get);
        let p = Problem::method_not_allowed(get);
        assert_eq!((p.status, p.code), (405, "method_not_allowed"));
        assert_eq!(p.allow.unwrap().to_string(), "GET, HEAD");
        assert_eq!(p.message, "method not allowed; use GET, HEAD");
        let p = Problem::new(429, "rate_limit_error", "x", "wait").retry_after(7);
        assert_eq!(p.retry_after_s, Some(7));
        assert_eq!(Problem::no_route().status, 404);
        assert_eq!(Problem::internal("boom").status, 500);
    }

    #[test]
    fn the_openai_shape_escapes_its_strings() {
        let p = Problem::new(
            401,
            "authentication_error",
            "invalid_api_key",
            "Invalid API key",
        );
        assert_eq!(
            String::from_utf8(p.openai_body()).unwrap(),
            r#"{"error":{"message":"Invalid API key","type":"authentication_error","code":"invalid_api_key"}}"#
        );
        assert_eq!(
            String::from_utf8(p.anthropic_body()).unwrap(),
            r#"{"type":"error","error":{"type":"authentication_error","message":"Invalid API key"}}"#
        );
        let p = Problem::new(400, "x", "y", "say \"hi\"\n");
        assert_eq!(
            String::from_utf8(p.openai_body()).unwrap(),
            r#"{"error":{"message":"say \"hi\"\n","type":"x","code":"y"}}"#
        );
    }

    #[test]
    fn ollama_and_google_shapes() {
        let p = Problem::new(429, "rate_limit_error", "rate_limited", "wait \"a\" bit");
        assert_eq!(
            String::from_utf8(p.ollama_body()).unwrap(),
            r#"{"error":"wait \"a\" bit"}"#
        );
        assert_eq!(
            String::from_utf8(p.google_body()).unwrap(),
            r#"{"error":{"code":429,"message":"wait \"a\" bit","status":"RESOURCE_EXHAUSTED"}}"#
        );
    }
}
