//! What handlers ask of the shared state while they serve, so that none reaches into `App`'s
//! fields: who the client is, the request's time limits, one upstream call, scrubbing keys from
//! provider text, accounting a finished request, and the few keyed operations the dashboard
//! runs (opening a key, a backup, a provider's listing, checking catalog edits).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::catalog::{Overrides, Platform};
use crate::crypto::MasterKey;
use crate::discover::{self, DiscoverError, Found};
use crate::http::Request;
use crate::router::Snapshot;
use crate::store::{KeyRecord, RequestRecord};
use crate::upstream::{self, KeyRef, Outbound, Reply, Upload, UpstreamError};

impl App {
    /// The client's address: the peer's, or the one a trusted proxy forwarded.
    /// The token-id vocabularies (embeddings sent as token ids).
    pub fn vocabularies(&self) -> &crate::vocab::Vocabularies {
        &self.vocabularies
    }

    pub fn client_ip(&self, req: &Request<'_>) -> IpAddr {
        req.client_ip(&self.trust_proxy)
    }

    /// Whether the client's own connection was TLS (as a trusted proxy says).
    pub fn came_over_tls(&self, req: &Request<'_>) -> bool {
        req.is_tls(&self.trust_proxy)
    }

    /// How long a request may look for an answer before its client has a first byte.
    pub fn request_budget(&self) -> Duration {
        self.request_budget
    }

    /// A stream's keep-alive interval and the longest it may go without a complete event.
    pub fn stream_timing(&self) -> (Duration, Duration) {
        (self.sse_keepalive, self.event_idle)
    }

    /// One upstream call with `key`.
    pub fn send(
        &self,
        platform: &Platform,
        key: KeyRef<'_>,
        out: &Outbound,
    ) -> Result<Reply, UpstreamError> {
        self.upstream.send(platform, key, &self.master, out)
    }

    /// One upstream call with `key` whose body streams from `up` (an upload).
    pub fn send_upload(
        &self,
        platform: &Platform,
        key: KeyRef<'_>,
        up: Upload<'_>,
    ) -> Result<Reply, UpstreamError> {
        self.upstream.send_upload(platform, key, &self.master, up)
    }

    /// Provider text with every key of `snap` taken out, for relaying to a client.
    pub fn scrub_keys(&self, snap: &Snapshot, text: &str) -> String {
        let keys = snap
            .keys
            .iter()
            .map(|k| (&snap.catalog.platforms[k.platform], &k.sealed[..]));
        upstream::scrub_keys(text, keys, &self.master)
    }

    /// A finished request: counted for `/metrics` and sent to the request log.
    pub fn account(&self, rec: RequestRecord) {
        self.metrics.observe(&rec);
        self.log.record(rec);
    }

    /// The master key, for work a handler moves off the coroutine worker.
    pub fn master(&self) -> Arc<MasterKey> {
        self.master.clone()
    }

    /// A stored key in plain text, if this master key opens it.
    pub fn open_key(&self, record: &KeyRecord) -> Option<String> {
        record
            .sealed_bytes()
            .and_then(|s| self.master.open(&s, &record.platform).ok())
            .and_then(|s| s.as_str().map(str::to_string))
    }

    /// Where uploads wait on disk while their request needs them.
    pub fn spool(&self) -> &crate::spool::Spool {
        &self.spool
    }

    /// A path for a file of the server's own in the data dir (a backup on its way out).
    pub fn data_file(&self, name: &str) -> PathBuf {
        self.data_dir.join(name)
    }

    /// What a backup is made of: the data dir, and the master key when it comes from the
    /// environment (a file in the data dir is copied with the rest).
    pub fn backup_sources(&self) -> (PathBuf, Option<String>) {
        (
            self.data_dir.clone(),
            self.master_from_env
                .as_ref()
                .and_then(|k| k.as_str())
                .map(str::to_string),
        )
    }

    /// What `platform` lists, read with its first usable key.
    pub fn discover(&self, platform: &str) -> Result<Vec<Found>, DiscoverError> {
        discover::discover(
            &self.upstream,
            &self.catalog(),
            &self.master,
            &self.store,
            platform,
        )
    }

    /// The outbound proxies set in the environment, for every platform (`None`) or for one,
    /// credentials hidden.
    pub fn configured_proxies(&self) -> &[(Option<String>, String)] {
        self.upstream.configured_proxies()
    }

    /// Whether catalog edits fit the built-in catalog (their message says what does not).
    pub fn check_overrides(&self, o: &Overrides) -> Result<(), String> {
        o.validate(&self.builtin)
    }
}
