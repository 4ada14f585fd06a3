//! README facts that would drift are generated from the built-in catalog: its platform table
//! (free-tier status, checked date, source, what is on by default) and its embedding models.
//! A mismatch fails with the text README should hold; `FREELLMAPI_BLESS=1 cargo test --test
//! it docs::` writes it in.

use std::fmt::Write;
use std::path::Path;

use freellmapi::catalog::{Catalog, Kind};

fn readme_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")
}

/// Checks (or, blessed, rewrites) README's text between `<!-- {name} -->` and `<!-- /{name} -->`.
fn check_block(name: &str, expected: &str) {
    let path = readme_path();
    let readme = std::fs::read_to_string(&path).unwrap();
    let (open, close) = (format!("<!-- {name} -->\n"), format!("<!-- /{name} -->"));
    let start = readme
        .find(&open)
        .unwrap_or_else(|| panic!("README has no {open:?} marker"))
        + open.len();
    let end = start
        + readme[start..]
            .find(&close)
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
        "README's {name} block is out of date with src/catalog/catalog.json; it should read:\n\n{expected}\n\
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

/// One test for both blocks: blessing rewrites one file, so the checks must not run in parallel.
#[test]
fn readme_tables_are_the_catalogs() {
    let c = Catalog::builtin();
    check_block("platforms", &platform_table(&c));
    check_block("embeddings", &embedding_table(&c));
}
