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
/// Answers by port, then host: a cached lookup takes the host as a `&str` and copies the
/// addresses straight into ureq's fixed-size list, so it allocates nothing.
type Cache = HashMap<u16, HashMap<Box<str>, (Vec<SocketAddr>, Instant)>>;

/// ureq takes at most this many addresses per name.
const MAX_ADDRS: usize = 16;

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

    /// Resolves `host` (through the cache) into `out`.
    fn lookup(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
        out: &mut ResolvedSocketAddrs,
    ) -> std::io::Result<()> {
        if let Some((addrs, at)) = self.cache.lock().get(&port).and_then(|m| m.get(host))
            && at.elapsed() < TTL
        {
            fill(out, addrs);
            return Ok(());
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
        fill(out, &addrs);
        let mut cache = self.cache.lock();
        if cache.values().map(HashMap::len).sum::<usize>() >= MAX_ENTRIES {
            for hosts in cache.values_mut() {
                hosts.retain(|_, (_, at)| at.elapsed() < TTL);
            }
            if cache.values().map(HashMap::len).sum::<usize>() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache
            .entry(port)
            .or_default()
            .insert(host.into(), (addrs, Instant::now()));
        Ok(())
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.lock().values().map(HashMap::len).sum()
    }
}

fn fill(out: &mut ResolvedSocketAddrs, addrs: &[SocketAddr]) {
    for &a in addrs.iter().take(MAX_ADDRS) {
        out.push(a);
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
        let mut out = self.empty();
        match bare.parse::<IpAddr>() {
            Ok(ip) => out.push(SocketAddr::new(ip, port)),
            Err(_) => {
                let wait = timeout.not_zero().map(|d| *d).unwrap_or(DEFAULT_TIMEOUT);
                self.lookup(bare, port, wait, &mut out).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::TimedOut {
                        ureq::Error::Timeout(timeout.reason)
                    } else {
                        ureq::Error::HostNotFound
                    }
                })?
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(r: &CachingResolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().unwrap();
        let config = Config::default();
        r.resolve(&uri, &config, NextTimeout::default())
            .map(|a| a.iter().copied().collect())
    }

    /// Tries: IPv4 and bracketed IPv6 literals (no lookup, nothing cached), a name from the
    /// hosts file twice (one cache entry, the same answer) and the same name on another port
    /// (its own entry). No name that needs a DNS server: the tests run without a network.
    #[test]
    fn literals_skip_the_cache_and_names_are_cached_per_port() {
        let r = CachingResolver::new();
        let v4 = resolve(&r, "http://127.0.0.1:8080/v1").unwrap();
        assert_eq!(v4, vec!["127.0.0.1:8080".parse().unwrap()]);
        let v6 = resolve(&r, "https://[::1]/v1").unwrap();
        assert_eq!(v6, vec!["[::1]:443".parse().unwrap()]);
        assert_eq!(r.cached(), 0);

        let first = resolve(&r, "http://localhost:9/v1").unwrap();
        assert!(!first.is_empty() && first.iter().all(|a| a.port() == 9));
        assert_eq!(r.cached(), 1);
        assert_eq!(resolve(&r, "http://localhost:9/v1").unwrap(), first);
        assert_eq!(r.cached(), 1);
        let other = resolve(&r, "http://localhost:10/v1").unwrap();
        assert!(other.iter().all(|a| a.port() == 10));
        assert_eq!(r.cached(), 2);
    }
}
