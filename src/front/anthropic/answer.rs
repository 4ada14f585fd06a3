//! The Messages answer: the message object, and the stream encoder.
use simd_json::OwnedValue;
use simd_json::json;

use crate::front::chunk::{self, Piece, PieceSink};
use crate::front::{Echo, event, new_id};
use crate::json::write_str;
use crate::wire::{Usage, WireError};

fn stop_reason(finish: &str, used_tools: bool) -> &'static str {
    match finish {
        "length" => "max_tokens",
        _ if used_tools => "tool_use",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

fn write_usage(out: &mut Vec<u8>, usage: Usage) {
    out.extend_from_slice(b"{\"input_tokens\":");
    out.extend_from_slice(usage.prompt.to_string().as_bytes());
    out.extend_from_slice(b",\"output_tokens\":");
    out.extend_from_slice(usage.completion.to_string().as_bytes());
    out.push(b'}');
}

/// A normalised completion as an Anthropic message.
pub fn render(completion: Vec<u8>, echo: &Echo<'_>) -> Result<Vec<u8>, WireError> {
    let a = chunk::answer(completion)?;
    let mut content = Vec::new();
    if !a.text.is_empty() {
        content.push(json!({ "type": "text", "text": a.text }));
    }
    for c in &a.calls {
        let id = if c.id.is_empty() {
            new_id("toolu_")
        } else {
            c.id.clone()
        };
        content.push(json!({
            "type": "tool_use",
            "id": id,
            "name": c.name.as_str(),
            "input": chunk::arguments_object(&c.arguments),
        }));
    }
    let mut out = Vec::with_capacity(256 + a.text.len());
    out.extend_from_slice(b"{\"id\":");
    write_str(&mut out, &new_id("msg_"));
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    write_str(&mut out, echo.model);
    out.extend_from_slice(b",\"content\":");
    crate::json::write_value(&mut out, &OwnedValue::from(content));
    out.extend_from_slice(b",\"stop_reason\":");
    write_str(&mut out, stop_reason(&a.finish, !a.calls.is_empty()));
    out.extend_from_slice(b",\"stop_sequence\":null,\"usage\":");
    write_usage(&mut out, echo.usage);
    out.push(b'}');
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    /// A tool-use block fed by the upstream's tool call `index`.
    Tool(u64),
}

/// OpenAI chunks → Anthropic stream events.
pub struct StreamEncoder {
    id: String,
    model: String,
    input_tokens: u64,
    started: bool,
    open: Option<Block>,
    /// Arguments of the open tool block so far (an empty one is closed with `{}`).
    args: String,
    blocks: u32,
    used_tools: bool,
    finish: Option<String>,
}

impl StreamEncoder {
    pub fn new(model: &str, input_tokens: u64) -> StreamEncoder {
        StreamEncoder {
            id: new_id("msg_"),
            model: model.to_string(),
            input_tokens,
            started: false,
            open: None,
            args: String::new(),
            blocks: 0,
            used_tools: false,
            finish: None,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut j = Vec::with_capacity(256);
        j.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":");
        write_str(&mut j, &self.id);
        j.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        write_str(&mut j, &self.model);
        j.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":",
        );
        write_usage(
            &mut j,
            Usage {
                prompt: self.input_tokens,
                completion: 0,
                total: self.input_tokens,
            },
        );
        j.extend_from_slice(b"}}");
        event(out, "message_start", &j);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(block) = self.open.take() else {
            return;
        };
        let index = self.blocks - 1;
        if matches!(block, Block::Tool(_)) && self.args.trim().is_empty() {
            self.json_delta(index, "{}", out);
        }
        self.args.clear();
        let j = format!("{{\"type\":\"content_block_stop\",\"index\":{index}}}");
        event(out, "content_block_stop", j.as_bytes());
    }

    fn open(&mut self, block: Block, start: &[u8], out: &mut Vec<u8>) {
        self.close(out);
        self.open = Some(block);
        let index = self.blocks;
        self.blocks += 1;
        let mut j =
            format!("{{\"type\":\"content_block_start\",\"index\":{index},\"content_block\":")
                .into_bytes();
        j.extend_from_slice(start);
        j.push(b'}');
        event(out, "content_block_start", &j);
    }

    fn json_delta(&self, index: u32, partial: &str, out: &mut Vec<u8>) {
        let mut j = format!(
            "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"input_json_delta\",\"partial_json\":"
        )
        .into_bytes();
        write_str(&mut j, partial);
        j.extend_from_slice(b"}}");
        event(out, "content_block_delta", &j);
    }
}

impl PieceSink for StreamEncoder {
    /// Only the open tool call's arguments are kept (to close an empty one with `{}`).
    fn kept(&self) -> usize {
        self.args.len()
    }

    fn piece(&mut self, piece: Piece<'_>, out: &mut Vec<u8>) {
        match piece {
            Piece::Text(t) => {
                if self.open != Some(Block::Text) {
                    self.open(Block::Text, br#"{"type":"text","text":""}"#, out);
                }
                let mut j = format!(
                    "{{\"type\":\"content_block_delta\",\"index\":{},\"delta\":{{\"type\":\"text_delta\",\"text\":",
                    self.blocks - 1
                )
                .into_bytes();
                write_str(&mut j, t);
                j.extend_from_slice(b"}}");
                event(out, "content_block_delta", &j);
            }
            Piece::Tool {
                index,
                id,
                name,
                arguments,
            } => {
                let starts = id.is_some() || name.is_some();
                if self.open != Some(Block::Tool(index)) || (starts && !self.args.is_empty()) {
                    let id = id.map_or_else(|| new_id("toolu_"), str::to_string);
                    let mut start = Vec::with_capacity(96);
                    start.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                    write_str(&mut start, &id);
                    start.extend_from_slice(b",\"name\":");
                    write_str(&mut start, name.unwrap_or_default());
                    start.extend_from_slice(b",\"input\":{}}");
                    self.open(Block::Tool(index), &start, out);
                    self.used_tools = true;
                }
                if !arguments.is_empty() {
                    self.args.push_str(arguments);
                    self.json_delta(self.blocks - 1, arguments, out);
                }
            }
            Piece::Finish(reason) => self.finish = Some(reason.to_string()),
        }
    }
}

impl StreamEncoder {
    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
        self.start(out);
        chunk::feed(self, data, out)
    }

    pub fn finish(&mut self, usage: Usage, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        let reason = stop_reason(self.finish.as_deref().unwrap_or("stop"), self.used_tools);
        let mut j = Vec::with_capacity(128);
        j.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
        write_str(&mut j, reason);
        j.extend_from_slice(b",\"stop_sequence\":null},\"usage\":");
        write_usage(&mut j, usage);
        j.push(b'}');
        event(out, "message_delta", &j);
        event(out, "message_stop", br#"{"type":"message_stop"}"#);
    }

    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        let mut j = Vec::with_capacity(96);
        j.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":");
        write_str(&mut j, message);
        j.extend_from_slice(b"}}");
        event(out, "error", &j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::chunk::MAX_KEPT;

    #[test]
    fn tool_arguments_larger_than_what_is_kept_fail_the_stream() {
        let mut e = StreamEncoder::new("m", 1);
        let mut out = Vec::new();
        let call = |head: &str, args: &str| {
            format!(
                r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{{head}"arguments":"{args}"}}}}]}}}}]}}"#
            )
            .into_bytes()
        };
        // The call opens with its name; its arguments then arrive as continuations.
        assert!(e.chunk(&call(r#""name":"f","#, "{"), &mut out).is_ok());
        let big = "x".repeat(MAX_KEPT);
        assert!(e.chunk(&call("", &big), &mut out).is_err());
    }
}
