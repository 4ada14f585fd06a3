//! A TLS front for a mock provider: accepts TLS (the certificate in `tests/tls`, for
//! `localhost` and `127.0.0.1`, signed by `tests/tls/ca.pem`) and passes each request to the
//! plain mock behind it, copying the answer back as it comes (so streams stay streams).
//! Std threads only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

/// The CA that signed the front's certificate: give it to the server as `FREELLMAPI_CA_FILE`.
pub fn ca_file() -> String {
    fixture("ca.pem").display().to_string()
}

/// Starts a TLS front for the plain mock at `plain`; returns its address.
pub fn front(plain: SocketAddr) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = vec![CertificateDer::from_pem_file(fixture("localhost.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(fixture("localhost.key")).unwrap();
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let config = config.clone();
            thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let tls = ServerConnection::new(config).unwrap();
                serve(StreamOwned::new(tls, conn), plain);
            });
        }
    });
    addr
}

/// Requests one after another on one TLS connection, until it ends, over one plain
/// connection to the mock (kept alive as the TLS one is). Each answer is copied by its own
/// framing (`Content-Length`, chunked, or to the end), piece by piece as it arrives.
fn serve(tls: StreamOwned<ServerConnection, TcpStream>, plain: SocketAddr) {
    let mut client = BufReader::new(tls);
    let mut up: Option<BufReader<TcpStream>> = None;
    loop {
        let Some((head, length)) = read_head(&mut client) else {
            return;
        };
        let mut body = vec![0u8; length.unwrap_or(0)];
        if client.read_exact(&mut body).is_err() {
            return;
        }
        let upstream = up.get_or_insert_with(|| BufReader::new(TcpStream::connect(plain).unwrap()));
        upstream.get_mut().write_all(&head).unwrap();
        upstream.get_mut().write_all(&body).unwrap();
        let Some((head, length)) = read_head(upstream) else {
            return;
        };
        let chunked = String::from_utf8_lossy(&head)
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let tls = client.get_mut();
        if send(tls, &head).is_err() {
            return;
        }
        let copied = match (chunked, length) {
            (true, _) => copy_chunked(upstream, tls),
            (false, Some(n)) => copy_exactly(upstream, tls, n),
            // Delimited by the close: copied to the end, and the connection is done.
            (false, None) => {
                let _ = copy_to_end(upstream, tls);
                return;
            }
        };
        if copied.is_err() {
            return;
        }
    }
}

/// A head (through its blank line) and its `Content-Length`, if any.
fn read_head(r: &mut impl BufRead) -> Option<(Vec<u8>, Option<usize>)> {
    let mut head = Vec::new();
    let mut length = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok();
        }
        head.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            return Some((head, length));
        }
    }
}

fn send(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes)?;
    w.flush()
}

/// Copies `n` bytes, each piece as it arrives.
fn copy_exactly(r: &mut impl BufRead, w: &mut impl Write, mut n: usize) -> std::io::Result<()> {
    while n > 0 {
        let piece = r.fill_buf()?;
        if piece.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let take = piece.len().min(n);
        send(w, &piece[..take])?;
        r.consume(take);
        n -= take;
    }
    Ok(())
}

/// Copies everything until the sender closes, each piece as it arrives.
fn copy_to_end(r: &mut impl BufRead, w: &mut impl Write) -> std::io::Result<()> {
    loop {
        let piece = r.fill_buf()?;
        if piece.is_empty() {
            return Ok(());
        }
        let n = piece.len();
        send(w, piece)?;
        r.consume(n);
    }
}

/// Copies a chunked body through its last chunk and trailer, chunk by chunk.
fn copy_chunked(r: &mut impl BufRead, w: &mut impl Write) -> std::io::Result<()> {
    loop {
        let mut size_line = String::new();
        r.read_line(&mut size_line)?;
        send(w, size_line.as_bytes())?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        if size == 0 {
            // The trailer, through its blank line.
            loop {
                let mut line = String::new();
                if r.read_line(&mut line)? == 0 || line == "\r\n" {
                    return send(w, b"\r\n");
                }
                send(w, line.as_bytes())?;
            }
        }
        copy_exactly(r, w, size + 2)?;
    }
}
