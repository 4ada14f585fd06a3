//! Typed access to admin request bodies with errors that name the field (`label: expected
//! string, got a number`). Unknown fields are refused rather than ignored, so a typo in a script
//! (`enable` for `enabled`) is an error, not a silent no-op.

use simd_json::OwnedValue;
use simd_json::prelude::*;

use super::AdminError;
use crate::json::{self, JsonError, type_name};

/// A field error in the API's error shape.
pub fn bad(path: &str, message: impl std::fmt::Display) -> AdminError {
    AdminError::Invalid {
        code: "invalid_field",
        message: if path.is_empty() {
            message.to_string()
        } else {
            format!("{path}: {message}")
        },
    }
}

/// Parses a request body as JSON (depth-bounded) and returns the value.
pub fn parse(bytes: &mut [u8]) -> Result<OwnedValue, AdminError> {
    if json::exceeds_depth(bytes, json::MAX_DEPTH) {
        return Err(json_error(JsonError::TooDeep));
    }
    json::parse_value(bytes).map_err(json_error)
}

fn json_error(e: JsonError) -> AdminError {
    AdminError::Invalid {
        code: "invalid_json",
        message: e.to_string(),
    }
}

/// The one string field a body must hold (`{"password": "…"}`), any other field refused.
pub fn only_string(bytes: &mut [u8], field: &str) -> Result<String, AdminError> {
    let value = parse(bytes)?;
    Ok(Fields::new(&value, "", &[field])?
        .req_str(field)?
        .to_string())
}

/// One JSON object with a path prefix for messages (`""` at the top, `[2]` in an array).
pub struct Fields<'v> {
    obj: &'v simd_json::owned::Object,
    path: String,
}

impl<'v> Fields<'v> {
    /// `value` must be an object whose keys are all in `allowed`.
    pub fn new(value: &'v OwnedValue, path: &str, allowed: &[&str]) -> Result<Self, AdminError> {
        let Some(obj) = value.as_object() else {
            let at = if path.is_empty() { "body" } else { path };
            return Err(bad(
                at,
                format!("expected an object, got {}", type_name(value)),
            ));
        };
        if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(
                &join(path, k),
                format!("unknown field; expected one of {}", allowed.join(", ")),
            ));
        }
        Ok(Fields {
            obj,
            path: path.to_string(),
        })
    }

    fn get(&self, key: &str) -> Option<&'v OwnedValue> {
        self.obj.get(key)
    }

    fn wrong(&self, key: &str, want: &str, got: &OwnedValue) -> AdminError {
        bad(
            &join(&self.path, key),
            format!("expected {want}, got {}", type_name(got)),
        )
    }

    pub fn missing(&self, key: &str) -> AdminError {
        bad(&join(&self.path, key), "required")
    }

    pub fn str(&self, key: &str) -> Result<Option<&'v str>, AdminError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a string", v)),
        }
    }

    pub fn req_str(&self, key: &str) -> Result<&'v str, AdminError> {
        self.str(key)?.ok_or_else(|| self.missing(key))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, AdminError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "true or false", v)),
        }
    }

    /// A non-negative integer up to `max`.
    pub fn uint(&self, key: &str, max: u64) -> Result<Option<u64>, AdminError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                Some(_) => Err(bad(
                    &join(&self.path, key),
                    format!("must be at most {max}"),
                )),
                None => Err(self.wrong(key, "a non-negative integer", v)),
            },
        }
    }

    /// An edit of an optional integer: absent → `None` (unchanged), `null` → `Some(None)`
    /// (no limit), a number → `Some(Some(n))`.
    pub fn uint_or_null(&self, key: &str, max: u64) -> Result<Option<Option<u64>>, AdminError> {
        match self.get(key) {
            Some(v) if v.is_null() => Ok(Some(None)),
            _ => Ok(self.uint(key, max)?.map(Some)),
        }
    }

    /// An edit of an optional string: absent → `None` (unchanged), `null` → `Some(None)`
    /// (cleared), a string → `Some(Some(s))`.
    pub fn str_or_null(&self, key: &str) -> Result<Option<Option<&'v str>>, AdminError> {
        match self.get(key) {
            Some(v) if v.is_null() => Ok(Some(None)),
            _ => Ok(self.str(key)?.map(Some)),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.obj.contains_key(key)
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: AdminError) -> String {
        match e {
            AdminError::Invalid { message, .. } => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field_and_the_types() {
        let v = parse(&mut br#"{"label":3,"enabled":"yes","n":-1,"x":null}"#.to_vec()).unwrap();
        let f = Fields::new(&v, "", &["label", "enabled", "n", "x", "key"]).unwrap();
        assert_eq!(
            msg(f.str("label").unwrap_err()),
            "label: expected a string, got a number"
        );
        assert_eq!(
            msg(f.bool("enabled").unwrap_err()),
            "enabled: expected true or false, got a string"
        );
        assert!(msg(f.uint("n", 10).unwrap_err()).starts_with("n: expected a non-negative"));
        assert_eq!(f.uint_or_null("x", 10).unwrap(), Some(None));
        assert_eq!(f.uint_or_null("absent", 10).unwrap(), None);
        assert_eq!(msg(f.req_str("key").unwrap_err()), "key: required");
        let e = msg(Fields::new(&v, "[2]", &["label"]).err().unwrap());
        assert!(e.starts_with("[2]."), "{e}");
        assert!(e.contains(": unknown field; expected one of label"), "{e}");
        let arr = parse(&mut b"[1]".to_vec()).unwrap();
        assert_eq!(
            msg(Fields::new(&arr, "", &[]).err().unwrap()),
            "body: expected an object, got an array"
        );
        assert!(parse(&mut b"{".to_vec()).is_err());
        assert!(parse(&mut "[".repeat(200).into_bytes()).is_err());
    }
}
