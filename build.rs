//! Embeds the dashboard (`web/`): every file with its MIME type, gzip-compressed here so the
//! server sends compressed bytes without compressing anything at run time, and `{{v}}` in the
//! text files replaced by a hash of all of them, so every asset URL changes when any file does.
//! Writes `$OUT_DIR/web_assets.rs`, which `src/admin/web.rs` includes.

use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=web");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let web = Path::new("web");
    let mut files = Vec::new();
    collect(web, web, &mut files);
    files.sort();

    // FNV-1a over names and contents: stable across builds and toolchains.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, bytes) in &files {
        for b in name.bytes().chain(bytes.iter().copied()) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let version = format!("{hash:016x}");

    let mut table = String::new();
    for (name, bytes) in &files {
        let mime = mime(name);
        let body = if mime.starts_with("text/") || mime.starts_with("image/svg") {
            String::from_utf8(bytes.clone())
                .unwrap_or_else(|_| panic!("web/{name} is not UTF-8"))
                .replace("{{v}}", &version)
                .into_bytes()
        } else {
            bytes.clone()
        };
        let plain = out.join("web").join(name);
        std::fs::create_dir_all(plain.parent().unwrap()).unwrap();
        std::fs::write(&plain, &body).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&body).unwrap();
        let gz = gz.finish().unwrap();
        let gzip = if gz.len() < body.len() {
            let path = out.join("web").join(format!("{name}.gz"));
            std::fs::write(&path, &gz).unwrap();
            format!("Some(include_bytes!({:?}))", path.display().to_string())
        } else {
            "None".to_string()
        };
        table.push_str(&format!(
            "    Asset {{ name: {name:?}, mime: {mime:?}, body: include_bytes!({:?}), gzip: {gzip} }},\n",
            plain.display().to_string()
        ));
    }
    let code = format!(
        "/// A hash of every dashboard file: the `v` of asset URLs and the ETag.\n\
         const VERSION: &str = {version:?};\n\
         const ASSETS: &[Asset] = &[\n{table}];\n"
    );
    std::fs::write(out.join("web_assets.rs"), code).unwrap();
}

/// Every file under `dir`, as (path relative to `root` with `/`, contents).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
            continue;
        }
        let name = path
            .strip_prefix(root)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        out.push((name, std::fs::read(&path).unwrap()));
    }
}

fn mime(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        other => panic!("web/{name}: no MIME type for {other:?}; add one in build.rs"),
    }
}
