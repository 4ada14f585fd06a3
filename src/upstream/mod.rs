//! Calls to provider APIs: one ureq agent (rustls with ring and webpki roots) over a `may`
//! transport, with connection reuse, `TCP_NODELAY` and connect / first-byte / idle / total
//! timeouts.
//!
//! Owns the agent and the moment a provider key is plaintext: [`Upstream::send`] opens the
//! sealed key, places it where the platform's auth style says, sends, and wipes it. Returns
//! the status, headers and body handle; classification is the caller's business. Errors carry
//! what happened (timeout, refused, TLS), never a URL with a key in it.

pub mod classify;
pub mod pool;
pub mod proxy;
pub mod resolver;
pub mod sse;
pub mod transport;

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use parking_lot::RwLock;
use ureq::Agent;
use ureq::Proxy;
use ureq::http::HeaderMap;
use ureq::http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, TRANSFER_ENCODING,
};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};

use pool::PoolingConnector;
use proxy::Proxies;
use transport::{Lane, MayConnector};

use crate::catalog::{Auth, KeyFormat, Platform};
use crate::crypto::{MasterKey, Secret};

pub use transport::watch;

// Header names and values of every call, made once: from a `&str` each is parsed and checked
// again per request.
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const JSON_OR_EVENTS: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(90),
            total: Duration::from_secs(600),
        }
    }
}

/// What went wrong on the way to a response. Carries the kind, never the URL or a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Dns,
    Connect,
    Tls,
    Timeout,
    /// The connection broke mid-exchange or the body ended early.
    Io,
    /// The response was larger than we accept.
    TooLarge,
    /// The body trickled: too slow to arrive within the attempt's share of the budget.
    TooSlow,
    /// Not HTTP we can read.
    Protocol,
    /// Our own client disconnected; the call was abandoned on purpose.
    ClientGone,
    /// The stored key could not be opened (wrong master key or tampered row).
    KeyUnreadable,
    /// The address is one the proxy never connects to (link-local, cloud metadata).
    Blocked,
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamError::Dns => "DNS lookup failed",
            UpstreamError::Connect => "connection failed",
            UpstreamError::Tls => "TLS handshake failed",
            UpstreamError::Timeout => "timed out",
            UpstreamError::Io => "connection broke mid-response",
            UpstreamError::TooLarge => "response too large",
            UpstreamError::TooSlow => "response too slow to arrive in time",
            UpstreamError::Protocol => "malformed HTTP response",
            UpstreamError::ClientGone => "client disconnected",
            UpstreamError::KeyUnreadable => "stored key could not be decrypted",
            UpstreamError::Blocked => "address refused (link-local or cloud metadata)",
        })
    }
}

impl From<ureq::Error> for UpstreamError {
    fn from(e: ureq::Error) -> Self {
        if watch::client_gone() {
            return UpstreamError::ClientGone;
        }
        match e {
            ureq::Error::Timeout(_) => UpstreamError::Timeout,
            ureq::Error::HostNotFound => UpstreamError::Dns,
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) => UpstreamError::Tls,
            ureq::Error::BodyExceedsLimit(_) => UpstreamError::TooLarge,
            ureq::Error::ConnectionFailed => UpstreamError::Connect,
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::HostUnreachable
                | std::io::ErrorKind::NetworkUnreachable
                | std::io::ErrorKind::AddrNotAvailable => UpstreamError::Connect,
                std::io::ErrorKind::TimedOut => UpstreamError::Timeout,
                std::io::ErrorKind::PermissionDenied => UpstreamError::Blocked,
                _ => UpstreamError::Io,
            },
            _ => UpstreamError::Protocol,
        }
    }
}

/// The request the wire layer built, still without credentials.
pub struct Outbound {
    /// May contain `{account_id}`, filled from an `account_id:api_token` key.
    pub url: String,
    pub body: Vec<u8>,
    /// Overrides the default first-byte timeout (catalog data per platform).
    pub first_byte: Option<Duration>,
}

/// A request whose body is read from a stream as it is sent (an audio upload from the spool),
/// still without credentials.
pub struct Upload<'b> {
    /// May contain `{account_id}`, filled from an `account_id:api_token` key.
    pub url: String,
    pub content_type: String,
    /// The body's exact length, sent as its `Content-Length` (ureq fails the call if the
    /// reader ends short of it).
    pub len: u64,
    pub body: Box<dyn Read + 'b>,
    /// Overrides the default first-byte timeout (catalog data per platform).
    pub first_byte: Option<Duration>,
}

/// A response whose body has not been read yet.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    body: ureq::Body,
}

impl Reply {
    /// Whether the body's end is marked (chunked, or a `Content-Length`), so reading to it
    /// leaves the connection reusable. A body that ends only when the connection closes
    /// (HTTP/1.0 style) can never be pooled.
    pub fn end_is_marked(&self) -> bool {
        let chunked = self.headers.get_all(TRANSFER_ENCODING).iter().any(|v| {
            v.as_bytes()
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
        });
        chunked || self.headers.contains_key(CONTENT_LENGTH)
    }

    /// Takes the headers out (for classification after the body is read).
    pub fn take_headers(&mut self) -> HeaderMap {
        std::mem::take(&mut self.headers)
    }

    /// Reads the whole body, refusing more than `limit` bytes: at once, without reading any
    /// of it, when the declared `Content-Length` already says more.
    pub fn read_body(mut self, limit: u64) -> Result<Vec<u8>, UpstreamError> {
        let declared = self
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(UpstreamError::TooLarge);
        }
        // Sized up front from the declared length (a claim, so only up to a point) rather
        // than grown by doubling from nothing: one allocation for a usual answer, not five.
        let mut out = Vec::with_capacity(declared.map_or(PRESIZE, |n| n.min(PRESIZE_MAX)) as usize);
        let mut reader = self.body.with_config().limit(limit).reader();
        let mut pace: Option<(Pace, watch::Narrowed)> = None;
        loop {
            if out.capacity() - out.len() < PRESIZE as usize {
                out.reserve(out.len().max(PRESIZE as usize));
            }
            let start = out.len();
            // One read brings at most what ureq buffered: only this window is zeroed for it.
            out.resize(out.capacity().min(start + READ_WINDOW), 0);
            let read = reader.read(&mut out[start..]);
            out.truncate(start + *read.as_ref().unwrap_or(&0));
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    if pace.as_ref().is_some_and(|(p, _)| p.share_spent()) {
                        return Err(UpstreamError::TooSlow);
                    }
                    return Err(UpstreamError::from(ureq::Error::from(e)));
                }
            };
            if n == 0 {
                return Ok(out);
            }
            match &pace {
                // The first bytes: from now on the body has its share of the time left.
                None => pace = Pace::start(declared).map(|p| (p, watch::narrow(p.share_end))),
                Some((p, _)) => p.check(out.len() as u64)?,
            }
        }
    }

    /// The body as a byte stream (for SSE). Dropping it before the end closes the connection.
    pub fn into_reader(self) -> impl Read {
        self.body.into_reader()
    }
}

/// How a non-streamed body must arrive once its first bytes did: a provider that trickles
/// (bytes come, no answer forms) must not hold the request until its budget is gone while a
/// healthy provider waits next in line. The body gets half the time the request has left
/// (at least [`MIN_BODY_SHARE`]); a body of declared length fails as soon as its pace, after
/// [`PACE_GRACE`], cannot bring the rest within that share. A body of unknown length has only
/// the share: providers that pad a slow answer with whitespace are not cut short by a rate.
#[derive(Debug, Clone, Copy)]
struct Pace {
    started: std::time::Instant,
    share_end: std::time::Instant,
    declared: Option<u64>,
}

const MIN_BODY_SHARE: Duration = Duration::from_secs(5);
const PACE_GRACE: Duration = Duration::from_secs(1);

impl Pace {
    /// `None` outside a client request (health probes, listings have their own timeouts).
    fn start(declared: Option<u64>) -> Option<Pace> {
        let left = watch::time_left()?;
        let started = std::time::Instant::now();
        let share = (left / 2).max(MIN_BODY_SHARE).min(left);
        Some(Pace {
            started,
            share_end: started + share,
            declared,
        })
    }

    fn share_spent(&self) -> bool {
        std::time::Instant::now() >= self.share_end
    }

    /// `Err(TooSlow)` when `got` bytes so far show the declared rest cannot come in time.
    fn check(&self, got: u64) -> Result<(), UpstreamError> {
        let Some(declared) = self.declared else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        let elapsed = now.duration_since(self.started);
        if elapsed < PACE_GRACE || got >= declared {
            return Ok(());
        }
        let rest = (declared - got) as f64;
        let rate = got as f64 / elapsed.as_secs_f64();
        let needs = Duration::from_secs_f64((rest / rate).min(1e9));
        if now + needs > self.share_end {
            return Err(UpstreamError::TooSlow);
        }
        Ok(())
    }
}

/// The most of the buffer one read of a body is offered.
const READ_WINDOW: usize = 32 * 1024;

/// A body of unknown length starts with this much room.
const PRESIZE: u64 = 4096;
/// A declared length reserves at most this much before any of the body has arrived.
const PRESIZE_MAX: u64 = 256 * 1024;

/// A provider key as a call needs it: still sealed, and the key's own proxy if it has one.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    pub sealed: &'a [u8],
    pub proxy: Option<&'a str>,
}

/// At most this many keys' own proxies have an agent (a pool) at once; past it the cache
/// starts over (calls under way keep their agent).
const MAX_KEY_PROXIES: usize = 64;

pub struct Upstream {
    timeouts: Timeouts,
    tls: TlsConfig,
    resolver: resolver::CachingResolver,
    /// Calls with no proxy of their own (the global proxy, if any, is in its config): one
    /// agent (one pool) per coroutine worker, whose connections that worker serves
    /// ([`transport::Lane`]).
    lanes: Vec<Agent>,
    /// Platforms with their own proxy.
    by_platform: HashMap<String, Agent>,
    /// Keys with their own proxy, by proxy URL: built on a key's first call. The lock is
    /// held only to find or add an agent, never across a call.
    by_key_proxy: RwLock<HashMap<Box<str>, Agent>>,
    /// The configured proxies, credentials hidden, for the dashboard.
    configured: Vec<(Option<String>, String)>,
}

impl Upstream {
    /// `roots`: DER certificates to verify TLS with instead of the built-in Mozilla roots
    /// (empty: the built-in ones).
    pub fn new(timeouts: Timeouts, proxies: &Proxies, roots: &[Vec<u8>]) -> Upstream {
        let resolver = resolver::CachingResolver::new();
        let tls = tls_config(roots);
        let agent = |proxy: &Option<Proxy>, lane: Option<Lane>| {
            build_agent(&timeouts, &tls, &resolver, proxy.clone(), lane)
        };
        let count = may::config().get_workers().max(1);
        Upstream {
            lanes: (0..count)
                .map(|index| agent(&proxies.global, Some(Lane { index, count })))
                .collect(),
            by_platform: proxies
                .per_platform
                .iter()
                .map(|(p, proxy)| (p.clone(), agent(&Some(proxy.clone()), None)))
                .collect(),
            by_key_proxy: RwLock::default(),
            configured: proxies.described(),
            timeouts,
            tls,
            resolver,
        }
    }

    /// The proxies set for every platform (`None`) or for one, credentials hidden.
    pub fn configured_proxies(&self) -> &[(Option<String>, String)] {
        &self.configured
    }

    /// Runs `call` with the agent for this call: the key's own proxy's, else the platform's,
    /// else the one of this coroutine's lane.
    fn with_agent<R>(
        &self,
        platform: &Platform,
        key_proxy: Option<&str>,
        call: impl FnOnce(&Agent) -> Result<R, UpstreamError>,
    ) -> Result<R, UpstreamError> {
        let Some(url) = key_proxy else {
            return call(
                self.by_platform
                    .get(&platform.id)
                    .unwrap_or_else(|| &self.lanes[Lane::current(self.lanes.len()).index]),
            );
        };
        let found = self.by_key_proxy.read().get(url).cloned();
        let agent = match found {
            Some(agent) => agent,
            None => {
                let Ok(proxy) = Proxy::new(url) else {
                    log::warn!(
                        "the proxy {} of a {} key is not usable",
                        crate::config::redact_proxy_url(url),
                        platform.id
                    );
                    return Err(UpstreamError::Connect);
                };
                let agent =
                    build_agent(&self.timeouts, &self.tls, &self.resolver, Some(proxy), None);
                let mut map = self.by_key_proxy.write();
                if map.len() >= MAX_KEY_PROXIES {
                    map.clear();
                }
                map.entry(url.into()).or_insert(agent).clone()
            }
        };
        call(&agent)
    }
}

/// The TLS settings: verified against `roots` when given, else the built-in Mozilla roots.
fn tls_config(roots: &[Vec<u8>]) -> TlsConfig {
    let builder = TlsConfig::builder();
    if roots.is_empty() {
        return builder.build();
    }
    let certs: Vec<Certificate<'static>> = roots
        .iter()
        .map(|der| Certificate::from_der(der).to_owned())
        .collect();
    builder
        .root_certs(RootCerts::new_with_certs(&certs))
        .build()
}

/// An agent (its own connection pool) for calls through `proxy`, or direct; its own sockets
/// on `lane`'s worker when given.
fn build_agent(
    timeouts: &Timeouts,
    tls: &TlsConfig,
    resolver: &resolver::CachingResolver,
    proxy: Option<Proxy>,
    lane: Option<Lane>,
) -> Agent {
    let tcp = lane.map_or_else(MayConnector::default, MayConnector::on_lane);
    let chain = proxy::SocksConnector
        .chain(proxy::ForwardConnector)
        .chain(ConnectProxyConnector::default())
        .chain(tcp)
        .chain(RustlsConnector::default());
    Agent::with_parts(
        agent_config(timeouts, tls, proxy),
        PoolingConnector::new(chain, pool::Limits::default()),
        resolver.clone(),
    )
}

fn agent_config(
    timeouts: &Timeouts,
    tls: &TlsConfig,
    proxy: Option<Proxy>,
) -> ureq::config::Config {
    Agent::config_builder()
        .tls_config(tls.clone())
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(proxy)
        .no_delay(true)
        .user_agent(concat!("freellmapi/", env!("CARGO_PKG_VERSION")))
        .timeout_global(Some(timeouts.total))
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.first_byte))
        .timeout_per_read(Some(timeouts.idle))
        .input_buffer_size(transport::INPUT_BUFFER)
        .output_buffer_size(transport::OUTPUT_BUFFER)
        // Idle connections are kept by our own pool (see `pool`), most recently used first.
        .max_idle_connections(0)
        .build()
}

impl Upstream {
    /// Sends a chat request for `platform` with `key`.
    pub fn send(
        &self,
        platform: &Platform,
        key: KeyRef,
        master: &MasterKey,
        out: &Outbound,
    ) -> Result<Reply, UpstreamError> {
        let creds = credentials(platform, Some(key.sealed), master, &out.url)?;
        self.with_agent(platform, key.proxy, |agent| {
            let mut req = agent.post(creds.url.as_str());
            // A request-level config is a copy of the agent's: only made when the platform
            // needs it.
            if let Some(first_byte) = out.first_byte {
                req = req.config().timeout_recv_response(Some(first_byte)).build();
            }
            let req = req
                .header(CONTENT_TYPE, JSON)
                .header(ACCEPT, JSON_OR_EVENTS);
            let response = with_auth(req, &creds, platform).send(&out.body[..])?;
            Ok(reply(response))
        })
    }

    /// Sends an upload for `platform` with `key`, its body read from `up.body` as it goes.
    pub fn send_upload(
        &self,
        platform: &Platform,
        key: KeyRef,
        master: &MasterKey,
        mut up: Upload<'_>,
    ) -> Result<Reply, UpstreamError> {
        let creds = credentials(platform, Some(key.sealed), master, &up.url)?;
        self.with_agent(platform, key.proxy, |agent| {
            let mut req = agent.post(creds.url.as_str());
            if let Some(first_byte) = up.first_byte {
                req = req.config().timeout_recv_response(Some(first_byte)).build();
            }
            let req = req
                .header(CONTENT_TYPE, up.content_type.as_str())
                .header(CONTENT_LENGTH, up.len)
                .header(ACCEPT, JSON);
            let body = ureq::SendBody::from_reader(&mut *up.body);
            let response = with_auth(req, &creds, platform).send(body)?;
            Ok(reply(response))
        })
    }

    /// A key probe: `method` on `url` (with `{account_id}` filled from the key), the whole
    /// exchange within `timeout`. Returns the status and up to 64 KiB of body.
    pub fn probe(
        &self,
        platform: &Platform,
        key: Option<KeyRef>,
        master: &MasterKey,
        method: &str,
        url: &str,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), UpstreamError> {
        self.call_small(platform, key, master, method, url, timeout, 64 * 1024)
    }

    /// An authenticated `GET url` (a model listing; `{account_id}` is filled from the key):
    /// status and up to `limit` bytes.
    pub fn get(
        &self,
        platform: &Platform,
        key: Option<KeyRef>,
        master: &MasterKey,
        url: &str,
        timeout: Duration,
        limit: u64,
    ) -> Result<(u16, Vec<u8>), UpstreamError> {
        self.call_small(platform, key, master, "GET", url, timeout, limit)
    }

    /// One short authenticated call whose whole answer is read (at most `limit` bytes).
    #[allow(clippy::too_many_arguments)]
    fn call_small(
        &self,
        platform: &Platform,
        key: Option<KeyRef>,
        master: &MasterKey,
        method: &str,
        url: &str,
        timeout: Duration,
        limit: u64,
    ) -> Result<(u16, Vec<u8>), UpstreamError> {
        let creds = credentials(platform, key.map(|k| k.sealed), master, url)?;
        let response = self.with_agent(platform, key.and_then(|k| k.proxy), |agent| {
            Ok(if method.eq_ignore_ascii_case("POST") {
                let req = agent
                    .post(creds.url.as_str())
                    .config()
                    .timeout_global(Some(timeout))
                    .build();
                with_auth(req, &creds, platform).send(&b"{}"[..])?
            } else {
                let req = agent
                    .get(creds.url.as_str())
                    .config()
                    .timeout_global(Some(timeout))
                    .build();
                with_auth(req, &creds, platform).call()?
            })
        })?;
        let reply = reply(response);
        let status = reply.status;
        Ok((status, reply.read_body(limit).unwrap_or_default()))
    }
}

fn reply(response: ureq::http::Response<ureq::Body>) -> Reply {
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// A request's final URL and its auth header, built from the opened key.
struct Credentials {
    url: String,
    /// The header carrying the key; in a `Secret` so our copy is wiped (ureq keeps its own
    /// for the request's life).
    header: Option<(HeaderName, Secret)>,
}

/// Opens the key (when the platform uses one), splits `account_id:api_token` keys, fills the
/// URL and builds the auth header. The URL never carries the secret part: only an account id
/// may be substituted into it.
/// Text a provider sent with every given key removed from it, whatever the key's shape (a
/// provider that echoes the key it was sent, prefix or not, must not hand it to our client).
/// `keys` are sealed keys with their platforms: the attempt's own and every other stored
/// one. Each is opened only for the comparison; this is the rare path of a relayed 400.
pub fn scrub_keys<'k>(
    text: &str,
    keys: impl IntoIterator<Item = (&'k Platform, &'k [u8])>,
    master: &MasterKey,
) -> String {
    /// Shorter pieces are not secrets on their own (and would mangle ordinary words).
    const MIN_SECRET: usize = 8;
    let mut out = text.to_string();
    for (platform, sealed) in keys {
        let Ok(secret) = master.open(sealed, &platform.id) else {
            continue;
        };
        let Some(whole) = secret.as_str() else {
            continue;
        };
        // An `account_id:api_token` key is sent in two parts (the token, and the account in
        // the URL); either may come back.
        let parts = std::iter::once(whole).chain(whole.split(':'));
        for part in parts.filter(|p| p.len() >= MIN_SECRET) {
            if out.contains(part) {
                out = out.replace(part, "[redacted]");
            }
        }
    }
    out
}

fn credentials(
    platform: &Platform,
    sealed_key: Option<&[u8]>,
    master: &MasterKey,
    url: &str,
) -> Result<Credentials, UpstreamError> {
    // An empty sealed key is a keyless platform's stand-in: the call goes without one.
    let sealed = match (platform.auth, sealed_key) {
        (Auth::None, _) | (_, None | Some([])) => {
            return Ok(Credentials {
                url: url.to_string(),
                header: None,
            });
        }
        (_, Some(sealed)) => sealed,
    };
    let secret = master
        .open(sealed, &platform.id)
        .map_err(|_| UpstreamError::KeyUnreadable)?;
    let text = secret.as_str().ok_or(UpstreamError::KeyUnreadable)?;
    let (url, token) = match platform.key_format {
        KeyFormat::Plain => (url.to_string(), text),
        KeyFormat::AccountToken => {
            let (account, token) = text.split_once(':').ok_or(UpstreamError::KeyUnreadable)?;
            (url.replace("{account_id}", account), token)
        }
    };
    let header = match platform.auth {
        Auth::Bearer => Some((
            AUTHORIZATION,
            Secret::new([b"Bearer ", token.as_bytes()].concat()),
        )),
        Auth::GoogApiKey => Some((GOOG_API_KEY, Secret::new(token.as_bytes().to_vec()))),
        Auth::None => None,
    };
    Ok(Credentials { url, header })
}

fn with_auth<B>(
    mut req: ureq::RequestBuilder<B>,
    creds: &Credentials,
    platform: &Platform,
) -> ureq::RequestBuilder<B> {
    if let Some((name, value)) = &creds.header {
        req = req.header(name, value.as_bytes());
    }
    for (name, value) in &platform.extra_headers {
        req = req.header(name.as_str(), value.as_str());
    }
    req
}
