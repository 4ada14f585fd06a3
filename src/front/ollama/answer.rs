//! Answers in Ollama's shapes: one JSON object (`stream: false`) or NDJSON, a line per piece
//! of text, tool calls whole once their arguments are complete (Ollama sends them as objects,
//! not fragments), and a last line with `done: true`, the reason and the token counts.
//!
//! Durations are nanoseconds, as Ollama reports them; clients divide `eval_count` by
//! `eval_duration` for a speed, so both are real measurements, never zero.

use std::time::Instant;

use crate::front::Echo;
use crate::front::chunk::{self, Call, Piece};
use crate::json::write_str;
use crate::wire::{Usage, WireError};

/// Which route's shape: `/api/chat` (`message`) or `/api/generate` (`response`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Chat,
    Generate,
}

/// Ollama's `done_reason` for OpenAI's `finish_reason`.
fn done_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "length",
        _ => "stop",
    }
}

fn write_head(out: &mut Vec<u8>, model: &str) {
    out.extend_from_slice(b"{\"model\":");
    write_str(out, model);
    out.extend_from_slice(b",\"created_at\":");
    write_str(out, &crate::time::rfc3339_ms(crate::time::now_ms()));
}

/// `,"message":{…}` or `,"response":"…"`.
fn write_text(out: &mut Vec<u8>, route: Route, text: &str, calls: &[Call]) {
    match route {
        Route::Generate => {
            out.extend_from_slice(b",\"response\":");
            write_str(out, text);
        }
        Route::Chat => {
            out.extend_from_slice(b",\"message\":{\"role\":\"assistant\",\"content\":");
            write_str(out, text);
            if !calls.is_empty() {
                out.extend_from_slice(b",\"tool_calls\":[");
                for (i, c) in calls.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"{\"function\":{\"name\":");
                    write_str(out, &c.name);
                    out.extend_from_slice(b",\"arguments\":");
                    let args = chunk::arguments_object(&c.arguments);
                    out.extend_from_slice(
                        simd_json::to_string(&args)
                            .unwrap_or_else(|_| "{}".into())
                            .as_bytes(),
                    );
                    out.extend_from_slice(b"}}");
                }
                out.push(b']');
            }
            out.push(b'}');
        }
    }
}

/// `,"done":true,"done_reason":…` and the counts and durations.
fn write_done(out: &mut Vec<u8>, reason: &str, usage: Usage, total_ns: u64, eval_ns: u64) {
    out.extend_from_slice(b",\"done\":true,\"done_reason\":");
    write_str(out, reason);
    let prompt_ns = total_ns.saturating_sub(eval_ns).max(1);
    out.extend_from_slice(
        format!(
            ",\"total_duration\":{},\"load_duration\":0,\"prompt_eval_count\":{},\"prompt_eval_duration\":{prompt_ns},\"eval_count\":{},\"eval_duration\":{}}}",
            total_ns.max(1),
            usage.prompt,
            usage.completion,
            eval_ns.max(1)
        )
        .as_bytes(),
    );
}

/// A whole (not streamed) answer.
pub fn render(route: Route, completion: Vec<u8>, echo: &Echo<'_>) -> Result<Vec<u8>, WireError> {
    let a = chunk::answer(completion)?;
    let mut out = Vec::with_capacity(256 + a.text.len());
    write_head(&mut out, echo.model);
    write_text(&mut out, route, &a.text, &a.calls);
    let took = echo.took.as_nanos() as u64;
    write_done(&mut out, done_reason(&a.finish), echo.usage, took, took);
    Ok(out)
}

/// The answer to a request that only loads a model (no messages, no prompt).
pub fn loaded(route: Route, model: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    write_head(&mut out, model);
    write_text(&mut out, route, "", &[]);
    out.extend_from_slice(b",\"done_reason\":\"load\",\"done\":true}");
    out
}

/// OpenAI chat chunks → NDJSON lines.
pub struct StreamEncoder {
    route: Route,
    model: String,
    started: Instant,
    first_text: Option<Instant>,
    /// Tool calls being assembled (by index), sent whole at the finish.
    calls: chunk::Calls,
    finish: Option<String>,
}

impl StreamEncoder {
    pub fn new(route: Route, model: &str) -> StreamEncoder {
        StreamEncoder {
            route,
            model: model.to_string(),
            started: Instant::now(),
            first_text: None,
            calls: chunk::Calls::default(),
            finish: None,
        }
    }

    fn line(&self, out: &mut Vec<u8>, text: &str, calls: &[Call]) {
        write_head(out, &self.model);
        write_text(out, self.route, text, calls);
        out.extend_from_slice(b",\"done\":false}\n");
    }

    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
        chunk::feed(self, data, out)
    }

    pub fn finish(&mut self, usage: Usage, out: &mut Vec<u8>) {
        let calls = self.calls.take();
        if !calls.is_empty() && self.route == Route::Chat {
            self.line(out, "", &calls);
        }
        write_head(out, &self.model);
        write_text(out, self.route, "", &[]);
        let total = self.started.elapsed().as_nanos() as u64;
        let eval = self
            .first_text
            .map_or(total, |t| t.elapsed().as_nanos() as u64);
        let reason = done_reason(self.finish.as_deref().unwrap_or("stop"));
        write_done(out, reason, usage, total, eval);
        out.push(b'\n');
    }

    /// Ollama reports a failure inside a stream as a line with `error`.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"error\":");
        write_str(out, message);
        out.extend_from_slice(b"}\n");
    }
}

impl chunk::PieceSink for StreamEncoder {
    fn piece(&mut self, piece: Piece<'_>, out: &mut Vec<u8>) {
        match piece {
            Piece::Text(t) => {
                self.first_text.get_or_insert_with(Instant::now);
                self.line(out, t, &[]);
            }
            Piece::Tool {
                index,
                id,
                name,
                arguments,
            } => {
                self.first_text.get_or_insert_with(Instant::now);
                self.calls.add(index, id, name, arguments);
            }
            Piece::Finish(f) => self.finish = Some(f.to_string()),
        }
    }

    fn kept(&self) -> usize {
        self.calls.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    fn lines(out: &[u8]) -> Vec<simd_json::OwnedValue> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| simd_json::to_owned_value(&mut l.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn a_stream_is_ndjson_with_whole_tool_calls_and_a_done_line() {
        let mut e = StreamEncoder::new(Route::Chat, "auto:latest");
        let mut out = Vec::new();
        for chunk in [
            r#"{"choices":[{"delta":{"content":"Hi"}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"get_weather","arguments":"{\"ci"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ] {
            e.chunk(chunk.as_bytes(), &mut out).unwrap();
        }
        e.finish(
            Usage {
                prompt: 7,
                completion: 3,
                total: 10,
            },
            &mut out,
        );
        let l = lines(&out);
        assert_eq!(l.len(), 3, "{}", String::from_utf8_lossy(&out));
        assert_eq!(l[0].get("message").unwrap().get_str("content"), Some("Hi"));
        assert_eq!(l[0].get_bool("done"), Some(false));
        let call = &l[1]
            .get("message")
            .unwrap()
            .get_array("tool_calls")
            .unwrap()[0];
        let f = call.get("function").unwrap();
        assert_eq!(f.get_str("name"), Some("get_weather"));
        assert_eq!(f.get("arguments").unwrap().get_str("city"), Some("Paris"));
        assert_eq!(l[2].get_bool("done"), Some(true));
        assert_eq!(l[2].get_str("done_reason"), Some("stop"));
        assert_eq!(l[2].get_u64("prompt_eval_count"), Some(7));
        assert_eq!(l[2].get_u64("eval_count"), Some(3));
        assert!(l[2].get_u64("eval_duration").unwrap() > 0);
        assert_eq!(l[2].get_str("model"), Some("auto:latest"));
    }

    #[test]
    fn generate_lines_carry_response_and_failures_an_error() {
        let mut e = StreamEncoder::new(Route::Generate, "m");
        let mut out = Vec::new();
        e.chunk(br#"{"choices":[{"delta":{"content":"x"}}]}"#, &mut out)
            .unwrap();
        e.fail("upstream broke", &mut out);
        let l = lines(&out);
        assert_eq!(l[0].get_str("response"), Some("x"));
        assert_eq!(l[1].get_str("error"), Some("upstream broke"));
        let load = lines(&loaded(Route::Generate, "m"));
        assert_eq!(load[0].get_str("done_reason"), Some("load"));
    }
}
