//! The idle upstream connections of one agent, handed out most recently used first.
//!
//! ureq's own pool hands out the connection that has waited longest. Under a steady trickle
//! every idle connection then serves in turn and none ever ages out, and each request meets
//! the coldest one: its socket, its TLS state and the provider's side of it have all idled the
//! longest. It is also the one most likely closed meanwhile by the provider's keep-alive
//! timeout, which costs a new connection and TLS handshake. Measured on paced streams after a
//! load of 16 at once left 16 connections idle: the first frame came 15–45 µs later than with
//! one. This pool hands out the connection returned last. Connections a burst left behind
//! sink to the bottom and close once they pass [`MAX_IDLE_AGE`]. ureq's own pool is kept empty
//! (`max_idle_connections(0)`).
//!
//! How a connection comes back: ureq asks a transport `is_open` just before it would pool it.
//! That happens only once the whole response was read with nothing left over. When its pool is
//! full, as an empty pool always is, it drops the transport right after. So a [`Pooled`]
//! transport whose last call was an `is_open` that said yes comes back here when dropped. One
//! dropped after any other call (a failed, abandoned or half-read exchange) is closed. ureq
//! asks nothing else of `is_open` while its pool is empty.
//!
//! Owns only idle connections; a connection in use belongs to its call. The lock is held to
//! find, add or cut entries, never across a system call: liveness checks and closes happen
//! after it is released.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ureq::Proxy;
use ureq::http::uri::{Authority, Scheme};
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

/// How long a connection may stay idle before it is closed instead of reused. Providers close
/// idle connections after some tens of seconds; a connection past this is likely gone.
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(30);
/// Idle connections kept per destination: as many as calls to one provider at once on one
/// worker that a busy LAN sees, so a burst does not end in a burst of new handshakes.
pub const MAX_IDLE_PER_HOST: usize = 16;
/// Idle connections kept in all.
pub const MAX_IDLE: usize = 64;

/// How many idle connections a pool keeps, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_host: usize,
    pub total: usize,
    pub max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_host: MAX_IDLE_PER_HOST,
            total: MAX_IDLE,
            max_age: MAX_IDLE_AGE,
        }
    }
}

/// Where a connection leads: what ureq's pool told connections apart by. Shared by the
/// connections to one place (an `Arc` each, not a copy of the URI's bytes each).
#[derive(Debug)]
struct Dest {
    scheme: Option<Scheme>,
    authority: Option<Authority>,
    proxy: Option<Proxy>,
}

impl Dest {
    fn of(details: &ConnectionDetails) -> Dest {
        Dest {
            scheme: details.uri.scheme().cloned(),
            authority: details.uri.authority().cloned(),
            proxy: details.config.proxy().cloned(),
        }
    }

    /// Compared in place, so a lookup allocates nothing.
    fn leads_to(&self, details: &ConnectionDetails) -> bool {
        self.scheme.as_ref() == details.uri.scheme()
            && self.authority.as_ref() == details.uri.authority()
            && self.proxy.as_ref() == details.config.proxy()
    }

    fn same(&self, other: &Dest) -> bool {
        std::ptr::eq(self, other)
            || self.scheme == other.scheme
                && self.authority == other.authority
                && self.proxy == other.proxy
    }
}

struct Parked<T> {
    dest: Arc<Dest>,
    since: Instant,
    transport: T,
}

/// The idle connections, oldest first.
struct Idle<T> {
    parked: Vec<Parked<T>>,
    limits: Limits,
    /// The destination of the newest connection made, for the next ones to the same place.
    last_dest: Option<Arc<Dest>>,
}

impl<T> Idle<T> {
    /// Cuts the connections idle too long (all at the front), to be closed by the caller.
    fn expire(&mut self, now: Instant) -> Vec<Parked<T>> {
        let max_age = self.limits.max_age;
        let old = self
            .parked
            .iter()
            .take_while(|p| now.saturating_duration_since(p.since) > max_age)
            .count();
        self.parked.drain(..old).collect()
    }

    /// Adds `p` as the most recent, then cuts the oldest past the limits.
    fn add(&mut self, p: Parked<T>) -> Vec<Parked<T>> {
        let mut cut = Vec::new();
        let same_host = self.parked.iter().filter(|q| q.dest.same(&p.dest)).count();
        if same_host >= self.limits.per_host
            && let Some(i) = self.parked.iter().position(|q| q.dest.same(&p.dest))
        {
            cut.push(self.parked.remove(i));
        }
        self.parked.push(p);
        let over = self.parked.len().saturating_sub(self.limits.total);
        cut.extend(self.parked.drain(..over));
        cut
    }
}

/// Wraps a connector chain: hands out a pooled connection to the same destination when one
/// is idle and still open, else connects through the chain.
pub struct PoolingConnector<C: Connector> {
    chain: C,
    idle: Arc<Mutex<Idle<C::Out>>>,
}

impl<C: Connector> PoolingConnector<C> {
    pub fn new(chain: C, limits: Limits) -> PoolingConnector<C> {
        PoolingConnector {
            chain,
            idle: Arc::new(Mutex::new(Idle {
                parked: Vec::new(),
                limits,
                last_dest: None,
            })),
        }
    }

    /// How many connections are idle (for tests).
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().parked.len()
    }

    /// The most recently returned idle connection to `details`' destination that is still
    /// open. Closed ones found on the way are dropped.
    fn take(&self, details: &ConnectionDetails) -> Option<Pooled<C::Out>> {
        loop {
            let (found, expired) = {
                let mut idle = self.idle.lock();
                let expired = idle.expire(Instant::now());
                let found = idle
                    .parked
                    .iter()
                    .rposition(|p| p.dest.leads_to(details))
                    .map(|i| idle.parked.remove(i));
                (found, expired)
            };
            drop(expired);
            let mut p = found?;
            // The provider may have closed it, or sent something unasked, while it was idle.
            if p.transport.is_open() {
                return Some(Pooled::new(p.transport, p.dest, &self.idle));
            }
        }
    }
}

impl<C: Connector> Connector for PoolingConnector<C> {
    type Out = Pooled<C::Out>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(pooled) = self.take(details) {
            return Ok(Some(pooled));
        }
        let Some(made) = self.chain.connect(details, chained)? else {
            return Ok(None);
        };
        let dest = {
            let mut idle = self.idle.lock();
            match &idle.last_dest {
                Some(d) if d.leads_to(details) => d.clone(),
                _ => idle.last_dest.insert(Arc::new(Dest::of(details))).clone(),
            }
        };
        Ok(Some(Pooled::new(made, dest, &self.idle)))
    }
}

impl<C: Connector> std::fmt::Debug for PoolingConnector<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolingConnector")
            .field("chain", &self.chain)
            .finish()
    }
}

/// A connection in use. Comes back to its pool when dropped right after ureq found it
/// reusable; otherwise closes.
pub struct Pooled<T: Transport> {
    /// Present until dropped.
    transport: Option<T>,
    dest: Arc<Dest>,
    home: Weak<Mutex<Idle<T>>>,
    /// The last call was an `is_open` that said yes.
    reusable: bool,
}

impl<T: Transport> Pooled<T> {
    fn new(transport: T, dest: Arc<Dest>, home: &Arc<Mutex<Idle<T>>>) -> Pooled<T> {
        Pooled {
            transport: Some(transport),
            dest,
            home: Arc::downgrade(home),
            reusable: false,
        }
    }

    fn inner(&mut self) -> &mut T {
        self.transport
            .as_mut()
            .expect("a pooled transport is present until dropped")
    }
}

impl<T: Transport> Transport for Pooled<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner().buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.reusable = false;
        self.inner().transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.reusable = false;
        self.inner().await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.reusable = self.inner().is_open();
        self.reusable
    }

    fn is_tls(&self) -> bool {
        self.transport.as_ref().is_some_and(|t| t.is_tls())
    }
}

impl<T: Transport> Drop for Pooled<T> {
    fn drop(&mut self) {
        let (Some(transport), true) = (self.transport.take(), self.reusable) else {
            return;
        };
        let Some(home) = self.home.upgrade() else {
            return;
        };
        let parked = Parked {
            dest: self.dest.clone(),
            since: Instant::now(),
            transport,
        };
        let cut = home.lock().add(parked);
        drop(cut);
    }
}

impl<T: Transport> std::fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("transport", &self.transport)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::transport::MayConnector;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// A keep-alive HTTP server on real sockets. Each connection answers with its own
    /// number (the order it was accepted in) as the body. A request for `/close` gets its
    /// answer with `Connection: close` semantics left out: the server hangs up after it.
    /// Its `closed` channel reports the number of each connection it saw end.
    struct Server {
        addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
        closed: mpsc::Receiver<usize>,
    }

    fn server() -> Server {
        server_from(0)
    }

    /// A server whose connections are numbered from `base + 1`.
    fn server_from(base: usize) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, closed) = mpsc::channel();
        let count = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let id = base + count.fetch_add(1, Ordering::SeqCst) + 1;
                let tx = tx.clone();
                std::thread::spawn(move || {
                    serve(stream, id);
                    let _ = tx.send(id);
                });
            }
        });
        Server {
            addr,
            accepted,
            closed,
        }
    }

    fn serve(stream: TcpStream, id: usize) {
        let mut out = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 {
                    return;
                }
                if header == "\r\n" {
                    break;
                }
            }
            let body = match path.as_str() {
                // More body than a reader that stops early takes.
                "/long" => "x".repeat(64 * 1024),
                _ => id.to_string(),
            };
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            if out.write_all(head.as_bytes()).is_err() || out.write_all(body.as_bytes()).is_err() {
                return;
            }
            if path == "/close" {
                return;
            }
        }
    }

    fn agent(limits: Limits) -> (ureq::Agent, Arc<PoolingConnector<MayConnector>>) {
        let pooling = Arc::new(PoolingConnector::new(MayConnector::default(), limits));
        let config = ureq::Agent::config_builder()
            .max_idle_connections(0)
            .http_status_as_error(false)
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            SharedConnector(pooling.clone()),
            ureq::unversioned::resolver::DefaultResolver::default(),
        );
        (agent, pooling)
    }

    /// Lets a test keep a handle on the pool the agent uses.
    #[derive(Debug)]
    struct SharedConnector(Arc<PoolingConnector<MayConnector>>);

    impl Connector for SharedConnector {
        type Out = Pooled<<MayConnector as Connector>::Out>;
        fn connect(
            &self,
            details: &ConnectionDetails,
            chained: Option<()>,
        ) -> Result<Option<Self::Out>, ureq::Error> {
            self.0.connect(details, chained)
        }
    }

    /// Runs `f` on a coroutine with as much stack as the server gives one (256 KiB): a ureq
    /// call in a debug build needs more than may's default.
    fn on_coroutine<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let words = 256 * 1024 / std::mem::size_of::<usize>();
        may::go!(may::coroutine::Builder::new().stack_size(words), f)
            .unwrap()
            .join()
            .unwrap()
    }

    /// Which connection (by accept order) answered a GET of `path`, the body read to its end.
    fn get(agent: &ureq::Agent, addr: SocketAddr, path: &str) -> usize {
        let url = format!("http://{addr}{path}");
        let agent = agent.clone();
        on_coroutine(move || {
            let mut body = String::new();
            agent
                .get(&url)
                .call()
                .unwrap()
                .into_body()
                .into_reader()
                .read_to_string(&mut body)
                .unwrap();
            body.parse().unwrap_or(0)
        })
    }

    /// Tries: two calls in flight at once make two connections; once both are back, the next
    /// calls get the one returned last, every time, and the other stays idle.
    #[test]
    fn the_connection_returned_last_is_handed_out_first() {
        let srv = server();
        let (agent, pool) = agent(Limits::default());
        let url = format!("http://{}/", srv.addr);
        let a = agent.clone();
        // Two responses held open at once, then read to their ends in the order 1, 2.
        let (first, second) = on_coroutine(move || {
            let r1 = a.get(&url).call().unwrap();
            let r2 = a.get(&url).call().unwrap();
            let id = |r: ureq::http::Response<ureq::Body>| {
                r.into_body()
                    .read_to_string()
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            };
            (id(r1), id(r2))
        });
        assert_eq!(pool.idle_count(), 2);
        for _ in 0..3 {
            assert_eq!(
                get(&agent, srv.addr, "/"),
                second,
                "the connection returned last serves"
            );
        }
        assert_ne!(first, second);
        assert_eq!(srv.accepted.load(Ordering::SeqCst), 2);
    }

    /// Tries: a response left unread, a connection the server closed while it was idle, and
    /// one idle past the age limit: none is handed out again, and each next call still works
    /// on a new connection.
    #[test]
    fn half_read_closed_and_stale_connections_are_not_reused() {
        let srv = server();
        let limits = Limits {
            max_age: Duration::from_millis(300),
            ..Limits::default()
        };
        let (agent, pool) = agent(limits);
        let addr = srv.addr;

        // Read only the head of a long body, then let it go.
        let a = agent.clone();
        on_coroutine(move || {
            let r = a.get(&format!("http://{addr}/long")).call().unwrap();
            let mut reader = r.into_body().into_reader();
            let mut some = [0u8; 16];
            reader.read_exact(&mut some).unwrap();
        });
        assert_eq!(pool.idle_count(), 0, "a half-read connection is not kept");
        assert_eq!(srv.closed.recv_timeout(Duration::from_secs(5)), Ok(1));

        // The server hangs up after answering; the pool notices before the next call.
        assert_eq!(get(&agent, addr, "/close"), 2);
        assert_eq!(srv.closed.recv_timeout(Duration::from_secs(5)), Ok(2));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(get(&agent, addr, "/"), 3, "a closed connection is replaced");

        // Idle past the limit: closed, not reused.
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(get(&agent, addr, "/"), 4, "a stale connection is replaced");
        assert_eq!(srv.closed.recv_timeout(Duration::from_secs(5)), Ok(3));
        assert_eq!(pool.idle_count(), 1);
    }

    /// Tries: more connections back at once than a host may keep: the oldest are closed, the
    /// newest stay.
    #[test]
    fn a_host_keeps_at_most_its_limit_the_newest() {
        let srv = server();
        let limits = Limits {
            per_host: 2,
            ..Limits::default()
        };
        let (agent, pool) = agent(limits);
        let url = format!("http://{}/", srv.addr);
        let a = agent.clone();
        let ids = on_coroutine(move || {
            let held: Vec<_> = (0..4).map(|_| a.get(&url).call().unwrap()).collect();
            held.into_iter()
                .map(|r| {
                    r.into_body()
                        .read_to_string()
                        .unwrap()
                        .parse::<usize>()
                        .unwrap()
                })
                .collect::<Vec<_>>()
        });
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(pool.idle_count(), 2);
        let mut closed: Vec<usize> = (0..2)
            .map(|_| srv.closed.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        closed.sort_unstable();
        assert_eq!(closed, vec![1, 2], "the oldest two are closed");
        assert_eq!(get(&agent, srv.addr, "/"), 4);
    }

    /// Tries: calls alternating between two servers (on the same address, different ports):
    /// each is answered by a connection to its own server, and each server's one connection
    /// serves all of its calls.
    #[test]
    fn a_connection_only_serves_its_own_destination() {
        let a = server_from(0);
        let b = server_from(100);
        let (agent, pool) = agent(Limits::default());
        for _ in 0..3 {
            assert_eq!(get(&agent, a.addr, "/"), 1);
            assert_eq!(get(&agent, b.addr, "/"), 101);
        }
        assert_eq!(pool.idle_count(), 2);
        assert_eq!(a.accepted.load(Ordering::SeqCst), 1);
        assert_eq!(b.accepted.load(Ordering::SeqCst), 1);
    }
}
