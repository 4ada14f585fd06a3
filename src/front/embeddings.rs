//! Embeddings (`/v1/embeddings`): the client's request checked field by field, and vectors
//! written back as floats or, as the official SDKs ask by default, base64 of little-endian
//! `float32`s.

use simd_json::prelude::*;

use crate::chat::{Invalid, check_model_name, invalid, parse_body, wrong_type};
use crate::json::write_str;
use crate::vocab::{Encoding, Vocabularies};
use crate::wire::embeddings::EmbedRequest;

/// The most inputs one request may carry.
pub const MAX_INPUTS: usize = 2048;

/// The answer's shape: OpenAI's list (vectors as floats or base64), or the Ollama API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Float,
    Base64,
    /// Ollama's `/api/embed`: `{"model","embeddings":[[…]],…}`.
    OllamaEmbed,
    /// Ollama's older `/api/embeddings`: `{"embedding":[…]}` for one prompt.
    OllamaLegacy,
    /// The Gemini API's `embedContent`: `{"embedding":{"values":[…]}}`.
    GeminiOne,
    /// The Gemini API's `batchEmbedContents`: `{"embeddings":[{"values":[…]}…]}`.
    GeminiBatch,
}

pub struct Parsed {
    pub model: String,
    pub request: EmbedRequest,
    pub format: Format,
    /// ceil(characters / 4) over the inputs.
    pub input_tokens: u64,
    /// The longest input: (its index, ceil(characters / 4)).
    pub longest: (usize, u64),
}

/// Parses a request; token-id inputs are turned back into text with the vocabulary the model
/// name implies (read on first use).
pub fn parse(bytes: &mut [u8], vocabs: &Vocabularies) -> Result<Parsed, Invalid> {
    let body = parse_body(bytes)?;
    let model = match body.get("model") {
        Some(m) if m.is_str() && !m.as_str().unwrap_or_default().is_empty() => {
            let name = m.as_str().unwrap_or_default();
            check_model_name(name)?;
            name.to_string()
        }
        Some(m) if !m.is_null() && !m.is_str() => return Err(wrong_type("model", "a string", m)),
        _ => {
            return Err(invalid(
                "missing_required_parameter",
                "model: required (an embedding model from /v1/models)".into(),
            ));
        }
    };
    let input = body
        .get("input")
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid("missing_required_parameter", "input: required".into()))?;
    let mut token_counts: Option<Vec<u64>> = None;
    let inputs: Vec<String> = if let Some(s) = input.as_str() {
        vec![s.to_string()]
    } else {
        let list = input
            .as_array()
            .ok_or_else(|| wrong_type("input", "a string or an array of strings", input))?;
        if list.is_empty() {
            return Err(invalid("invalid_value", "input: must not be empty".into()));
        }
        if list.len() > MAX_INPUTS {
            return Err(invalid(
                "invalid_value",
                format!("input: at most {MAX_INPUTS} items per request"),
            ));
        }
        if list.iter().all(|v| v.is_str()) {
            list.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        } else if list.iter().all(|v| v.is_number()) {
            let ids = token_ids("input", list)?;
            token_counts = Some(vec![ids.len() as u64]);
            vec![decode(vocabs, &model, "input", &ids)?]
        } else if list.iter().all(|v| v.is_array()) {
            // Every list is checked before the vocabulary is read.
            let lists = list
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let ids = item.as_array().map_or(&[][..], |a| a.as_slice());
                    token_ids(&format!("input[{i}]"), ids)
                })
                .collect::<Result<Vec<_>, _>>()?;
            token_counts = Some(lists.iter().map(|ids| ids.len() as u64).collect());
            lists
                .iter()
                .enumerate()
                .map(|(i, ids)| decode(vocabs, &model, &format!("input[{i}]"), ids))
                .collect::<Result<_, _>>()?
        } else {
            let (i, item) = list
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_str())
                .unwrap_or((0, &list[0]));
            return Err(wrong_type(
                format!("input[{i}]"),
                "a string, like the other items",
                item,
            ));
        }
    };
    if let Some(i) = inputs.iter().position(|s| s.is_empty()) {
        return Err(invalid(
            "invalid_value",
            format!("input[{i}]: must not be empty"),
        ));
    }
    let format = match body.get("encoding_format") {
        None => Format::Float,
        Some(v) if v.is_null() => Format::Float,
        Some(v) => match v.as_str() {
            Some("float") => Format::Float,
            Some("base64") => Format::Base64,
            _ => {
                return Err(invalid(
                    "invalid_value",
                    "encoding_format: expected float or base64".into(),
                ));
            }
        },
    };
    let dimensions = match body.get("dimensions") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=65_536).contains(&n) => Some(n as u32),
            _ => {
                return Err(invalid(
                    "invalid_value",
                    "dimensions: expected a positive integer".into(),
                ));
            }
        },
    };
    // Token ids are counted exactly; text as characters / 4.
    let (input_tokens, longest) = match token_counts {
        Some(counts) => {
            let longest = counts
                .iter()
                .copied()
                .enumerate()
                .max_by_key(|(_, t)| *t)
                .unwrap_or_default();
            (counts.iter().sum(), longest)
        }
        None => estimate(&inputs),
    };
    Ok(Parsed {
        longest,
        model,
        request: EmbedRequest { inputs, dimensions },
        format,
        input_tokens,
    })
}

/// Ollama's `/api/embed` (`input`: a string or strings) or, `legacy`, `/api/embeddings`
/// (`prompt`: one string).
pub fn parse_ollama(bytes: &mut [u8], legacy: bool) -> Result<Parsed, Invalid> {
    let body = parse_body(bytes)?;
    let model = crate::front::ollama::model(&body)?;
    let model = crate::front::ollama::model_name(&model).to_string();
    let field = if legacy { "prompt" } else { "input" };
    let input = body
        .get(field)
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid("missing_required_parameter", format!("{field}: required")))?;
    let inputs: Vec<String> = match (input.as_str(), input.as_array()) {
        (Some(s), _) => vec![s.to_string()],
        (None, Some(list)) if !legacy => {
            if list.is_empty() || list.len() > MAX_INPUTS {
                return Err(invalid(
                    "invalid_value",
                    format!("input: 1 to {MAX_INPUTS} strings"),
                ));
            }
            list.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| wrong_type(format!("input[{i}]"), "a string", v))
                })
                .collect::<Result<_, _>>()?
        }
        _ => return Err(wrong_type(field, "a string", input)),
    };
    if let Some(i) = inputs.iter().position(|s| s.is_empty()) {
        return Err(invalid(
            "invalid_value",
            format!("{field}[{i}]: must not be empty"),
        ));
    }
    let dimensions = match body.get("dimensions").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=65_536).contains(&n) => Some(n as u32),
            _ => return Err(wrong_type("dimensions", "a positive integer", v)),
        },
    };
    let (tokens, longest) = estimate(&inputs);
    Ok(Parsed {
        longest,
        model,
        request: EmbedRequest { inputs, dimensions },
        format: if legacy {
            Format::OllamaLegacy
        } else {
            Format::OllamaEmbed
        },
        input_tokens: tokens,
    })
}

/// The Gemini API's `embedContent` (one `content`) or, `batch`, `batchEmbedContents`
/// (`requests`, each with its `content`), for the model in the path.
pub fn parse_gemini(bytes: &mut [u8], model: &str, batch: bool) -> Result<Parsed, Invalid> {
    let body = parse_body(bytes)?;
    let one = |r: &simd_json::OwnedValue, path: &str| -> Result<(String, Option<u64>), Invalid> {
        let parts = r
            .get("content")
            .and_then(|c| c.get_array("parts"))
            .ok_or_else(|| invalid("invalid_value", format!("{path}content.parts: required")))?;
        let text: Vec<&str> = parts.iter().filter_map(|p| p.get_str("text")).collect();
        if text.is_empty() || text.iter().all(|t| t.is_empty()) {
            return Err(invalid(
                "invalid_value",
                format!("{path}content.parts: text required"),
            ));
        }
        let dims = r
            .get("outputDimensionality")
            .or_else(|| r.get("output_dimensionality"))
            .and_then(|d| d.as_u64());
        Ok((text.join("\n"), dims))
    };
    let mut inputs = Vec::new();
    let mut dimensions = None;
    if batch {
        let requests = body
            .get_array("requests")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| invalid("invalid_value", "requests: required".into()))?;
        if requests.len() > MAX_INPUTS {
            return Err(invalid(
                "invalid_value",
                format!("requests: at most {MAX_INPUTS}"),
            ));
        }
        for (i, r) in requests.iter().enumerate() {
            let (text, dims) = one(r, &format!("requests[{i}]."))?;
            inputs.push(text);
            dimensions = dimensions.or(dims);
        }
    } else {
        let (text, dims) = one(&body, "")?;
        inputs.push(text);
        dimensions = dims;
    }
    let dimensions = match dimensions {
        None => None,
        Some(n) if (1..=65_536).contains(&n) => Some(n as u32),
        Some(_) => {
            return Err(invalid(
                "invalid_value",
                "outputDimensionality: expected a positive integer".into(),
            ));
        }
    };
    let (tokens, longest) = estimate(&inputs);
    Ok(Parsed {
        longest,
        model: model.to_string(),
        request: EmbedRequest { inputs, dimensions },
        format: if batch {
            Format::GeminiBatch
        } else {
            Format::GeminiOne
        },
        input_tokens: tokens,
    })
}

/// Texts' tokens as characters / 4: the total, and the longest input (its index, its count).
fn estimate(inputs: &[String]) -> (u64, (usize, u64)) {
    let chars = inputs.iter().map(|s| s.chars().count() as u64);
    let longest = chars
        .clone()
        .map(|c| c.div_ceil(4))
        .enumerate()
        .max_by_key(|(_, t)| *t)
        .unwrap_or_default();
    (chars.sum::<u64>().div_ceil(4), longest)
}

/// The ids of one token-id input: whole numbers a vocabulary could hold, at least one.
fn token_ids(field: &str, list: &[simd_json::OwnedValue]) -> Result<Vec<u32>, Invalid> {
    if list.is_empty() {
        return Err(invalid(
            "invalid_value",
            format!("{field}: must not be empty"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(j, v)| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(
                        "invalid_value",
                        format!("{field}[{j}]: expected a token id (a whole number)"),
                    )
                })
        })
        .collect()
}

/// The text of token ids, in the encoding the client tokenized `model` with.
fn decode(vocabs: &Vocabularies, model: &str, field: &str, ids: &[u32]) -> Result<String, Invalid> {
    let encoding = Encoding::for_model(model);
    let vocab = vocabs.get(encoding).map_err(|e| {
        log::warn!("embeddings sent as token ids cannot be read: {e}");
        invalid(
            "vocabulary_missing",
            format!(
                "{field}: token ids need the {name} vocabulary, and this server has no usable \
                 {file}. The admin can install it (the .deb and the container image carry it; \
                 for a copied binary put https://openaipublic.blob.core.windows.net/encodings/{file} \
                 in a vocab/ directory beside the binary or in FREELLMAPI_VOCAB_DIR), or send \
                 text instead (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))",
                name = encoding.name(),
                file = encoding.file_name(),
            ),
        )
    })?;
    vocab.decode(ids).map_err(|id| {
        invalid(
            "invalid_value",
            format!("{field}: token id {id} is not in {}", encoding.name()),
        )
    })
}

/// Base64 (standard alphabet, padded) of the vector as little-endian `float32`s.
fn write_base64(out: &mut Vec<u8>, v: &[f64]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
    crate::crypto::base64_into(out, &bytes);
}

/// The OpenAI list of embeddings.
pub fn render(vectors: &[Vec<f64>], format: Format, model: &str, prompt_tokens: u64) -> Vec<u8> {
    let per = vectors.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(96 + vectors.len() * (48 + per * 12));
    match format {
        Format::OllamaLegacy => {
            out.extend_from_slice(b"{\"embedding\":");
            write_floats(&mut out, vectors.first().map_or(&[][..], Vec::as_slice));
            out.push(b'}');
            return out;
        }
        Format::OllamaEmbed => {
            out.extend_from_slice(b"{\"model\":");
            write_str(&mut out, model);
            out.extend_from_slice(b",\"embeddings\":[");
            for (i, v) in vectors.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_floats(&mut out, v);
            }
            out.extend_from_slice(
                format!("],\"total_duration\":0,\"load_duration\":0,\"prompt_eval_count\":{prompt_tokens}}}")
                    .as_bytes(),
            );
            return out;
        }
        Format::GeminiOne => {
            out.extend_from_slice(b"{\"embedding\":{\"values\":");
            write_floats(&mut out, vectors.first().map_or(&[][..], Vec::as_slice));
            out.extend_from_slice(b"}}");
            return out;
        }
        Format::GeminiBatch => {
            out.extend_from_slice(b"{\"embeddings\":[");
            for (i, v) in vectors.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"values\":");
                write_floats(&mut out, v);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
            return out;
        }
        Format::Float | Format::Base64 => {}
    }
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    for (i, v) in vectors.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"object\":\"embedding\",\"index\":");
        out.extend_from_slice(i.to_string().as_bytes());
        out.extend_from_slice(b",\"embedding\":");
        if format == Format::Base64 {
            out.push(b'"');
            write_base64(&mut out, v);
            out.push(b'"');
        } else {
            write_floats(&mut out, v);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"model\":");
    write_str(&mut out, model);
    out.extend_from_slice(
        format!(
            ",\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"total_tokens\":{prompt_tokens}}}}}"
        )
        .as_bytes(),
    );
    out
}

/// `[x,y,…]`; a value JSON cannot carry (NaN, infinity) as 0.
fn write_floats(out: &mut Vec<u8>, v: &[f64]) {
    out.push(b'[');
    for (j, x) in v.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        let x = if x.is_finite() { *x } else { 0.0 };
        out.extend_from_slice(format!("{x}").as_bytes());
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        parse(&mut s.as_bytes().to_vec(), &Vocabularies::new(Vec::new()))
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(
            err(r#"{"input":"a"}"#),
            "model: required (an embedding model from /v1/models)"
        );
        // Tries: token ids with no vocabulary installed, a negative id, an empty token list,
        // text mixed with ids.
        assert!(
            err(r#"{"model":"m","input":[1,2,3]}"#)
                .starts_with("input: token ids need the cl100k_base vocabulary")
        );
        assert!(
            err(r#"{"model":"m","input":[[1,2]]}"#)
                .starts_with("input[0]: token ids need the cl100k_base vocabulary")
        );
        assert_eq!(
            err(r#"{"model":"m","input":[[1,-2]]}"#),
            "input[0][1]: expected a token id (a whole number)"
        );
        assert_eq!(
            err(r#"{"model":"m","input":[[1],[]]}"#),
            "input[1]: must not be empty"
        );
        assert!(
            err(r#"{"model":"m","input":["a",[1]]}"#).starts_with("input[1]: expected a string")
        );
        assert_eq!(
            err(r#"{"model":"m","input":["a",""]}"#),
            "input[1]: must not be empty"
        );
        assert_eq!(
            err(r#"{"model":"m","input":"a","encoding_format":"hex"}"#),
            "encoding_format: expected float or base64"
        );
        let many = format!(
            r#"{{"model":"m","input":[{}]}}"#,
            vec!["\"x\""; 2049].join(",")
        );
        assert_eq!(err(&many), "input: at most 2048 items per request");
        let ok = parse(
            &mut br#"{"model":"m","input":["abcd","efgh"],"dimensions":256}"#.to_vec(),
            &Vocabularies::new(Vec::new()),
        )
        .unwrap();
        assert_eq!(
            (ok.input_tokens, ok.request.dimensions, ok.format),
            (2, Some(256), Format::Float)
        );
    }

    #[test]
    fn base64_is_little_endian_float32() {
        let body = render(&[vec![1.0, -2.0]], Format::Base64, "m", 3);
        let text = String::from_utf8(body).unwrap();
        // 1.0f32 = 00 00 80 3f, -2.0f32 = 00 00 00 c0.
        assert!(text.contains(r#""embedding":"AACAPwAAAMA=""#), "{text}");
        let floats = String::from_utf8(render(&[vec![0.5]], Format::Float, "m", 3)).unwrap();
        assert!(
            floats.contains(r#""embedding":[0.5]"#) && floats.contains(r#""prompt_tokens":3"#),
            "{floats}"
        );
    }
}
