//! Reading the internal (OpenAI) shapes the fronts translate from: a normalised completion as
//! an [`Answer`], a stream chunk as [`Piece`]s.

use simd_json::prelude::*;
use simd_json::{BorrowedValue, OwnedValue};

use crate::json::{self, ChunkScratch};
use crate::wire::WireError;

/// One tool call of an answer.
pub struct Call {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (a JSON text).
    pub arguments: String,
}

/// The first choice of a normalised completion.
pub struct Answer {
    pub text: String,
    pub calls: Vec<Call>,
    /// OpenAI's `finish_reason`: `stop`, `length`, `tool_calls`, `content_filter`.
    pub finish: String,
}

pub fn answer(mut body: Vec<u8>) -> Result<Answer, WireError> {
    let v = crate::json::parse_object(&mut body).map_err(|_| WireError::Malformed)?;
    let choice = v
        .get("choices")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first())
        .ok_or(WireError::Malformed)?;
    let msg = choice.get("message");
    let text = msg
        .and_then(|m| m.get_str("content"))
        .unwrap_or_default()
        .to_string();
    let calls = msg
        .and_then(|m| m.get_array("tool_calls"))
        .map(|calls| calls.iter().map(call).collect())
        .unwrap_or_default();
    let finish = choice
        .get_str("finish_reason")
        .unwrap_or("stop")
        .to_string();
    Ok(Answer {
        text,
        calls,
        finish,
    })
}

fn call(c: &OwnedValue) -> Call {
    let f = c.get("function");
    Call {
        id: c.get_str("id").unwrap_or_default().to_string(),
        name: f
            .and_then(|f| f.get_str("name"))
            .unwrap_or_default()
            .to_string(),
        arguments: f
            .and_then(|f| f.get_str("arguments"))
            .unwrap_or_default()
            .to_string(),
    }
}

/// One thing a stream chunk says.
pub enum Piece<'a> {
    Text(&'a str),
    /// A tool call's start (with `id` / `name`) or its next argument fragment.
    Tool {
        index: u64,
        id: Option<&'a str>,
        name: Option<&'a str>,
        arguments: &'a str,
    },
    Finish(&'a str),
}

/// Calls `f` with each piece of one chunk, in order. The chunk is parsed in the thread's
/// scratch (`json::with_scratch`): `f` must not yield.
pub fn pieces(data: &[u8], f: impl FnMut(Piece<'_>)) -> Result<(), WireError> {
    json::with_scratch(|scratch| pieces_in(data, scratch, f))
}

fn pieces_in(
    data: &[u8],
    scratch: &mut ChunkScratch,
    mut f: impl FnMut(Piece<'_>),
) -> Result<(), WireError> {
    let v: BorrowedValue = scratch.parse(data).map_err(|_| WireError::Malformed)?;
    let Some(choice) = v
        .get("choices")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first())
    else {
        return Ok(());
    };
    if let Some(delta) = choice.get("delta") {
        if let Some(t) = delta.get_str("content").filter(|t| !t.is_empty()) {
            f(Piece::Text(t));
        }
        for call in delta
            .get("tool_calls")
            .and_then(|c| c.as_array())
            .map(|a| a.as_slice())
            .unwrap_or(&[])
        {
            let func = call.get("function");
            f(Piece::Tool {
                index: call.get_u64("index").unwrap_or(0),
                id: call.get_str("id").filter(|s| !s.is_empty()),
                name: func
                    .and_then(|f| f.get_str("name"))
                    .filter(|s| !s.is_empty()),
                arguments: func
                    .and_then(|f| f.get_str("arguments"))
                    .unwrap_or_default(),
            });
        }
    }
    if let Some(reason) = choice.get_str("finish_reason") {
        f(Piece::Finish(reason));
    }
    Ok(())
}

/// The most an encoder keeps of one answer (the text and arguments a final event repeats):
/// the bound a non-streamed answer has too. A stream past it ends as failed.
pub const MAX_KEPT: usize = 8 * 1024 * 1024;

/// An encoder that takes a chunk's pieces one by one.
pub trait PieceSink {
    fn piece(&mut self, piece: Piece<'_>, out: &mut Vec<u8>);
    /// Bytes of the answer kept so far (bounded by [`MAX_KEPT`]).
    fn kept(&self) -> usize;
}

/// Feeds one chunk's pieces to `sink`.
pub fn feed(sink: &mut impl PieceSink, data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    pieces(data, |p| sink.piece(p, out))?;
    if sink.kept() > MAX_KEPT {
        return Err(WireError::Unsupported(
            "the streamed answer is larger than this proxy keeps",
        ));
    }
    Ok(())
}

/// Tool calls assembled from a stream's fragments, for formats that send each call whole.
#[derive(Default)]
pub struct Calls {
    pub calls: Vec<Call>,
    /// Bytes of arguments kept (bounded by [`MAX_KEPT`] through the sink).
    pub kept: usize,
}

impl Calls {
    /// Adds one `Piece::Tool` fragment to its call.
    pub fn add(&mut self, index: u64, id: Option<&str>, name: Option<&str>, arguments: &str) {
        let i = index as usize;
        if i >= self.calls.len() {
            // Indexes come in order; a gap would be a provider's bug, kept bounded.
            if i > 127 {
                return;
            }
            self.calls.resize_with(i + 1, || Call {
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
            });
        }
        let call = &mut self.calls[i];
        if let Some(id) = id {
            call.id = id.to_string();
        }
        if let Some(name) = name {
            call.name.push_str(name);
        }
        call.arguments.push_str(arguments);
        self.kept += arguments.len();
    }

    /// The calls so far, leaving none.
    pub fn take(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls)
    }
}

/// A model's arguments as a JSON object for clients that want one (`{}` when they are empty
/// or not an object).
pub fn arguments_object(arguments: &str) -> OwnedValue {
    let mut bytes = arguments.as_bytes().to_vec();
    match crate::json::parse_value(&mut bytes) {
        Ok(v) if v.is_object() => v,
        _ => OwnedValue::object(),
    }
}
