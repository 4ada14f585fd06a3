//! Answers in the Gemini API's shape: a `GenerateContentResponse` whole, or a stream of them
//! (`alt=sse`: `data:` events; otherwise one JSON array written as it grows), each naming the
//! model asked for in `modelVersion`. Function calls go out whole, with the id a
//! `functionResponse` may quote back; the last response carries `finishReason` and
//! `usageMetadata`.

use crate::front::Echo;
use crate::front::chunk::{self, Call, Piece};
use crate::json::write_str;
use crate::wire::{Usage, WireError};

/// Gemini's `finishReason` for OpenAI's `finish_reason`.
fn finish_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "MAX_TOKENS",
        "content_filter" => "SAFETY",
        _ => "STOP",
    }
}

fn write_parts(out: &mut Vec<u8>, text: &str, calls: &[Call]) {
    out.extend_from_slice(b"{\"content\":{\"role\":\"model\",\"parts\":[");
    let mut first = true;
    if !text.is_empty() || calls.is_empty() {
        out.extend_from_slice(b"{\"text\":");
        write_str(out, text);
        out.push(b'}');
        first = false;
    }
    for c in calls {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"functionCall\":{\"name\":");
        write_str(out, &c.name);
        out.extend_from_slice(b",\"args\":");
        let args = chunk::arguments_object(&c.arguments);
        out.extend_from_slice(
            simd_json::to_string(&args)
                .unwrap_or_else(|_| "{}".into())
                .as_bytes(),
        );
        if !c.id.is_empty() {
            out.extend_from_slice(b",\"id\":");
            write_str(out, &c.id);
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}");
}

fn write_tail(
    out: &mut Vec<u8>,
    finish: Option<&str>,
    usage: Option<Usage>,
    model: &str,
    id: &str,
) {
    if let Some(f) = finish {
        out.extend_from_slice(b",\"finishReason\":");
        write_str(out, finish_reason(f));
    }
    out.extend_from_slice(b",\"index\":0}]");
    if let Some(u) = usage {
        out.extend_from_slice(
            format!(
                ",\"usageMetadata\":{{\"promptTokenCount\":{},\"candidatesTokenCount\":{},\"totalTokenCount\":{}}}",
                u.prompt, u.completion, u.total
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b",\"modelVersion\":");
    write_str(out, model);
    out.extend_from_slice(b",\"responseId\":");
    write_str(out, id);
    out.push(b'}');
}

/// One whole `GenerateContentResponse`.
pub fn render(completion: Vec<u8>, echo: &Echo<'_>) -> Result<Vec<u8>, WireError> {
    let a = chunk::answer(completion)?;
    let mut out = Vec::with_capacity(256 + a.text.len());
    out.extend_from_slice(b"{\"candidates\":[");
    write_parts(&mut out, &a.text, &a.calls);
    write_tail(
        &mut out,
        Some(&a.finish),
        Some(echo.usage),
        echo.model,
        &super::super::new_id(""),
    );
    Ok(out)
}

/// `countTokens`' answer.
pub fn token_count(tokens: u64) -> Vec<u8> {
    format!("{{\"totalTokens\":{tokens}}}").into_bytes()
}

/// OpenAI chat chunks → Gemini stream responses.
pub struct StreamEncoder {
    model: String,
    id: String,
    /// `alt=sse`; otherwise a JSON array.
    sse: bool,
    /// Responses written so far (the array needs its separators).
    written: usize,
    /// Tool calls being assembled, sent whole at the finish.
    calls: chunk::Calls,
    finish: Option<String>,
}

impl StreamEncoder {
    pub fn new(model: &str, sse: bool) -> StreamEncoder {
        StreamEncoder {
            model: model.to_string(),
            id: super::super::new_id(""),
            sse,
            written: 0,
            calls: chunk::Calls::default(),
            finish: None,
        }
    }

    /// Written as one JSON array instead of events.
    pub fn json_array(mut self) -> StreamEncoder {
        self.sse = false;
        self
    }

    pub fn content_type(&self) -> &'static str {
        if self.sse {
            "text/event-stream; charset=utf-8"
        } else {
            "application/json"
        }
    }

    /// Frames one response: an SSE event, or the array's next element.
    fn frame(&mut self, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
        if self.sse {
            out.extend_from_slice(b"data: ");
        } else {
            out.extend_from_slice(if self.written == 0 { b"[" } else { b",\r\n" });
        }
        write(out);
        if self.sse {
            out.extend_from_slice(b"\n\n");
        }
        self.written += 1;
    }

    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
        chunk::feed(self, data, out)
    }

    pub fn finish(&mut self, usage: Usage, out: &mut Vec<u8>) {
        let calls = self.calls.take();
        let finish = self.finish.take().unwrap_or_else(|| "stop".into());
        let (model, id) = (self.model.clone(), self.id.clone());
        self.frame(out, |out| {
            out.extend_from_slice(b"{\"candidates\":[");
            write_parts(out, "", &calls);
            write_tail(out, Some(&finish), Some(usage), &model, &id);
        });
        if !self.sse {
            out.push(b']');
        }
    }

    /// A broken stream ends with Google's error object.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        self.frame(out, |out| {
            out.extend_from_slice(b"{\"error\":{\"code\":500,\"message\":");
            write_str(out, message);
            out.extend_from_slice(b",\"status\":\"INTERNAL\"}}");
        });
        if !self.sse {
            out.push(b']');
        }
    }
}

impl chunk::PieceSink for StreamEncoder {
    fn piece(&mut self, piece: Piece<'_>, out: &mut Vec<u8>) {
        match piece {
            Piece::Text(t) => {
                let (model, id) = (self.model.clone(), self.id.clone());
                self.frame(out, |out| {
                    out.extend_from_slice(b"{\"candidates\":[");
                    write_parts(out, t, &[]);
                    write_tail(out, None, None, &model, &id);
                });
            }
            Piece::Tool {
                index,
                id,
                name,
                arguments,
            } => {
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

    #[test]
    fn an_array_stream_is_one_json_array_even_when_it_breaks() {
        let mut e = StreamEncoder::new("gemini-x", true).json_array();
        let mut out = Vec::new();
        e.chunk(br#"{"choices":[{"delta":{"content":"Hi"}}]}"#, &mut out)
            .unwrap();
        e.finish(Usage::default(), &mut out);
        let v = simd_json::to_owned_value(&mut out).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[1].get_array("candidates").unwrap()[0].get_str("finishReason"),
            Some("STOP")
        );
        let mut e = StreamEncoder::new("gemini-x", false);
        let mut out = Vec::new();
        e.fail("broke", &mut out);
        let v = simd_json::to_owned_value(&mut out).unwrap();
        assert_eq!(
            v.as_array().unwrap()[0]
                .get("error")
                .unwrap()
                .get_str("status"),
            Some("INTERNAL")
        );
    }
}
