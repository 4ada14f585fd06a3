//! The Responses answer: the response object, and the stream encoder.
use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use crate::front::chunk::{self, Piece, PieceSink};
use crate::front::{Echo, event, new_id, unix_now};
use crate::json::encode;
use crate::wire::{Usage, WireError};

fn usage_value(u: Usage) -> OwnedValue {
    json!({
        "input_tokens": u.prompt,
        "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": u.completion,
        "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": u.total
    })
}

/// The response object around `output`.
fn response(
    id: &str,
    created: u64,
    model: &str,
    status: &str,
    output: Vec<OwnedValue>,
    usage: Option<Usage>,
) -> OwnedValue {
    let incomplete = (status == "incomplete").then(|| json!({ "reason": "max_output_tokens" }));
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": null,
        "max_output_tokens": null,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": { "effort": null, "summary": null },
        "store": false,
        "temperature": null,
        "text": { "format": { "type": "text" } },
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage.map(usage_value),
        "metadata": {}
    })
}

fn message_item(id: &str, text: &str, status: &str) -> OwnedValue {
    let content = if status == "in_progress" {
        OwnedValue::array()
    } else {
        OwnedValue::from(vec![text_part(text)])
    };
    json!({ "id": id, "type": "message", "status": status, "role": "assistant", "content": content })
}

fn text_part(text: &str) -> OwnedValue {
    json!({ "type": "output_text", "text": text, "annotations": [] })
}

fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> OwnedValue {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments
    })
}

fn status_of(finish: &str) -> &'static str {
    if finish == "length" {
        "incomplete"
    } else {
        "completed"
    }
}

pub fn render(completion: Vec<u8>, echo: &Echo<'_>) -> Result<Vec<u8>, WireError> {
    let a = chunk::answer(completion)?;
    let mut output = Vec::new();
    if !a.text.is_empty() {
        output.push(message_item(&new_id("msg_"), &a.text, "completed"));
    }
    for c in &a.calls {
        let call_id = if c.id.is_empty() {
            new_id("call_")
        } else {
            c.id.clone()
        };
        output.push(call_item(
            &new_id("fc_"),
            &call_id,
            &c.name,
            &c.arguments,
            "completed",
        ));
    }
    let r = response(
        &new_id("resp_"),
        unix_now(),
        echo.model,
        status_of(&a.finish),
        output,
        Some(echo.usage),
    );
    Ok(encode(&r))
}

enum Item {
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        index: u64,
    },
}

impl Item {
    /// The bytes the item holds.
    fn size(&self) -> usize {
        match self {
            Item::Message { id, text } => id.len() + text.len(),
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => id.len() + call_id.len() + name.len() + arguments.len(),
        }
    }

    fn value(&self, status: &str) -> OwnedValue {
        match self {
            Item::Message { id, text } => message_item(id, text, status),
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => call_item(id, call_id, name, arguments, status),
        }
    }
}

/// OpenAI chunks → Responses stream events.
pub struct StreamEncoder {
    id: String,
    created: u64,
    model: String,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    /// The last item is still receiving deltas.
    open: bool,
    finish: Option<String>,
    /// Bytes held in `items`, bounded by `chunk::MAX_KEPT`.
    kept: usize,
}

impl StreamEncoder {
    pub fn new(model: &str) -> StreamEncoder {
        StreamEncoder {
            id: new_id("resp_"),
            created: unix_now(),
            model: model.to_string(),
            seq: 0,
            started: false,
            items: Vec::new(),
            open: false,
            finish: None,
            kept: 0,
        }
    }

    /// Writes one event: `fields` gets `type` and `sequence_number` added.
    fn emit(&mut self, name: &str, mut fields: OwnedValue, out: &mut Vec<u8>) {
        if let Some(o) = fields.as_object_mut() {
            o.insert("type".into(), OwnedValue::from(name));
            o.insert("sequence_number".into(), OwnedValue::from(self.seq));
        }
        self.seq += 1;
        event(out, name, &encode(&fields));
    }

    fn snapshot(&self, status: &str, usage: Option<Usage>) -> OwnedValue {
        let item_status = if status == "in_progress" {
            "in_progress"
        } else {
            "completed"
        };
        let output = self.items.iter().map(|i| i.value(item_status)).collect();
        response(&self.id, self.created, &self.model, status, output, usage)
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.snapshot("in_progress", None);
        self.emit("response.created", json!({ "response": r.clone() }), out);
        self.emit("response.in_progress", json!({ "response": r }), out);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let index = self.items.len() - 1;
        let done = self.items[index].value("completed");
        match &self.items[index] {
            Item::Message { id, text } => {
                let (id, text) = (id.clone(), text.clone());
                self.emit(
                    "response.output_text.done",
                    json!({ "item_id": id.as_str(), "output_index": index, "content_index": 0, "text": text.as_str(), "logprobs": [] }),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({ "item_id": id, "output_index": index, "content_index": 0, "part": text_part(&text) }),
                    out,
                );
            }
            Item::Call {
                id,
                name,
                arguments,
                ..
            } => {
                let fields = json!({ "item_id": id.as_str(), "output_index": index, "name": name.as_str(), "arguments": arguments.as_str() });
                self.emit("response.function_call_arguments.done", fields, out);
            }
        }
        self.emit(
            "response.output_item.done",
            json!({ "output_index": index, "item": done }),
            out,
        );
    }

    /// Closes the open item, opens `item` and announces it; returns its output index.
    fn open_item(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        self.close(out);
        self.kept += item.size();
        self.items.push(item);
        self.open = true;
        let index = self.items.len() - 1;
        let added = self.items[index].value("in_progress");
        self.emit(
            "response.output_item.added",
            json!({ "output_index": index, "item": added }),
            out,
        );
        index
    }
}

impl PieceSink for StreamEncoder {
    /// Every item's text or arguments are kept: `response.completed` repeats them all.
    fn kept(&self) -> usize {
        self.kept
    }

    fn piece(&mut self, piece: Piece<'_>, out: &mut Vec<u8>) {
        match piece {
            Piece::Text(t) => {
                let in_message =
                    self.open && matches!(self.items.last(), Some(Item::Message { .. }));
                if !in_message {
                    let id = new_id("msg_");
                    let index = self.open_item(
                        Item::Message {
                            id: id.clone(),
                            text: String::new(),
                        },
                        out,
                    );
                    self.emit(
                        "response.content_part.added",
                        json!({ "item_id": id.as_str(), "output_index": index, "content_index": 0, "part": text_part("") }),
                        out,
                    );
                }
                let index = self.items.len() - 1;
                let Some(Item::Message { id, text }) = self.items.last_mut() else {
                    return;
                };
                text.push_str(t);
                self.kept += t.len();
                let id = id.clone();
                self.emit(
                    "response.output_text.delta",
                    json!({ "item_id": id, "output_index": index, "content_index": 0, "delta": t, "logprobs": [] }),
                    out,
                );
            }
            Piece::Tool {
                index: upstream,
                id,
                name,
                arguments,
            } => {
                // A fragment continues the open call of its index; an id on an index whose call
                // already has arguments starts a new call (providers that reuse index 0).
                let same = self.open
                    && matches!(self.items.last(), Some(Item::Call { index, arguments: so_far, .. })
                        if *index == upstream && (id.is_none() || so_far.is_empty()));
                if !same {
                    let call = Item::Call {
                        id: new_id("fc_"),
                        call_id: id.map_or_else(|| new_id("call_"), str::to_string),
                        name: name.unwrap_or_default().to_string(),
                        arguments: String::new(),
                        index: upstream,
                    };
                    self.open_item(call, out);
                }
                if arguments.is_empty() {
                    return;
                }
                let index = self.items.len() - 1;
                let Some(Item::Call {
                    id, arguments: all, ..
                }) = self.items.last_mut()
                else {
                    return;
                };
                all.push_str(arguments);
                self.kept += arguments.len();
                let id = id.clone();
                self.emit(
                    "response.function_call_arguments.delta",
                    json!({ "item_id": id, "output_index": index, "delta": arguments }),
                    out,
                );
            }
            Piece::Finish(r) => self.finish = Some(r.to_string()),
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
        // An empty call's arguments are `{}` so they parse.
        for item in &mut self.items {
            if let Item::Call { arguments, .. } = item
                && arguments.trim().is_empty()
            {
                arguments.push_str("{}");
            }
        }
        let status = status_of(self.finish.as_deref().unwrap_or("stop"));
        let r = self.snapshot(status, Some(usage));
        let name = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(name, json!({ "response": r }), out);
    }

    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        let mut r = self.snapshot("failed", None);
        if let Some(o) = r.as_object_mut() {
            o.insert(
                "error".into(),
                json!({ "code": "server_error", "message": message }),
            );
        }
        self.emit("response.failed", json!({ "response": r }), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::chunk::MAX_KEPT;

    fn text_chunk(n: usize) -> Vec<u8> {
        format!(
            r#"{{"choices":[{{"index":0,"delta":{{"content":"{}"}}}}]}}"#,
            "x".repeat(n)
        )
        .into_bytes()
    }

    #[test]
    fn a_stream_larger_than_what_is_kept_fails_instead_of_growing() {
        let mut e = StreamEncoder::new("m");
        let mut out = Vec::new();
        let half = MAX_KEPT / 2 + 1;
        assert!(e.chunk(&text_chunk(half), &mut out).is_ok());
        assert!(
            e.chunk(&text_chunk(half), &mut out).is_err(),
            "past the bound the stream ends as failed"
        );
    }
}
