//! `freellmapi serve`: opens the data dir, builds the [`App`], serves HTTP on coroutines, runs
//! the background coroutines (store polling, ledger persistence) and stops gracefully on
//! SIGTERM/SIGINT: stop accepting, drain in-flight requests for up to 10 s, flush the ledger
//! and the request log, exit 0.
//!
//! Threads: the calling thread waits for signals; `may` runs the coroutine workers; the store
//! writer and the DNS resolver each have one thread. Nothing else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::catalog::Catalog;
use crate::config::{Config, ConfigError, DataDirUse};
use crate::crypto::{MasterKey, MasterKeyError};
use crate::routes::Routes;
use crate::store::{Retention, Store, StoreError};

/// Coroutine stack size. Chosen by `tests/it/stack_depth.rs` (the deepest accepted JSON and the
/// largest accepted request through a real server) and `tests/it/tls_upstream.rs` (a provider
/// reached over TLS with its certificate verified, the deepest path of all). Measured with
/// may's stack accounting: the TLS path uses 140 KiB in the debug build the tests run and
/// 48 KiB in the release build (x86_64; plain HTTP: 100 and 37 KiB). 256 KiB leaves the debug
/// build a margin and the release build five times what it needs. Stacks are mapped lazily:
/// only touched pages cost memory, and a waiting stream gives its deep pages back.
pub const COROUTINE_STACK_BYTES: usize = 256 * 1024;
/// Finished coroutines kept for reuse. may creates the whole pool at start, each stack with two
/// touched pages, and a pooled stack keeps whatever its last request touched; 16 keeps both
/// small (idle RSS ~2 MiB lower than may's default 1000) at the cost of an mmap for the 17th
/// simultaneous connection.
const COROUTINE_POOL: usize = 16;
/// How long an idle worker sleeps in `epoll_wait` when no timer is due sooner. may's default,
/// 10 ms, woke each idle worker 100 times a second (measured: ~160 context switches a second
/// for an idle server with two workers). Work handed to a sleeping worker comes with an eventfd
/// wake-up and timers shorten the wait themselves; what the poll still bounds is how long a
/// sleeping worker leaves a coroutine queued behind a busy one (a connection accepted while
/// its worker runs a long dashboard query) before it steals it, hence 100 ms, not seconds.
const IDLE_POLL: Duration = Duration::from_millis(100);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const STORE_POLL: Duration = Duration::from_secs(2);
const LEDGER_PERSIST_EVERY: Duration = Duration::from_secs(60);

/// Coroutine stack size, pool, worker count and pinning; before the first coroutine is spawned.
pub fn configure_runtime(workers: usize) {
    may::config()
        .set_stack_size(COROUTINE_STACK_BYTES / std::mem::size_of::<usize>())
        .set_pool_capacity(COROUTINE_POOL)
        .set_workers(workers)
        .set_worker_pin(false);
    may::config().set_timeout_ns(IDLE_POLL.as_nanos() as u64);
}

/// Every stream holds two sockets; the usual soft limit of 1024 descriptors would cap the
/// server near 500 streams, so take what the hard limit allows (up to 65 536).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Why the server (or a CLI command) could not start: each names what failed and where.
#[derive(Debug)]
pub enum StartError {
    /// The data dir is missing, unusable or has the wrong owner/mode.
    Config(ConfigError),
    /// The master key could not be read or created.
    MasterKey(MasterKeyError),
    /// The LMDB store could not be opened or read, or does not match the master key.
    Store { dir: PathBuf, error: StoreError },
    /// The listen address could not be bound.
    Listen {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::MasterKey(e) => write!(f, "{e}"),
            StartError::Store {
                dir,
                error: error @ StoreError::WrongMasterKey,
            } => write!(f, "{error} (data dir {})", dir.display()),
            StartError::Store { dir, error } => {
                write!(f, "the LMDB store in {}: {error}", dir.display())
            }
            StartError::Listen { addr, error } => {
                write!(
                    f,
                    "cannot listen on {addr}: {error}; pick another --listen address"
                )
            }
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

/// Everything `serve` and the CLI need from the data dir.
pub struct Opened {
    pub store: Arc<Store>,
    pub master: MasterKey,
}

/// Opens the data dir, the master key and the store, and proves the key matches the store.
pub fn open_data_dir(config: &Config, use_: DataDirUse) -> Result<Opened, StartError> {
    config.prepare_data_dir(use_)?;
    let master = MasterKey::load_or_create(config.encryption_key.as_deref(), &config.data_dir)
        .map_err(StartError::MasterKey)?;
    // A reading command opens the store read-only, so it works on a read-only disk; a store
    // that does not exist yet is created as usual.
    let store = match use_ {
        DataDirUse::Read => {
            Store::open_read_only(&config.data_dir).or_else(|_| Store::open(&config.data_dir))
        }
        _ => Store::open(&config.data_dir),
    }
    .map_err(|e| store_failed(config, e))?;
    store
        .verify_master_key(&master)
        .map_err(|e| store_failed(config, e))?;
    Ok(Opened {
        store: Arc::new(store),
        master,
    })
}

fn store_failed(config: &Config, error: StoreError) -> StartError {
    StartError::Store {
        dir: config.data_dir.clone(),
        error,
    }
}

/// Blocks SIGTERM and SIGINT in this thread and every thread spawned after it, so they can be
/// taken synchronously with `sigwait` instead of in an async-signal handler.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local set, before any thread exists.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` was initialised by `block_signals`; sigwait writes the signal number.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// Shows a key the server just created to the person at the terminal only. Under systemd (or
/// with output redirected) stdout is a log that others may read and that is kept for weeks:
/// there the line says how to print the key instead.
fn announce_new_key(token: &crate::crypto::Secret, data_dir: &std::path::Path) {
    // SAFETY: isatty only inspects the descriptor.
    let terminal = unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1;
    if terminal {
        println!(
            "Created the unified API key (`freellmapi token` prints it again):\n  {}",
            token.as_str().unwrap_or_default()
        );
    } else {
        println!(
            "Created the unified API key; it is not written to this log. Print it with: freellmapi --data-dir {} token",
            data_dir.display()
        );
    }
}

/// Runs the server until SIGTERM/SIGINT. Errors are start-up errors (exit 2).
pub fn serve(config: &Config) -> Result<(), StartError> {
    let signals = block_signals();
    configure_runtime(config.workers);
    raise_fd_limit();

    let Opened { store, master } = open_data_dir(config, DataDirUse::Serve)?;
    let (token, created) = store
        .unified_key(&master)
        .map_err(|e| store_failed(config, e))?;
    if created {
        announce_new_key(&token, &config.data_dir);
    }
    drop(token);

    let catalog = Catalog::builtin().with_base_urls(&config.upstream_overrides);
    let log_sink = crate::store::spawn_writer(store.clone(), Retention::default());
    let app =
        App::new(catalog, store, master, log_sink, config).map_err(|e| store_failed(config, e))?;
    match app.spool().prepare() {
        Ok(0) => {}
        Ok(n) => log::info!("removed {n} uploads an earlier run left in the spool directory"),
        Err(e) => log::warn!(
            "the spool directory {} is not usable ({e}); speech-to-text uploads will be refused",
            app.spool().dir().display()
        ),
    }
    let app = Arc::new(app);
    let routes = Arc::new(Routes::new(app.clone(), &config.allowed_hosts));
    match app.store.admin_password() {
        Ok(None) => {
            let code = routes.admin().setup.issue();
            // Printed once, to stdout (journald under systemd), like the unified key.
            println!(
                "No dashboard password yet. Open http://{}/ and enter the one-time setup code:\n  {code}\n(or set one with `freellmapi admin-password`)",
                config.listen
            );
        }
        Ok(Some(_)) => {}
        Err(e) => return Err(store_failed(config, e)),
    }

    let settings = crate::http::Settings {
        body_limit: config.body_limit,
        body_budget: crate::config::body_budget(config.body_limit),
        body_timeout: config.body_timeout,
        max_connections: config.max_connections,
        ..Default::default()
    };
    let server = crate::http::serve(config.listen, routes, settings.clone()).map_err(|error| {
        StartError::Listen {
            addr: config.listen,
            error,
        }
    })?;
    let ollama = match config.ollama_listen {
        None => None,
        Some(addr) => {
            let routes = Arc::new(crate::routes::OllamaRoutes::new(
                app.clone(),
                config.ollama_allow.clone(),
            ));
            let server = crate::http::serve(addr, routes, settings.clone())
                .map_err(|error| StartError::Listen { addr, error })?;
            log::info!(
                "the Ollama API is served on http://{} (without a key from {} address ranges)",
                server.local_addr(),
                config.ollama_allow.len()
            );
            Some(server)
        }
    };
    let snap = app.router.snapshot();
    let keys = snap.serving_keys();
    log::info!(
        "freellmapi {} listening on http://{} (data dir {}, {keys} usable provider keys)",
        env!("CARGO_PKG_VERSION"),
        server.local_addr(),
        config.data_dir.display()
    );
    if snap.keys.len() > keys {
        log::warn!(
            "{} stored provider keys route nothing: their platforms have no enabled model (see `freellmapi keys list`)",
            snap.keys.len() - keys
        );
    }
    if keys == 0 {
        log::warn!(
            "no usable provider keys yet: add one with `freellmapi keys add <platform>` (the key on stdin)"
        );
    }
    drop(snap);
    spawn_background(app.clone(), config.health_interval);
    spawn_sync(app.clone(), config.sync_every);
    notify_systemd("READY=1");

    let sig = wait_for_signal(&signals);
    log::info!(
        "received signal {sig}; draining in-flight requests (up to {} s)",
        DRAIN_TIMEOUT.as_secs()
    );
    notify_systemd("STOPPING=1");
    server.stop_accepting();
    if let Some(o) = &ollama {
        o.stop_accepting();
    }
    let ollama_drained = ollama.as_ref().is_none_or(|o| o.drain(DRAIN_TIMEOUT));
    if !server.drain(DRAIN_TIMEOUT) || !ollama_drained {
        log::warn!(
            "{} requests still in flight after {} s; stopping anyway",
            server.shared().in_flight(),
            DRAIN_TIMEOUT.as_secs()
        );
    }
    app.persist_ledger();
    if !app.log.flush(Duration::from_secs(5)) {
        log::warn!("the request log did not flush in time");
    }
    log::info!("stopped");
    Ok(())
}

/// Tells systemd (`Type=notify`) about readiness and shutdown; a no-op outside systemd.
fn notify_systemd(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let sent = addr.and_then(|addr| UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr));
    if let Err(e) = sent {
        log::warn!("could not notify systemd ({state}): {e}");
    }
}

/// Keeps the catalog true: syncs a platform as soon as its first key arrives, and every
/// platform `every` (the first time [`crate::app::FIRST_SYNC_AFTER`] after start).
fn spawn_sync(app: Arc<App>, every: Option<Duration>) {
    may::go!(move || {
        let started = std::time::Instant::now();
        let mut next = every.map(|_| started + crate::app::FIRST_SYNC_AFTER);
        loop {
            may::coroutine::sleep(STORE_POLL);
            for platform in app.take_new_key_platforms() {
                app.sync_when_free(Some(&platform));
            }
            if let (Some(due), Some(every)) = (next, every)
                && std::time::Instant::now() >= due
            {
                app.sync_when_free(None);
                next = Some(std::time::Instant::now() + every);
            }
        }
    });
}

fn spawn_background(app: Arc<App>, health_interval: Duration) {
    let health = app.clone();
    may::go!(move || {
        may::coroutine::sleep(health_interval.min(crate::health::FIRST_PASS_AFTER));
        loop {
            if let Err(e) = health.health_pass(crate::health::Selection::Due) {
                log::error!("health check failed: {e}");
            }
            // Jitter spreads the probes of many boxes that started together.
            let mut b = [0u8; 2];
            crate::crypto::fill_random(&mut b);
            let jitter = Duration::from_millis(
                u64::from(u16::from_le_bytes(b)) % (health_interval.as_millis() as u64 / 10 + 1),
            );
            may::coroutine::sleep(health_interval + jitter);
        }
    });
    let poll = app.clone();
    may::go!(move || {
        loop {
            may::coroutine::sleep(STORE_POLL);
            match poll.reload_if_changed() {
                Ok(true) => log::info!("picked up changed keys/settings from the store"),
                Ok(false) => {}
                Err(e) => log::error!("reloading from the store failed: {e}"),
            }
            poll.persist_client_key_use();
        }
    });
    may::go!(move || {
        loop {
            may::coroutine::sleep(LEDGER_PERSIST_EVERY);
            app.persist_ledger();
        }
    });
}
