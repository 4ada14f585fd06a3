//! A client's `tools` list in the shape upstreams take: OpenAI function tools. Each front says
//! how one of its tools reads (where the name and schema are, which tools it drops); the walk
//! over the list, the field paths in errors and the function tool it becomes are here, once.

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use crate::chat::{Invalid, wrong_type};

/// One tool as a front read it.
pub(super) enum Tool<'a> {
    /// Passed on as an OpenAI function tool.
    Function {
        name: &'a str,
        parameters: OwnedValue,
        description: Option<&'a str>,
        strict: Option<bool>,
    },
    /// Not passed on (a tool that runs on the client API's own servers); named in
    /// `X-Freellmapi-Dropped-Tools`.
    Dropped(String),
}

/// The function tools kept and the names dropped from `tools` (absent or null: none).
/// `read` gets each entry with its path (`tools[2]`) for its errors.
pub(super) fn translate<'a>(
    tools: Option<&'a OwnedValue>,
    read: impl Fn(&'a OwnedValue, &str) -> Result<Tool<'a>, Invalid>,
) -> Result<(Vec<OwnedValue>, Vec<String>), Invalid> {
    let Some(tools) = tools.filter(|t| !t.is_null()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let list = tools
        .as_array()
        .ok_or_else(|| wrong_type("tools", "an array", tools))?;
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for (i, t) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        if !t.is_object() {
            return Err(wrong_type(&path, "an object", t));
        }
        match read(t, &path)? {
            Tool::Dropped(name) => dropped.push(name),
            Tool::Function {
                name,
                parameters,
                description,
                strict,
            } => {
                let mut function = json!({ "name": name, "parameters": parameters });
                let f = function.as_object_mut().expect("an object");
                if let Some(d) = description {
                    f.insert("description".into(), OwnedValue::from(d));
                }
                if let Some(s) = strict {
                    f.insert("strict".into(), OwnedValue::from(s));
                }
                kept.push(json!({ "type": "function", "function": function }));
            }
        }
    }
    Ok((kept, dropped))
}
