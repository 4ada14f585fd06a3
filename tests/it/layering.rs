//! The module layers, checked from the source against the table in ARCHITECTURE.md: every
//! module a file reaches (`crate::x`, `crate::{x, y::z}`, `super::super::x`) must sit in a lower
//! layer than the file's own, so imports only run down and no two modules of one layer know
//! each other. The table is read from ARCHITECTURE.md, so moving a module is one edit there.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, bottom first, from ARCHITECTURE.md's "Layers" table: rows `| n | modules |`
/// whose module names are the backticked words outside parentheses.
fn layers() -> Vec<Vec<String>> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("reading ARCHITECTURE.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .expect("ARCHITECTURE.md has a \"## Layers\" section");
    let mut rows: Vec<(usize, Vec<String>)> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let n = cells.get(1)?.parse().ok()?;
            Some((n, top_level_code_words(cells.get(2)?)))
        })
        .collect();
    rows.sort_by_key(|(n, _)| *n);
    assert!(
        rows.iter().enumerate().all(|(i, (n, _))| i == *n),
        "layers are numbered 0, 1, 2… without gaps"
    );
    rows.into_iter().map(|(_, m)| m).collect()
}

/// `` `app` (the state, `X`) · `front` `` → `[app, front]`.
fn top_level_code_words(cell: &str) -> Vec<String> {
    let (mut depth, mut out, mut word, mut in_tick) = (0usize, Vec::new(), String::new(), false);
    for c in cell.chars() {
        match c {
            '`' if in_tick => {
                in_tick = false;
                if depth == 0 {
                    out.push(std::mem::take(&mut word));
                }
                word.clear();
            }
            '`' => in_tick = true,
            _ if in_tick => word.push(c),
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    out
}

/// The text with comments, string and char literals blanked (newlines kept), so braces and
/// paths in them are not read as code.
fn code_only(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend(s.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }))
    };
    while i < b.len() {
        let rest = &b[i..];
        let end = if rest.starts_with(b"//") {
            rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            rest.windows(2)
                .position(|w| w == b"*/")
                .map_or(rest.len(), |p| p + 2)
        } else if rest[0] == b'r'
            && matches!(rest.get(1), Some(b'"') | Some(b'#'))
            && starts_token(b, i)
        {
            // r"…", r#"…"#: the closing quote followed by as many hashes.
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                1
            } else {
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let body = 2 + hashes;
                rest[body..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(rest.len(), |p| body + p + close.len())
            }
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(rest.len())
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            match rest.get(1) {
                Some(b'\\') => rest[2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(1, |p| p + 3),
                Some(_) if rest.get(2) == Some(&b'\'') => 3,
                _ => 1,
            }
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        if end == 1 {
            // Not a literal after all (a lifetime, a raw identifier).
            out.push(rest[0]);
        } else {
            blank(&mut out, &rest[..end]);
        }
        i += end;
    }
    String::from_utf8(out).expect("blanking keeps UTF-8 (only ASCII is replaced)")
}

/// Whether `b[i]` begins a token (`br"…"` counts its `b`).
fn starts_token(b: &[u8], i: usize) -> bool {
    match i.checked_sub(1).map(|j| b[j]) {
        None => true,
        Some(b'b') => i < 2 || !is_ident(b[i - 2]),
        Some(c) => !is_ident(c),
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The top-level modules `source` reaches, for a file at module path `own` (`["store",
/// "keys"]` for src/store/keys.rs). Inline `mod x { … }` blocks deepen the path for `super`.
fn references(own: &[String], source: &str) -> BTreeSet<String> {
    let code = code_only(source);
    let tokens = tokenize(&code);
    let mut out = BTreeSet::new();
    // Inline modules open at brace depth d: their count is added to the file's depth.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i] {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(i + 2) == Some(&"{") => {
                inline.push(depth);
            }
            "crate" | "super"
                if tokens.get(i + 1) == Some(&"::") && (i == 0 || tokens[i - 1] != "::") =>
            {
                let mut ups = 0;
                let mut j = i;
                let root = tokens[i] == "crate";
                if !root {
                    while tokens.get(j) == Some(&"super") && tokens.get(j + 1) == Some(&"::") {
                        ups += 1;
                        j += 2;
                    }
                    let here = own.len() + inline.len();
                    if ups < here {
                        // Still inside this file's own top-level module.
                        i = j;
                        continue;
                    }
                } else {
                    j += 2;
                }
                for name in first_segments(&tokens, j) {
                    out.insert(name);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The first path segment at `tokens[at]`: one name, or each item's first name in a
/// `{a, b::c, d::{e}}` group.
fn first_segments(tokens: &[&str], at: usize) -> Vec<String> {
    match tokens.get(at) {
        Some(&"{") => {
            let mut names = Vec::new();
            let (mut depth, mut item_start) = (0usize, true);
            for t in &tokens[at + 1..] {
                match *t {
                    "{" => depth += 1,
                    "}" if depth == 0 => break,
                    "}" => depth -= 1,
                    "," if depth == 0 => item_start = true,
                    name if item_start && depth == 0 => {
                        if name != "self" && name.bytes().all(is_ident) {
                            names.push(name.to_string());
                        }
                        item_start = false;
                    }
                    _ => {}
                }
            }
            names
        }
        Some(name) if name.bytes().all(is_ident) => vec![name.to_string()],
        _ => Vec::new(),
    }
}

/// Identifiers, `::`, and single punctuation characters.
fn tokenize(code: &str) -> Vec<&str> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if is_ident(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push(&code[start..i]);
        } else if code[i..].starts_with("::") {
            out.push("::");
            i += 2;
        } else {
            let len = code[i..].chars().next().map_or(1, char::len_utf8);
            out.push(&code[i..i + len]);
            i += len;
        }
    }
    out
}

/// Every upward or sideways edge in `files` (module path, source text), as `from -> to` lines.
fn violations(layers: &[Vec<String>], files: &[(Vec<String>, String)]) -> Vec<String> {
    let layer_of = |m: &str| layers.iter().position(|row| row.iter().any(|x| x == m));
    let mut bad = Vec::new();
    for (path, source) in files {
        let module = &path[0];
        let Some(own) = layer_of(module) else {
            bad.push(format!("{module}: in no layer of ARCHITECTURE.md"));
            continue;
        };
        for target in references(path, source) {
            if &target == module {
                continue;
            }
            match layer_of(&target) {
                Some(l) if l < own => {}
                Some(_) => bad.push(format!("{} -> {target}", path.join("::"))),
                None => bad.push(format!("{} -> {target}: unknown module", path.join("::"))),
            }
        }
    }
    bad
}

/// (module path, text) for every file under `src/`, `lib.rs` and `main.rs` left out.
fn sources() -> Vec<(Vec<String>, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("reading src/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src/");
            let mut module: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("reading a source file");
            files.push((module, text));
        }
    }
    files
}

#[test]
fn imports_only_run_down() {
    let files = sources();
    assert!(files.len() > 40, "found only {} source files", files.len());
    let bad = violations(&layers(), &files);
    assert!(
        bad.is_empty(),
        "imports that do not run down the layers of ARCHITECTURE.md:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn every_module_has_a_layer_and_every_layer_a_module() {
    let modules: BTreeSet<String> = sources().into_iter().map(|(m, _)| m[0].clone()).collect();
    let listed: BTreeSet<String> = layers().into_iter().flatten().collect();
    let missing: Vec<_> = modules.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&modules).collect();
    assert!(
        missing.is_empty(),
        "modules in no layer of ARCHITECTURE.md: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md layers name modules that do not exist: {stale:?}"
    );
}

fn at(path: &str) -> Vec<String> {
    path.split("::").map(String::from).collect()
}

#[test]
fn the_check_catches_an_edge_put_back() {
    let layers = layers();
    // Each must be reported if it comes back, in every way a path can be written.
    for (module, line, edges) in [
        ("api::proxy", "use crate::admin::AdminState;", 1),
        ("admin", "use crate::api::ClientError;", 1),
        ("app", "pub admin: crate::admin::AdminState,", 1),
        ("admin::keys", "crate::cli::validate_key(&c, p, k)", 1),
        ("upstream", "use crate::router::KeyInfo;", 1),
        ("router::chain", "use crate::upstream::Reply;", 1),
        ("upstream::pool", "use crate::http::Responder;", 1),
        ("store::requestlog", "use crate::chat::Surface;", 1),
        ("app", "use crate::{admin, api::ClientError};", 2),
        (
            "app",
            "use crate::{\n    catalog::Catalog,\n    api::{self, ClientError},\n};",
            1,
        ),
        ("admin::keys", "use super::super::api::ClientError;", 1),
        ("store", "use super::api::X;", 1),
    ] {
        let files = vec![(at(module), format!("fn f() {{}}\n{line}\n"))];
        assert_eq!(violations(&layers, &files).len(), edges, "{module}: {line}");
    }
    // What is not an edge: a doc or a string naming a module, paths inside the file's own
    // module, `super` out of an inline test module.
    let fine = [
        (
            "api",
            "//! see crate::admin\nuse crate::app::App;\nuse crate::api::x;\n",
        ),
        (
            "api::proxy",
            "let s = \"crate::admin\"; let r = r#\"super::super::cli\"#;",
        ),
        (
            "store::keys",
            "#[cfg(test)]\nmod tests {\n    use super::super::tests::temp_store;\n}\n",
        ),
        (
            "admin::keys",
            "use super::{AdminError, body};\nfn f<'a>(c: char) -> bool { c == '{' }\n",
        ),
    ];
    for (module, text) in fine {
        let files = vec![(at(module), text.to_string())];
        assert!(violations(&layers, &files).is_empty(), "{module}: {text}");
    }
}
