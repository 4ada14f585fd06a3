//! The module layers, checked from the source: every `crate::<module>` a file names must sit in
//! a lower layer than the file's own module, so imports only run down and no two modules of
//! one layer (the two faces `api` and `admin`; `router`, `upstream` and `store`) know each
//! other. ARCHITECTURE.md draws the same table. Moving a module means changing both.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom to top. A module may name only modules of earlier rows.
const LAYERS: &[&[&str]] = &[
    &[
        "alloc", "time", "json", "crypto", "net", "netguard", "outcome", "throttle",
    ],
    &["logging"],
    &["config", "catalog", "chat"],
    &["http", "store", "router", "upstream"],
    &["wire", "health", "discover", "metrics", "backup"],
    &["app", "front"],
    &["api", "admin"],
    &["routes"],
    &["server"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

/// The `crate::<name>` references in code (comment lines are skipped: a doc may point anywhere).
fn references(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in source.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

/// Every upward or sideways edge in `files` (module, source text), as `from -> to` lines.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (module, source) in files {
        let Some(own) = layer_of(module) else {
            bad.push(format!("{module}: not in any layer; add it to LAYERS"));
            continue;
        };
        for target in references(source) {
            if &target == module {
                continue;
            }
            match layer_of(&target) {
                Some(l) if l < own => {}
                Some(_) => bad.push(format!("{module} -> {target}")),
                None => bad.push(format!("{module} -> {target}: unknown module")),
            }
        }
    }
    bad
}

/// (top-level module, text) for every file under `src/`, `lib.rs` and `main.rs` left out.
fn sources() -> Vec<(String, String)> {
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
            let first = rel.components().next().expect("a first component");
            let module = first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if module == "lib" || module == "main" {
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
    let bad = violations(&files);
    assert!(
        bad.is_empty(),
        "imports that do not run down the layers:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn every_module_has_a_layer() {
    let modules: BTreeSet<String> = sources().into_iter().map(|(m, _)| m).collect();
    for m in &modules {
        assert!(layer_of(m).is_some(), "{m} is in no layer");
    }
}

#[test]
fn the_check_catches_an_edge_put_back() {
    // The edges this layering removed: each must be reported if it comes back.
    for (module, line) in [
        ("api", "use crate::admin::AdminState;"),
        ("admin", "use crate::api::ClientError;"),
        ("app", "pub admin: crate::admin::AdminState,"),
        ("admin", "crate::cli::validate_key(&c, p, k)"),
        ("upstream", "use crate::router::KeyInfo;"),
        ("router", "use crate::upstream::Reply;"),
        ("upstream", "use crate::http::Responder;"),
    ] {
        let files = vec![(module.to_string(), format!("fn f() {{}}\n{line}\n"))];
        assert_eq!(violations(&files).len(), 1, "{module}: {line}");
    }
    let fine = vec![(
        "api".to_string(),
        "//! see crate::admin\nuse crate::app::App;\nuse crate::api::x;\n".to_string(),
    )];
    assert!(violations(&fine).is_empty());
}
