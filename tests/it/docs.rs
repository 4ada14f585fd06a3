//! README facts that would drift are generated: from the built-in catalog its platform table
//! (free-tier status, checked date, source, what is on by default) and its embedding models,
//! from `config::vars` its table of flags and environment variables.
//! A mismatch fails with the text README should hold; `FREELLMAPI_BLESS=1 cargo test --test
//! it docs::` writes it in.

use std::fmt::Write;
use std::path::Path;

use freellmapi::catalog::{Catalog, Kind};
use freellmapi::config::vars;

fn readme_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")
}

/// Checks (or, blessed, rewrites) README's text between `<!-- {name} -->` and `<!-- /{name} -->`
/// on lines of their own.
fn check_block(name: &str, expected: &str) {
    check_between(
        &format!("<!-- {name} -->\n"),
        &format!("<!-- /{name} -->"),
        name,
        expected,
    );
}

/// The same for a value inside a sentence: `<!-- {name} -->value<!-- /{name} -->`.
fn check_inline(name: &str, expected: &str) {
    check_between(
        &format!("<!-- {name} -->"),
        &format!("<!-- /{name} -->"),
        name,
        expected,
    );
}

fn check_between(open: &str, close: &str, name: &str, expected: &str) {
    let path = readme_path();
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(open)
        .unwrap_or_else(|| panic!("README has no {open:?} marker"))
        + open.len();
    let end = start
        + readme[start..]
            .find(close)
            .unwrap_or_else(|| panic!("README has no {close:?} marker"));
    if readme[start..end] == *expected {
        return;
    }
    if std::env::var_os("FREELLMAPI_BLESS").is_some() {
        let fixed = format!("{}{expected}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, fixed).unwrap();
        return;
    }
    panic!(
        "README's {name} block is out of date with what it is made from; it should read:\n\n{expected}\n\
         (FREELLMAPI_BLESS=1 cargo test --test it docs:: writes it)"
    );
}

fn platform_table(c: &Catalog) -> String {
    let mut t = String::from(
        "| platform | free tier | checked | on by default (chat + embedding) |\n|---|---|---|---|\n",
    );
    for (i, p) in c.platforms.iter().enumerate() {
        let tier = p
            .free_tier
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no free_tier record", p.id));
        let on = |kind: Kind| {
            c.models
                .iter()
                .filter(|m| m.platform == i && m.kind == kind && m.enabled && m.serves())
                .count()
        };
        let (chat, embed) = (on(Kind::Chat), on(Kind::Embedding));
        let models = match (chat, embed) {
            (0, 0) if p.keyless => {
                "none (reached without a key; its models come from a sync)".to_string()
            }
            (0, 0) => "none".to_string(),
            (c, 0) => c.to_string(),
            (c, e) => format!("{c} + {e}"),
        };
        let keyless = if p.keyless {
            "; usable without a key once switched on"
        } else {
            ""
        };
        let _ = writeln!(
            t,
            "| {} (`{}`) | **{}**: {}{keyless} | [{}]({}) | {models} |",
            p.name,
            p.id,
            tier.status.as_str(),
            tier.note.replace('|', "\\|"),
            tier.checked,
            tier.source,
        );
    }
    t
}

fn embedding_table(c: &Catalog) -> String {
    let mut t = String::from("| model | platform | dimensions | family |\n|---|---|---|---|\n");
    for m in c
        .models
        .iter()
        .filter(|m| m.kind == Kind::Embedding && m.enabled && m.serves())
    {
        let dims = match (m.dimensions, m.flexible_dimensions) {
            (Some(d), true) => format!("{d} (or fewer)"),
            (Some(d), false) => d.to_string(),
            (None, _) => "the provider's".to_string(),
        };
        let _ = writeln!(
            t,
            "| `{}` | {} | {dims} | {} |",
            m.model_id,
            c.platforms[m.platform].name,
            m.family.as_deref().unwrap_or(&m.model_id),
        );
    }
    t
}

fn transcription_table(c: &Catalog) -> String {
    let mut t = String::from("| model | platform | family |\n|---|---|---|\n");
    for m in c
        .models
        .iter()
        .filter(|m| m.kind == Kind::Transcription && m.enabled && m.serves())
    {
        let _ = writeln!(
            t,
            "| `{}` | {} | {} |",
            m.model_id,
            c.platforms[m.platform].name,
            m.family.as_deref().unwrap_or(&m.model_id),
        );
    }
    t
}

fn environment_table() -> String {
    let mut t = String::from("| flag | environment | default | |\n|---|---|---|---|\n");
    for v in vars::ALL {
        let flag = v.flag.map(|f| format!("`{f}`")).unwrap_or_default();
        let _ = writeln!(
            t,
            "| {flag} | `{}` | {} | {} |",
            v.name,
            v.shown_default(),
            v.about
        );
    }
    t
}

/// One test for every block: blessing rewrites one file, so the checks must not run in
/// parallel.
#[test]
fn readme_tables_are_generated() {
    let c = Catalog::builtin();
    check_block("platforms", &platform_table(&c));
    check_block("embeddings", &embedding_table(&c));
    check_block("transcriptions", &transcription_table(&c));
    check_block("environment", &environment_table());
    let (plain, sent) = freellmapi::admin::web::weight();
    check_inline(
        "weight",
        &format!(
            "{} KiB gzipped ({} KiB as files)",
            sent.div_ceil(1024),
            plain.div_ceil(1024)
        ),
    );
}

/// Tries: every `FREELLMAPI_*` name the source mentions (tests included) against the list
/// `--help` and README are made from; a `<PLATFORM>` entry covers its prefix.
#[test]
fn every_variable_the_code_reads_is_listed() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    let mut names = std::collections::BTreeSet::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let mut rest = text.as_str();
                while let Some(i) = rest.find("FREELLMAPI_") {
                    let name: String = rest[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    names.insert(name);
                    rest = &rest[i + 1..];
                }
            }
        }
    }
    assert!(names.len() > 15, "found only {names:?}");
    let listed = |name: &str| {
        vars::ALL
            .iter()
            .any(|v| match v.name.strip_suffix("<PLATFORM>") {
                // The prefix alone is how the code finds such names.
                Some(prefix) => name.starts_with(prefix),
                None => v.name == name,
            })
    };
    // "FREELLMAPI_" alone is prose (`FREELLMAPI_…`), not a name.
    let missing: Vec<_> = names
        .iter()
        .filter(|n| *n != "FREELLMAPI_" && !listed(n))
        .collect();
    assert!(
        missing.is_empty(),
        "read but not in config::vars: {missing:?}"
    );
}

/// Tries: README's `/metrics` table against every surface the counters label.
#[test]
fn the_metrics_table_names_every_surface() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `freellmapi_requests_total`"))
        .expect("README's requests_total row");
    let listed = row
        .split("`surface` (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let names: Vec<&str> = freellmapi::surface::Surface::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(listed, names.join(", "), "README's surfaces, in order");
}
