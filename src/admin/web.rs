//! The dashboard's static files, embedded in the binary.
//!
//! `index.html` names its assets as `/assets/<file>?v=<version>`, where the version is a hash
//! of every embedded file: an asset requested with the current version is cached for a year
//! (`immutable`), anything else revalidates by `ETag`. Every page response carries a strict
//! CSP (`default-src 'self'`, no inline script or style) and refuses framing.

use std::sync::OnceLock;

use ring::digest;

use super::AdminError;
use crate::http::{Request, Responder};

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("../../web/app.css"),
    },
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/app.js"),
    },
    Asset {
        name: "pages.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/pages.js"),
    },
    Asset {
        name: "charts.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/charts.js"),
    },
    Asset {
        name: "favicon.svg",
        mime: "image/svg+xml",
        body: include_bytes!("../../web/favicon.svg"),
    },
];

const INDEX: &str = include_str!("../../web/index.html");

const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Built {
    version: String,
    index: Vec<u8>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(INDEX.as_bytes());
        for a in ASSETS {
            ctx.update(a.name.as_bytes());
            ctx.update(a.body);
        }
        let version = crate::crypto::to_hex(&ctx.finish().as_ref()[..8]);
        let index = INDEX.replace("{{v}}", &version).into_bytes();
        Built { version, index }
    })
}

fn not_modified(req: &Request<'_>, etag: &str) -> bool {
    req.header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// `GET /` (and `/index.html`): the page shell; always revalidated.
pub fn index(req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let b = built();
    let etag = format!("\"{}\"", b.version);
    send(
        req,
        res,
        &etag,
        "no-cache",
        "text/html; charset=utf-8",
        &b.index,
    )
}

/// `GET /assets/<name>`.
pub fn asset(req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let name = req.path.strip_prefix("/assets/").unwrap_or("");
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return Err(AdminError::NoRoute);
    };
    let b = built();
    let etag = format!("\"{}\"", b.version);
    let cache = if req.query_param("v") == Some(b.version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    send(req, res, &etag, cache, a.mime, a.body)
}

fn send(
    req: &Request<'_>,
    res: &mut Responder<'_>,
    etag: &str,
    cache: &str,
    mime: &str,
    body: &[u8],
) -> Result<(), AdminError> {
    let fresh = not_modified(req, etag);
    let head = res
        .head(if fresh { 304 } else { 200 })
        .header("ETag", etag)
        .header("Cache-Control", cache)
        .header("Content-Security-Policy", CSP)
        .header("X-Content-Type-Options", "nosniff")
        .header("X-Frame-Options", "DENY")
        .header("Referrer-Policy", "no-referrer");
    let _ = if fresh {
        head.no_body()
    } else {
        head.body(mime, body)
    };
    Ok(())
}
