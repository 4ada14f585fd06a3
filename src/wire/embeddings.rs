//! Embeddings on the wire: the OpenAI-compatible `POST {base}/embeddings` (Mistral, Cohere's
//! compatibility API, NVIDIA, Cloudflare, GitHub Models) and Gemini's `batchEmbedContents`,
//! read back as plain vectors in input order.

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use super::WireError;
use crate::catalog::{Model, Platform, Wire};
use crate::json;
use crate::upstream::Outbound;

/// Gemini takes at most this many inputs per `batchEmbedContents` call.
pub const GEMINI_MAX_BATCH: usize = 100;

/// An embeddings request as every platform needs it.
pub struct EmbedRequest {
    pub inputs: Vec<String>,
    /// A smaller vector length, for models that allow one.
    pub dimensions: Option<u32>,
}

/// Vectors in input order, with the provider's token count when it gives one.
pub struct Embedded {
    pub vectors: Vec<Vec<f64>>,
    pub prompt_tokens: Option<u64>,
}

pub fn outbound(
    platform: &Platform,
    model: &Model,
    req: &EmbedRequest,
) -> Result<Outbound, WireError> {
    let (url, body) = match platform.wire {
        Wire::Openai | Wire::Cloudflare => {
            let mut body = json!({
                "model": model.model_id.as_str(),
                "input": req.inputs.clone(),
                "encoding_format": "float"
            });
            if let (Some(d), Some(o)) = (req.dimensions, body.as_object_mut()) {
                o.insert(
                    platform.dimensions_field.as_str().into(),
                    OwnedValue::from(d),
                );
            }
            (
                format!("{}/embeddings", platform.base_url),
                json::encode(&body),
            )
        }
        Wire::Gemini => {
            if req.inputs.len() > GEMINI_MAX_BATCH {
                return Err(WireError::Unsupported(
                    "Gemini embeds at most 100 inputs per request",
                ));
            }
            let name = format!("models/{}", model.model_id);
            let requests: Vec<OwnedValue> = req
                .inputs
                .iter()
                .map(|text| {
                    let mut r = json!({ "model": name.as_str(), "content": { "parts": [{ "text": text.as_str() }] } });
                    if let (Some(d), Some(o)) = (req.dimensions, r.as_object_mut()) {
                        o.insert("outputDimensionality".into(), OwnedValue::from(d));
                    }
                    r
                })
                .collect();
            let url = super::gemini::url(&platform.base_url, &model.model_id, false)
                .replace(":generateContent", ":batchEmbedContents");
            (url, json::encode(&json!({ "requests": requests })))
        }
    };
    Ok(Outbound {
        url,
        body,
        first_byte: platform.first_byte_timeout,
    })
}

fn floats(v: &OwnedValue) -> Result<Vec<f64>, WireError> {
    v.as_array()
        .ok_or(WireError::Malformed)?
        .iter()
        .map(|x| x.cast_f64().ok_or(WireError::Malformed))
        .collect()
}

/// Reads a 2xx body; `expected` is how many vectors the request asked for.
pub fn read(
    platform: &Platform,
    mut body: Vec<u8>,
    expected: usize,
) -> Result<Embedded, WireError> {
    let v = json::parse_object(&mut body).map_err(|_| WireError::Malformed)?;
    let out = match platform.wire {
        Wire::Openai | Wire::Cloudflare => {
            let Some(data) = v.get_array("data") else {
                return Err(if v.get("error").is_some() {
                    WireError::UpstreamError
                } else {
                    WireError::Malformed
                });
            };
            let mut vectors: Vec<Option<Vec<f64>>> = vec![None; data.len()];
            for (i, item) in data.iter().enumerate() {
                let at = item.get_u64("index").map_or(i, |n| n as usize);
                let slot = vectors.get_mut(at).ok_or(WireError::Malformed)?;
                *slot = Some(floats(item.get("embedding").ok_or(WireError::Malformed)?)?);
            }
            Embedded {
                vectors: vectors
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or(WireError::Malformed)?,
                prompt_tokens: v.get("usage").and_then(|u| u.get_u64("prompt_tokens")),
            }
        }
        Wire::Gemini => {
            let list = v.get_array("embeddings").ok_or(WireError::Malformed)?;
            Embedded {
                vectors: list
                    .iter()
                    .map(|e| floats(e.get("values").ok_or(WireError::Malformed)?))
                    .collect::<Result<_, _>>()?,
                prompt_tokens: None,
            }
        }
    };
    if out.vectors.len() != expected || out.vectors.iter().any(Vec::is_empty) {
        return Err(WireError::Malformed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn both_formats_round_trip() {
        let c = Catalog::builtin();
        let google = &c.platforms[c.platform_index("google").unwrap()];
        let m = &c.models[c.find_model("gemini-embedding-001").unwrap()];
        let req = EmbedRequest {
            inputs: vec!["a".into(), "b".into()],
            dimensions: Some(768),
        };
        let out = outbound(google, m, &req).unwrap();
        assert!(
            out.url
                .ends_with("/models/gemini-embedding-001:batchEmbedContents"),
            "{}",
            out.url
        );
        let body = String::from_utf8(out.body).unwrap();
        assert!(
            body.contains(r#""outputDimensionality":768"#)
                && body.contains(r#""model":"models/gemini-embedding-001""#),
            "{body}"
        );
        let e = read(
            google,
            br#"{"embeddings":[{"values":[0.5,1]},{"values":[-2,0.25]}]}"#.to_vec(),
            2,
        )
        .unwrap();
        assert_eq!(e.vectors, vec![vec![0.5, 1.0], vec![-2.0, 0.25]]);
        assert!(
            read(google, br#"{"embeddings":[{"values":[1]}]}"#.to_vec(), 2).is_err(),
            "a short answer is malformed"
        );

        let mistral = &c.platforms[c.platform_index("mistral").unwrap()];
        let e = read(
            mistral,
            br#"{"data":[{"index":1,"embedding":[3]},{"index":0,"embedding":[1.5]}],"usage":{"prompt_tokens":4}}"#.to_vec(),
            2,
        )
        .unwrap();
        assert_eq!(
            e.vectors,
            vec![vec![1.5], vec![3.0]],
            "put back in input order"
        );
        assert_eq!(e.prompt_tokens, Some(4));
        let many = EmbedRequest {
            inputs: vec![String::new(); 101],
            dimensions: None,
        };
        assert!(matches!(
            outbound(google, m, &many),
            Err(WireError::Unsupported(_))
        ));
    }
}
