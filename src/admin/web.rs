//! The dashboard's static files, embedded in the binary by `build.rs` (gzipped there too).
//!
//! Asset URLs carry `?v=<version>`, a hash of every embedded file: an asset requested with the
//! current version is cached for a year (`immutable`), anything else revalidates by `ETag`. A
//! client that accepts gzip gets the compressed bytes (`Vary: Accept-Encoding`). Every page
//! response carries a strict CSP (`default-src 'self'`, no inline script or style) and refuses
//! framing.

use super::AdminError;
use crate::http::{Request, Responder};

struct Asset {
    /// The path under `web/` (`pages/keys.js`).
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
    /// The body gzipped, where that is smaller.
    gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What the dashboard weighs: every file as sent uncompressed, and as sent to a browser
/// (gzipped where that is smaller).
pub fn weight() -> (usize, usize) {
    ASSETS.iter().fold((0, 0), |(plain, sent), a| {
        (
            plain + a.body.len(),
            sent + a.gzip.map_or(a.body.len(), <[u8]>::len),
        )
    })
}

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// Whether `Accept-Encoding` allows gzip (a `q=0` refuses it).
fn accepts_gzip(req: &Request<'_>) -> bool {
    req.header("accept-encoding").is_some_and(|v| {
        v.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

fn not_modified(req: &Request<'_>, etag: &str) -> bool {
    req.header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// `GET /` (and `/index.html`): the page shell; always revalidated.
pub fn index(req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let a = find("index.html").expect("build.rs embeds web/index.html");
    send(req, res, "no-cache", a)
}

/// `GET /assets/<name>`.
pub fn asset(req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let name = req.path.strip_prefix("/assets/").unwrap_or("");
    let Some(a) = find(name).filter(|a| a.name != "index.html") else {
        return Err(AdminError::NoRoute);
    };
    let cache = if req.query_param("v") == Some(VERSION) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    send(req, res, cache, a)
}

fn send(
    req: &Request<'_>,
    res: &mut Responder<'_>,
    cache: &str,
    a: &Asset,
) -> Result<(), AdminError> {
    let gzip = a.gzip.filter(|_| accepts_gzip(req));
    // Each encoding is its own representation, with its own tag.
    let etag = match gzip {
        Some(_) => format!("\"{VERSION}-gz\""),
        None => format!("\"{VERSION}\""),
    };
    let fresh = not_modified(req, &etag);
    let mut head = res
        .head(if fresh { 304 } else { 200 })
        .header("ETag", &etag)
        .header("Cache-Control", cache)
        .header("Vary", "Accept-Encoding")
        .header("Content-Security-Policy", CSP)
        .header("X-Content-Type-Options", "nosniff")
        .header("X-Frame-Options", "DENY")
        .header("Referrer-Policy", "no-referrer");
    if gzip.is_some() && !fresh {
        head = head.header("Content-Encoding", "gzip");
    }
    let _ = if fresh {
        head.no_body()
    } else {
        head.body(a.mime, gzip.unwrap_or(a.body))
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_embedded_with_its_version_and_compressed_where_it_pays() {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        for want in [
            "index.html",
            "app.js",
            "ui.js",
            "pages/models.js",
            "app.css",
        ] {
            assert!(names.contains(&want), "{want} not in {names:?}");
        }
        for a in ASSETS {
            let text = String::from_utf8_lossy(a.body);
            assert!(!text.contains("{{v}}"), "{} keeps a placeholder", a.name);
            if let Some(gz) = a.gzip {
                assert!(
                    gz.len() < a.body.len() && gz.starts_with(&[0x1f, 0x8b]),
                    "{}",
                    a.name
                );
            }
        }
        let index = String::from_utf8_lossy(find("index.html").unwrap().body);
        assert!(
            index.contains(&format!("/assets/app.js?v={VERSION}")),
            "{index}"
        );
        let (plain, sent) = weight();
        assert!(sent * 2 < plain, "{sent} of {plain} bytes sent");
    }
}
