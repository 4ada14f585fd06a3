//! Name resolution that never blocks a coroutine worker. `getaddrinfo` blocks its thread, so
//! lookups run on one dedicated resolver thread; the asking coroutine parks on a `may` channel.
//! Answers are cached for a minute in a small bounded map. IP literals skip all of this.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

const TTL: Duration = Duration::from_secs(60);
const MAX_ENTRIES: usize = 256;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

type Answer = std::io::Result<Vec<SocketAddr>>;

struct Lookup {
    host: String,
    port: u16,
    reply: may::sync::mpsc::Sender<Answer>,
}

/// (host, port) → (addresses, when they were resolved).
type Cache = HashMap<(String, u16), (Vec<SocketAddr>, Instant)>;

#[derive(Clone)]
pub struct CachingResolver {
    cache: Arc<Mutex<Cache>>,
    requests: std_mpsc::Sender<Lookup>,
}

impl std::fmt::Debug for CachingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachingResolver")
    }
}

impl CachingResolver {
    pub fn new() -> CachingResolver {
        let (tx, rx) = std_mpsc::channel::<Lookup>();
        thread::Builder::new()
            .name("dns".into())
            .spawn(move || {
                for job in rx {
                    let answer = (job.host.as_str(), job.port)
                        .to_socket_addrs()
                        .map(|it| it.collect());
                    let _ = job.reply.send(answer);
                }
            })
            .expect("spawning the resolver thread");
        CachingResolver {
            cache: Arc::default(),
            requests: tx,
        }
    }

    fn lookup(&self, host: &str, port: u16, timeout: Duration) -> Answer {
        if let Some((addrs, at)) = self.cache.lock().get(&(host.to_string(), port))
            && at.elapsed() < TTL
        {
            return Ok(addrs.clone());
        }
        let (tx, rx) = may::sync::mpsc::channel();
        self.requests
            .send(Lookup {
                host: host.to_string(),
                port,
                reply: tx,
            })
            .map_err(|_| std::io::Error::other("resolver thread stopped"))?;
        let addrs = rx
            .recv_timeout(timeout)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DNS timeout"))??;
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, (_, at)| at.elapsed() < TTL);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert((host.to_string(), port), (addrs.clone(), Instant::now()));
        Ok(addrs)
    }
}

impl Default for CachingResolver {
    fn default() -> Self {
        CachingResolver::new()
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .ok_or_else(|| ureq::Error::BadUri(format!("no host in {uri}")))?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                let wait = timeout.not_zero().map(|d| *d).unwrap_or(DEFAULT_TIMEOUT);
                self.lookup(bare, port, wait).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::TimedOut {
                        ureq::Error::Timeout(timeout.reason)
                    } else {
                        ureq::Error::HostNotFound
                    }
                })?
            }
        };
        let mut out = self.empty();
        for a in addrs.into_iter().take(16) {
            out.push(a);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}
