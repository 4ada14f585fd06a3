//! `GET /metrics`: the request counters (`crate::metrics`) plus the gauges read at scrape
//! time — provider keys by status, slots cooling down, the request-log queue, and the
//! process's memory. Behind the client key, as Prometheus' `authorization` scrape option sends
//! it.

use std::sync::atomic::Ordering;

use super::ClientError;
use crate::app::App;
use crate::http::Responder;
use crate::metrics::Exposition;
use crate::store::KeyStatus;
use crate::time::now_ms;

const STATUSES: [KeyStatus; 5] = [
    KeyStatus::Unknown,
    KeyStatus::Healthy,
    KeyStatus::RateLimited,
    KeyStatus::Invalid,
    KeyStatus::Error,
];

pub fn metrics(app: &App, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let mut out = Exposition::default();
    app.metrics.write(&mut out);
    let now = now_ms();

    // A store that cannot be read costs this one family, not the scrape.
    let keys = app.store.list_keys().unwrap_or_else(|e| {
        log::warn!("metrics: provider keys unreadable: {e}");
        Vec::new()
    });
    out.family(
        "freellmapi_provider_keys",
        "gauge",
        "Stored provider keys by status (disabled keys count as disabled).",
    );
    for status in STATUSES {
        let n = keys
            .iter()
            .filter(|k| k.enabled && k.effective_status(now) == status)
            .count();
        out.sample(
            "freellmapi_provider_keys",
            &[("status", status.as_str())],
            n as f64,
        );
    }
    out.sample(
        "freellmapi_provider_keys",
        &[("status", "disabled")],
        keys.iter().filter(|k| !k.enabled).count() as f64,
    );

    let snap = app.router.snapshot();
    let cooling = snap
        .entries
        .iter()
        .flat_map(|e| &e.slots)
        .filter(|s| s.cooldown_remaining(now) > 0)
        .count();
    out.family(
        "freellmapi_cooldowns_active",
        "gauge",
        "(model, key) pairs cooling down after a rate limit or failure.",
    );
    out.sample("freellmapi_cooldowns_active", &[], cooling as f64);

    let queue = app.log.stats();
    out.family(
        "freellmapi_request_log_queue",
        "gauge",
        "Request records waiting to be written.",
    );
    out.sample(
        "freellmapi_request_log_queue",
        &[],
        queue.queued.load(Ordering::Relaxed) as f64,
    );
    out.family(
        "freellmapi_request_log_dropped_total",
        "counter",
        "Request records dropped because the write queue was full.",
    );
    out.sample(
        "freellmapi_request_log_dropped_total",
        &[],
        queue.dropped.load(Ordering::Relaxed) as f64,
    );

    out.family(
        "freellmapi_resident_memory_bytes",
        "gauge",
        "Resident memory of the process.",
    );
    out.sample(
        "freellmapi_resident_memory_bytes",
        &[],
        resident_bytes() as f64,
    );

    let _ = res
        .head(200)
        .header("Cache-Control", "no-store")
        .body(Exposition::CONTENT_TYPE, out.text.as_bytes());
    Ok(())
}

/// VmRSS from /proc/self/status (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
