//! Embeddings (`/v1/embeddings`): the client's request checked field by field, and vectors
//! written back as floats or, as the official SDKs ask by default, base64 of little-endian
//! `float32`s.

use simd_json::prelude::*;

use crate::chat::{Invalid, check_model_name, invalid, parse_body, wrong_type};
use crate::json::write_str;
use crate::wire::embeddings::EmbedRequest;

/// The most inputs one request may carry.
pub const MAX_INPUTS: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Float,
    Base64,
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

pub fn parse(bytes: &mut [u8]) -> Result<Parsed, Invalid> {
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
    let token_arrays = || {
        invalid(
            "invalid_value",
            "input: token arrays are not supported; send text".into(),
        )
    };
    let input = body
        .get("input")
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid("missing_required_parameter", "input: required".into()))?;
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
        let mut out = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_string()),
                None if item.is_number() || item.is_array() => return Err(token_arrays()),
                None => return Err(wrong_type(format!("input[{i}]"), "a string", item)),
            }
        }
        out
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
    let tokens: Vec<u64> = inputs
        .iter()
        .map(|s| (s.chars().count() as u64).div_ceil(4))
        .collect();
    let longest = tokens
        .iter()
        .copied()
        .enumerate()
        .max_by_key(|(_, t)| *t)
        .unwrap_or_default();
    let chars: usize = inputs.iter().map(|s| s.chars().count()).sum();
    Ok(Parsed {
        longest,
        model,
        request: EmbedRequest { inputs, dimensions },
        format,
        input_tokens: (chars as u64).div_ceil(4),
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
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    for (i, v) in vectors.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"object\":\"embedding\",\"index\":");
        out.extend_from_slice(i.to_string().as_bytes());
        out.extend_from_slice(b",\"embedding\":");
        match format {
            Format::Float => {
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
            Format::Base64 => {
                out.push(b'"');
                write_base64(&mut out, v);
                out.push(b'"');
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        parse(&mut s.as_bytes().to_vec())
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
        assert_eq!(
            err(r#"{"model":"m","input":[1,2,3]}"#),
            "input: token arrays are not supported; send text"
        );
        assert_eq!(
            err(r#"{"model":"m","input":[[1,2]]}"#),
            "input: token arrays are not supported; send text"
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
        let ok = parse(&mut br#"{"model":"m","input":["abcd","efgh"],"dimensions":256}"#.to_vec())
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
