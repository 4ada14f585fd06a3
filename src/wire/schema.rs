//! JSON Schema → the subset Gemini accepts for function parameters and response schemas.
//!
//! Gemini rejects `additionalProperties`, `$schema`, `$ref`/`$defs`, `const`, `examples`,
//! `default`, `oneOf`/`anyOf` and type unions, among others. The cleaner keeps a short list of
//! keywords Gemini understands, inlines local `$ref`s (cycles and over-deep schemas collapse to
//! a plain object), turns `const` into a one-value enum, `["T","null"]` and nullable unions into
//! `nullable: true`, and keeps the first alternative of any other union. Recursion is bounded.

use simd_json::OwnedValue;
use simd_json::prelude::*;

/// Keywords passed through (after their own values are cleaned).
const KEEP: &[&str] = &[
    "type",
    "format",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
];
const MAX_DEPTH: usize = 32;

/// The cleaned copy of `schema`.
pub fn clean(schema: &OwnedValue) -> OwnedValue {
    let mut refs = Vec::new();
    node(schema, schema, &mut refs, 0)
}

/// True for an object schema with no properties (Gemini refuses those as parameters).
pub fn is_empty_object(schema: &OwnedValue) -> bool {
    schema.get_str("type") == Some("object")
        && schema
            .get("properties")
            .and_then(|p| p.as_object())
            .is_none_or(|p| p.is_empty())
}

fn plain_object() -> OwnedValue {
    let mut o = OwnedValue::object();
    if let Some(m) = o.as_object_mut() {
        m.insert("type".into(), OwnedValue::from("object"));
    }
    o
}

/// Resolves a local JSON pointer such as `#/$defs/Address` or `#/definitions/Address`.
fn resolve<'a>(root: &'a OwnedValue, reference: &str) -> Option<&'a OwnedValue> {
    let path = reference.strip_prefix("#/")?;
    let mut cur = root;
    for seg in path.split('/') {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        cur = cur.get(seg.as_str())?;
    }
    Some(cur)
}

fn node(
    schema: &OwnedValue,
    root: &OwnedValue,
    refs: &mut Vec<String>,
    depth: usize,
) -> OwnedValue {
    let Some(obj) = schema.as_object() else {
        return plain_object();
    };
    if depth > MAX_DEPTH {
        return plain_object();
    }
    let description = obj.get("description").cloned();

    if let Some(reference) = obj.get("$ref").and_then(|r| r.as_str()) {
        let target = resolve(root, reference).filter(|_| !refs.iter().any(|r| r == reference));
        let mut out = match target {
            Some(t) => {
                refs.push(reference.to_string());
                let out = node(t, root, refs, depth + 1);
                refs.pop();
                out
            }
            None => plain_object(),
        };
        inherit_description(&mut out, description);
        return out;
    }

    for union in ["anyOf", "oneOf"] {
        if let Some(alts) = obj.get(union).and_then(|a| a.as_array()) {
            let is_null = |a: &OwnedValue| a.get_str("type") == Some("null");
            let nullable = alts.iter().any(is_null);
            let mut out = match alts.iter().find(|a| !is_null(a)) {
                Some(first) => node(first, root, refs, depth + 1),
                None => plain_object(),
            };
            if let Some(o) = out.as_object_mut()
                && nullable
            {
                o.insert("nullable".into(), OwnedValue::from(true));
            }
            inherit_description(&mut out, description);
            return out;
        }
    }

    if let Some(parts) = obj.get("allOf").and_then(|a| a.as_array()) {
        let mut merged = OwnedValue::object();
        for part in parts {
            merge_into(&mut merged, node(part, root, refs, depth + 1));
        }
        inherit_description(&mut merged, description);
        return merged;
    }

    let mut out = OwnedValue::object_with_capacity(obj.len());
    let Some(o) = out.as_object_mut() else {
        return plain_object();
    };
    for key in KEEP {
        let Some(v) = obj.get(*key) else { continue };
        let cleaned = match *key {
            "properties" => {
                let mut props = OwnedValue::object();
                if let (Some(src), Some(dst)) = (v.as_object(), props.as_object_mut()) {
                    for (name, sub) in src.iter() {
                        dst.insert(name.clone(), node(sub, root, refs, depth + 1));
                    }
                }
                props
            }
            "items" => match v.as_array() {
                Some(list) => list
                    .first()
                    .map(|i| node(i, root, refs, depth + 1))
                    .unwrap_or_else(plain_object),
                None => node(v, root, refs, depth + 1),
            },
            _ => v.clone(),
        };
        o.insert((*key).into(), cleaned);
    }

    // `type: ["string", "null"]` → `type: "string", nullable: true`.
    if let Some(types) = obj.get("type").and_then(|t| t.as_array()) {
        let first = types
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| *t != "null");
        match first {
            Some(t) => o.insert("type".into(), OwnedValue::from(t)),
            None => o.insert("type".into(), OwnedValue::from("string")),
        };
        if types.iter().any(|t| t.as_str() == Some("null")) {
            o.insert("nullable".into(), OwnedValue::from(true));
        }
    }

    // `const` becomes a one-value enum (Gemini enums are strings only).
    if let Some(c) = obj.get("const") {
        if let Some(s) = c.as_str() {
            o.insert("enum".into(), OwnedValue::from(vec![OwnedValue::from(s)]));
            o.entry("type".into())
                .or_insert_with(|| OwnedValue::from("string"));
        } else if c.is_bool() {
            o.entry("type".into())
                .or_insert_with(|| OwnedValue::from("boolean"));
        } else if c.cast_f64().is_some() {
            o.entry("type".into())
                .or_insert_with(|| OwnedValue::from("number"));
        }
    }
    if let Some(e) = o.get("enum").and_then(|e| e.as_array()) {
        if e.iter().all(|v| v.is_str()) {
            o.entry("type".into())
                .or_insert_with(|| OwnedValue::from("string"));
        } else {
            o.remove("enum");
        }
    }

    // Only the formats Gemini documents survive.
    let ty = o
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string();
    if let Some(f) = o.get("format").and_then(|f| f.as_str()) {
        let ok = match ty.as_str() {
            "string" => matches!(f, "enum" | "date-time"),
            "integer" | "number" => matches!(f, "int32" | "int64" | "float" | "double"),
            _ => false,
        };
        if !ok {
            o.remove("format");
        }
    }

    // `required` may only name properties that exist.
    let names: Vec<String> = o
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(req) = o.get("required").and_then(|r| r.as_array()) {
        let kept: Vec<OwnedValue> = req
            .iter()
            .filter(|r| r.as_str().is_some_and(|n| names.iter().any(|x| x == n)))
            .cloned()
            .collect();
        if kept.is_empty() {
            o.remove("required");
        } else {
            o.insert("required".into(), OwnedValue::from(kept));
        }
    }
    if !o.contains_key("type") && o.contains_key("properties") {
        o.insert("type".into(), OwnedValue::from("object"));
    }
    out
}

fn inherit_description(out: &mut OwnedValue, description: Option<OwnedValue>) {
    if let (Some(d), Some(o)) = (description, out.as_object_mut()) {
        o.entry("description".into()).or_insert(d);
    }
}

/// `allOf`: later parts add properties and required names to earlier ones.
fn merge_into(acc: &mut OwnedValue, part: OwnedValue) {
    let (Some(acc), Some(part)) = (acc.as_object_mut(), part.into_object()) else {
        return;
    };
    for (k, v) in part.into_iter() {
        match (k.as_str(), acc.get_mut(k.as_str())) {
            ("properties", Some(existing)) => {
                if let (Some(dst), Some(src)) = (existing.as_object_mut(), v.into_object()) {
                    for (name, sub) in src.into_iter() {
                        dst.insert(name, sub);
                    }
                }
            }
            ("required", Some(existing)) => {
                if let (Some(dst), Some(src)) = (existing.as_array_mut(), v.into_array()) {
                    dst.extend(src);
                }
            }
            (_, Some(_)) => {}
            (_, None) => {
                acc.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> OwnedValue {
        crate::json::parse_value(&mut s.as_bytes().to_vec()).unwrap()
    }

    fn cleaned(s: &str) -> OwnedValue {
        clean(&parse(s))
    }

    #[test]
    fn drops_what_gemini_rejects() {
        let out = cleaned(
            r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","additionalProperties":false,"title":"T",
            "examples":[{"a":1}],"default":{},"$id":"x","properties":{"a":{"type":"string","default":"z","examples":["q"]}},"required":["a"]}"#,
        );
        assert_eq!(
            out,
            parse(r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#)
        );
    }

    #[test]
    fn inlines_refs_and_defs() {
        let out = cleaned(
            r##"{"type":"object","$defs":{"Addr":{"type":"object","properties":{"city":{"type":"string"}}}},
            "properties":{"home":{"$ref":"#/$defs/Addr","description":"where"},"work":{"$ref":"#/definitions/Missing"}}}"##,
        );
        assert_eq!(
            out,
            parse(
                r#"{"type":"object","properties":{"home":{"type":"object","properties":{"city":{"type":"string"}},"description":"where"},"work":{"type":"object"}}}"#
            )
        );
    }

    #[test]
    fn recursive_refs_terminate() {
        let out = cleaned(
            r##"{"$defs":{"Node":{"type":"object","properties":{"next":{"$ref":"#/$defs/Node"}}}},"$ref":"#/$defs/Node"}"##,
        );
        assert_eq!(
            out,
            parse(r#"{"type":"object","properties":{"next":{"type":"object"}}}"#)
        );
    }

    #[test]
    fn const_becomes_an_enum() {
        assert_eq!(
            cleaned(r#"{"const":"fixed"}"#),
            parse(r#"{"type":"string","enum":["fixed"]}"#)
        );
        assert_eq!(cleaned(r#"{"const":3}"#), parse(r#"{"type":"number"}"#));
        assert_eq!(
            cleaned(r#"{"type":"integer","enum":[1,2]}"#),
            parse(r#"{"type":"integer"}"#)
        );
    }

    #[test]
    fn unions_are_simplified() {
        assert_eq!(
            cleaned(r#"{"type":["string","null"]}"#),
            parse(r#"{"type":"string","nullable":true}"#)
        );
        assert_eq!(
            cleaned(r#"{"anyOf":[{"type":"integer"},{"type":"null"}],"description":"n"}"#),
            parse(r#"{"type":"integer","nullable":true,"description":"n"}"#)
        );
        assert_eq!(
            cleaned(r#"{"oneOf":[{"type":"string"},{"type":"number"}]}"#),
            parse(r#"{"type":"string"}"#)
        );
        assert_eq!(
            cleaned(
                r#"{"allOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},{"properties":{"b":{"type":"number"}},"required":["b"]}]}"#
            ),
            parse(
                r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}},"required":["a","b"]}"#
            )
        );
    }

    #[test]
    fn formats_and_required_are_checked() {
        assert_eq!(
            cleaned(r#"{"type":"string","format":"uri"}"#),
            parse(r#"{"type":"string"}"#)
        );
        assert_eq!(
            cleaned(r#"{"type":"string","format":"date-time"}"#),
            parse(r#"{"type":"string","format":"date-time"}"#)
        );
        assert_eq!(
            cleaned(
                r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a","ghost"]}"#
            ),
            parse(r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#)
        );
        assert_eq!(
            cleaned(r#"{"type":"array","items":[{"type":"string"}]}"#),
            parse(r#"{"type":"array","items":{"type":"string"}}"#)
        );
    }

    #[test]
    fn deep_schemas_are_bounded() {
        let mut s = String::from(r#"{"type":"string"}"#);
        for _ in 0..60 {
            s = format!(r#"{{"type":"object","properties":{{"x":{s}}}}}"#);
        }
        let out = cleaned(&s);
        assert!(crate::json::encode(&out).len() < s.len());
        assert!(is_empty_object(&cleaned(
            r#"{"type":"object","properties":{}}"#
        )));
        assert!(!is_empty_object(&cleaned(
            r#"{"type":"object","properties":{"a":{"type":"string"}}}"#
        )));
    }
}
