//! Router unit tests over a small hand-made catalog and an injected clock.

use super::*;
use crate::catalog::{Auth, KeyFormat, Limits, Model, Platform, Wire};

const T0: u64 = 1_795_500_000_000;

fn platform(id: &str) -> Platform {
    Platform {
        id: id.into(),
        name: id.into(),
        wire: Wire::Openai,
        base_url: format!("http://{id}"),
        auth: Auth::Bearer,
        key_format: KeyFormat::Plain,
        key_env: vec![],
        extra_headers: Default::default(),
        first_byte_timeout: None,
        stream_usage: true,
        dimensions_field: "dimensions".into(),
        probe: Default::default(),
        pools: vec![],
        custom: false,
        free_tier: None,
        listing: Default::default(),
        listing_is_free: false,
        keyless: false,
        model_gone_codes: vec![],
    }
}

fn model(platform: usize, id: &str, rank: u32, limits: Limits, ctx: u32) -> Model {
    Model {
        platform,
        model_id: id.into(),
        display_name: id.into(),
        intelligence_rank: rank,
        speed_rank: 1,
        size_label: String::new(),
        limits,
        monthly_token_budget: String::new(),
        context_window: Some(ctx),
        enabled: true,
        pool: None,
        origin: Default::default(),
        retired: None,
        supported_parameters: vec![],
        kind: crate::catalog::Kind::Chat,
        fim: false,
        family: None,
        max_output_tokens: None,
        dimensions: None,
        flexible_dimensions: false,
        audio_input: None,
        caps: crate::catalog::Caps::NONE,
    }
}

/// p0 "alpha" has a (rank 1, rpm 2) and b (rank 2, ctx 8k); p1 "beta" has c (rank 3).
fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog {
        platforms: vec![platform("alpha"), platform("beta")],
        models: vec![
            model(
                0,
                "a",
                1,
                Limits {
                    rpm: Some(2),
                    ..Limits::default()
                },
                128_000,
            ),
            model(0, "b", 2, Limits::default(), 8_000),
            model(
                1,
                "c",
                3,
                Limits {
                    tpm: Some(6_000),
                    ..Limits::default()
                },
                128_000,
            ),
        ],
        aliases: vec![],
        embedding_aliases: Default::default(),
    })
}

fn key(id: u64, platform: usize) -> UsableKey {
    UsableKey {
        id,
        platform,
        sealed: vec![],
        proxy: None,
        masked: String::new(),
        unlimited: false,
    }
}

fn router_with(keys: Vec<UsableKey>) -> (Router, Arc<Snapshot>) {
    let r = Router::new(catalog());
    r.rebuild(catalog(), keys, &[]);
    let s = r.snapshot();
    (r, s)
}

fn plan() -> Plan {
    Plan {
        demand: Demand {
            input_tokens: 10,
            output_reserve: 1000,
        },
        ..Plan::default()
    }
}

fn model_of(s: &Snapshot, c: Candidate) -> &str {
    &s.model(c.entry).model_id
}

#[test]
fn picks_in_chain_order_and_round_robins_keys() {
    let (r, s) = router_with(vec![key(1, 0), key(2, 0), key(3, 1)]);
    let p = Progress::default();
    let a = r.select(&s, &plan(), &p, T0).unwrap();
    let b = r.select(&s, &plan(), &p, T0).unwrap();
    assert_eq!(model_of(&s, a), "a");
    assert_eq!(model_of(&s, b), "a");
    assert_ne!(a.slot, b.slot, "successive requests rotate keys");
}

#[test]
fn no_keys_is_reported_as_such() {
    let (r, s) = router_with(vec![]);
    let why = r.select(&s, &plan(), &Progress::default(), T0).unwrap_err();
    assert!(why.no_keys);
}

#[test]
fn rpm_limit_moves_to_next_model_and_reports_wait() {
    let (r, s) = router_with(vec![key(1, 0)]);
    let p = Progress::default();
    for _ in 0..2 {
        let c = r.select(&s, &plan(), &p, T0).unwrap();
        assert_eq!(model_of(&s, c), "a");
        r.record_sent(&s, c, T0);
    }
    let c = r.select(&s, &plan(), &p, T0 + 10).unwrap();
    assert_eq!(model_of(&s, c), "b", "a is at its 2 RPM");
    let mut p = Progress::default();
    r.report(&s, c, Verdict::Unavailable, &mut p, T0 + 10);
    let why = r.select(&s, &plan(), &p, T0 + 20).unwrap_err();
    assert_eq!(why.limited, 1);
    assert!(why.soonest_ms.unwrap() <= 60_000);
}

#[test]
fn rate_limit_cools_the_slot_and_fails_over_to_the_next_platform() {
    let (r, s) = router_with(vec![key(1, 0), key(3, 1)]);
    let mut p = Progress::default();
    let c = r.select(&s, &plan(), &p, T0).unwrap();
    r.report(
        &s,
        c,
        Verdict::RateLimited {
            retry_after_ms: Some(30_000),
            daily: false,
        },
        &mut p,
        T0,
    );
    let c2 = r.select(&s, &plan(), &p, T0).unwrap();
    assert_eq!(model_of(&s, c2), "b");
    // A new request still skips the cooling slot, until its Retry-After passes.
    let fresh = Progress::default();
    let c3 = r.select(&s, &plan(), &fresh, T0 + 1_000).unwrap();
    assert_eq!(model_of(&s, c3), "b");
    let a = Plan {
        first: s.entry_for_model(0),
        strict: true,
        ..plan()
    };
    assert!(
        r.select(&s, &a, &fresh, T0 + 29_000).is_err(),
        "still cooling"
    );
    assert_eq!(
        model_of(&s, r.select(&s, &a, &fresh, T0 + 31_000).unwrap()),
        "a"
    );
}

#[test]
fn daily_quota_cools_until_utc_midnight() {
    let (r, s) = router_with(vec![key(1, 0)]);
    let mut p = Progress::default();
    let c = r.select(&s, &plan(), &p, T0).unwrap();
    r.report(
        &s,
        c,
        Verdict::RateLimited {
            retry_after_ms: None,
            daily: true,
        },
        &mut p,
        T0,
    );
    let midnight = next_utc_midnight(T0);
    let fresh = Progress::default();
    assert_ne!(
        model_of(&s, r.select(&s, &plan(), &fresh, midnight - 1).unwrap()),
        "a"
    );
    assert_eq!(
        model_of(&s, r.select(&s, &plan(), &fresh, midnight).unwrap()),
        "a"
    );
}

#[test]
fn two_outages_on_a_platform_skip_it_for_the_request() {
    let (r, s) = router_with(vec![key(1, 0), key(2, 0), key(3, 1)]);
    let mut p = Progress::default();
    let c = r.select(&s, &plan(), &p, T0).unwrap();
    r.report(&s, c, Verdict::Unavailable, &mut p, T0);
    let c = r.select(&s, &plan(), &p, T0).unwrap();
    assert_eq!(s.catalog.models[s.entries[c.entry].model].platform, 0);
    r.report(&s, c, Verdict::Unavailable, &mut p, T0);
    let c = r.select(&s, &plan(), &p, T0).unwrap();
    assert_eq!(model_of(&s, c), "c", "alpha is skipped after two outages");
}

#[test]
fn auth_failure_moves_to_the_next_key_and_pauses_the_key() {
    let (r, s) = router_with(vec![key(1, 0), key(2, 0)]);
    let mut p = Progress::default();
    let c = r.select(&s, &plan(), &p, T0).unwrap();
    let bad = s.entries[c.entry].slots[c.slot].key.id;
    r.report(&s, c, Verdict::Auth, &mut p, T0);
    let c2 = r.select(&s, &plan(), &p, T0).unwrap();
    assert_eq!(model_of(&s, c2), "a");
    assert_ne!(s.entries[c2.entry].slots[c2.slot].key.id, bad);
    // The bad key is skipped for every model until its pause ends.
    let fresh = Progress::default();
    for _ in 0..4 {
        let c = r.select(&s, &plan(), &fresh, T0 + 1).unwrap();
        assert_ne!(s.entries[c.entry].slots[c.slot].key.id, bad);
    }
}

#[test]
fn context_window_and_token_limits_are_respected() {
    let (r, s) = router_with(vec![key(1, 0), key(3, 1)]);
    let big = Plan {
        demand: Demand {
            input_tokens: 9_000,
            output_reserve: 1000,
        },
        ..Plan::default()
    };
    let c = r.select(&s, &big, &Progress::default(), T0).unwrap();
    assert_eq!(model_of(&s, c), "a", "b's 8k window is skipped");
    let mut p = Progress::default();
    r.report(&s, c, Verdict::ContextTooLong, &mut p, T0);
    let why = r.select(&s, &big, &p, T0).unwrap_err();
    assert!(
        why.too_small >= 2,
        "c's 6000 TPM cannot take 10k tokens: {why:?}"
    );
}

#[test]
fn explicit_and_strict_pins() {
    let (r, s) = router_with(vec![key(1, 0), key(3, 1)]);
    let c_entry = s.entry_for_model(2).unwrap();
    let pinned = Plan {
        first: Some(c_entry),
        strict: false,
        ..plan()
    };
    assert_eq!(
        model_of(&s, r.select(&s, &pinned, &Progress::default(), T0).unwrap()),
        "c"
    );
    let mut p = Progress::default();
    let c = r.select(&s, &pinned, &p, T0).unwrap();
    r.report(&s, c, Verdict::Unavailable, &mut p, T0);
    assert_eq!(
        model_of(&s, r.select(&s, &pinned, &p, T0).unwrap()),
        "a",
        "falls back without strict"
    );
    let strict = Plan {
        strict: true,
        ..pinned
    };
    assert!(
        r.select(&s, &strict, &p, T0).is_err(),
        "strict never falls back"
    );
}

#[test]
fn penalties_demote_failing_models() {
    let (r, s) = router_with(vec![key(1, 0), key(3, 1)]);
    let a = s.entry_for_model(0).unwrap();
    let mut p = Progress::default();
    for _ in 0..2 {
        r.report(
            &s,
            Candidate { entry: a, slot: 0 },
            Verdict::Empty,
            &mut p,
            T0,
        );
    }
    let c = r.select(&s, &plan(), &Progress::default(), T0).unwrap();
    assert_eq!(model_of(&s, c), "b", "a (penalty 6) drops below b");
    let later = T0 + 6 * penalty::DECAY_MS;
    assert_eq!(
        model_of(
            &s,
            r.select(&s, &plan(), &Progress::default(), later).unwrap()
        ),
        "a"
    );
}

#[test]
fn ledger_survives_persist_and_restore() {
    let (r, s) = router_with(vec![key(1, 0)]);
    let c = r.select(&s, &plan(), &Progress::default(), T0).unwrap();
    r.record_sent(&s, c, T0);
    r.record_sent(&s, c, T0);
    let bytes = r.persist();
    let r2 = Router::new(catalog());
    assert_eq!(r2.registry().restore(&bytes).unwrap(), 1);
    r2.rebuild(catalog(), vec![key(1, 0)], &[]);
    let s2 = r2.snapshot();
    let c2 = r2
        .select(&s2, &plan(), &Progress::default(), T0 + 5)
        .unwrap();
    assert_eq!(
        model_of(&s2, c2),
        "b",
        "a's 2 RPM are still used after the restart"
    );
}

#[test]
fn rebuild_keeps_counters_and_custom_order() {
    let (r, s) = router_with(vec![key(1, 0)]);
    let c = r.select(&s, &plan(), &Progress::default(), T0).unwrap();
    r.record_sent(&s, c, T0);
    r.record_sent(&s, c, T0);
    r.rebuild(
        catalog(),
        vec![key(1, 0), key(3, 1)],
        &[(2, true), (0, true), (1, false)],
    );
    let s = r.snapshot();
    assert_eq!(s.model(0).model_id, "c");
    assert!(!s.entries[2].enabled);
    let first = r.select(&s, &plan(), &Progress::default(), T0).unwrap();
    assert_eq!(model_of(&s, first), "c");
    let mut p = Progress::default();
    r.report(&s, first, Verdict::Unavailable, &mut p, T0);
    let why = r.select(&s, &plan(), &p, T0).unwrap_err();
    assert_eq!(
        why.limited, 1,
        "a keeps its counts across the rebuild; b is switched off"
    );
}

/// "gamma" with two `:free` models sharing a pool of 2 requests a day per key.
fn pooled_catalog() -> Arc<Catalog> {
    let mut p = platform("gamma");
    p.pools = vec![crate::catalog::Pool {
        id: "free".into(),
        suffix: ":free".into(),
        limits: Limits {
            rpd: Some(2),
            ..Limits::default()
        },
        note: String::new(),
    }];
    let mut c = Catalog {
        platforms: vec![p],
        models: vec![
            model(0, "x:free", 1, Limits::default(), 128_000),
            model(0, "y:free", 2, Limits::default(), 128_000),
            model(0, "z-paid", 3, Limits::default(), 128_000),
        ],
        aliases: vec![],
        embedding_aliases: Default::default(),
    };
    c.models[0].pool = Some(0);
    c.models[1].pool = Some(0);
    Arc::new(c)
}

#[test]
fn a_spent_pool_skips_every_model_of_the_pool_for_that_key_only() {
    let r = Router::new(pooled_catalog());
    r.rebuild(pooled_catalog(), vec![key(1, 0), key(2, 0)], &[]);
    let s = r.snapshot();
    let only_key_1 = |c: Candidate| s.entries[c.entry].slots[c.slot].key.id == 1;
    // Spend key 1's pool: two requests on different :free models.
    let mut sent = 0;
    while sent < 2 {
        let c = r.select(&s, &plan(), &Progress::default(), T0).unwrap();
        if only_key_1(c) {
            r.record_sent(&s, c, T0);
            sent += 1;
        }
    }
    for _ in 0..6 {
        let c = r.select(&s, &plan(), &Progress::default(), T0 + 1).unwrap();
        let model = model_of(&s, c);
        assert!(
            !(only_key_1(c) && model.ends_with(":free")),
            "key 1 may not serve {model}"
        );
    }
    // Key 1 still serves the model outside the pool.
    let z = Plan {
        first: s.entry_for_model(2),
        strict: true,
        ..plan()
    };
    let mut p = Progress::default();
    let mut keys = vec![];
    for _ in 0..2 {
        let c = r.select(&s, &z, &p, T0 + 1).unwrap();
        keys.push(s.entries[c.entry].slots[c.slot].key.id);
        p.tried.push((c.entry, c.slot));
    }
    keys.sort();
    assert_eq!(keys, vec![1, 2]);
}

#[test]
fn a_daily_429_cools_the_pool_and_marks_the_key_rate_limited() {
    let r = Router::new(pooled_catalog());
    r.rebuild(pooled_catalog(), vec![key(1, 0)], &[]);
    let s = r.snapshot();
    let mut p = Progress::default();
    let c = r.select(&s, &plan(), &p, T0).unwrap();
    assert_eq!(model_of(&s, c), "x:free");
    r.report(
        &s,
        c,
        Verdict::RateLimited {
            retry_after_ms: None,
            daily: true,
        },
        &mut p,
        T0,
    );
    assert!(r.key_rate_limited(1, T0 + 1));
    let next = r.select(&s, &plan(), &Progress::default(), T0 + 1).unwrap();
    assert_eq!(
        model_of(&s, next),
        "z-paid",
        "y:free shares the cooled pool"
    );
    let midnight = next_utc_midnight(T0);
    assert!(!r.key_rate_limited(1, midnight));
    // A short per-minute Retry-After cools only the model, and does not escalate.
    let r = Router::new(pooled_catalog());
    r.rebuild(pooled_catalog(), vec![key(1, 0)], &[]);
    let s = r.snapshot();
    let mut p = Progress::default();
    let c = r.select(&s, &plan(), &p, T0).unwrap();
    r.report(
        &s,
        c,
        Verdict::RateLimited {
            retry_after_ms: Some(20_000),
            daily: false,
        },
        &mut p,
        T0,
    );
    let next = r.select(&s, &plan(), &Progress::default(), T0 + 1).unwrap();
    assert_eq!(
        model_of(&s, next),
        "y:free",
        "the pool is not cooled by a per-minute limit"
    );
    let again = Plan {
        first: s.entry_for_model(0),
        strict: true,
        ..plan()
    };
    assert!(
        r.select(&s, &again, &Progress::default(), T0 + 21_000)
            .is_ok(),
        "cooled for exactly the Retry-After"
    );
}

#[test]
fn tasks_pick_only_fitting_models_and_orders_re_sort_the_chain() {
    use crate::catalog::Kind;
    let mut c = (*catalog()).clone();
    // a: chat (intelligence 1, speed 3); b: chat + fim (2, 1); c: chat (3, 2);
    // e1, e2: embeddings of one family; e3: another; w1, w2: speech to text of one family.
    c.models[0].speed_rank = 3;
    c.models[1].fim = true;
    c.models[2].speed_rank = 2;
    for (id, family, kind) in [
        ("e1", "fam", Kind::Embedding),
        ("e2", "fam", Kind::Embedding),
        ("e3", "other", Kind::Embedding),
        ("w1", "whisper", Kind::Transcription),
        ("w2", "whisper", Kind::Transcription),
    ] {
        let mut m = model(0, id, 9, Limits::default(), 8_000);
        m.kind = kind;
        m.family = Some(family.into());
        c.models.push(m);
    }
    let c = Arc::new(c);
    let r = Router::new(c.clone());
    r.rebuild(c.clone(), vec![key(1, 0), key(2, 1)], &[]);
    let s = r.snapshot();
    let names = |plan: &Plan| -> Vec<String> {
        let mut p = Progress::default();
        let mut out = vec![];
        while let Ok(cand) = r.select(&s, plan, &p, T0) {
            out.push(model_of(&s, cand).to_string());
            p.tried.push((cand.entry, cand.slot));
        }
        out
    };
    assert_eq!(
        names(&plan()),
        ["a", "b", "c"],
        "embedding and speech-to-text models never chat"
    );
    let fim = Plan {
        task: Task::Fim,
        ..plan()
    };
    assert_eq!(names(&fim), ["b"]);
    let e1 = c.models.iter().position(|m| m.model_id == "e1").unwrap();
    let emb = Plan {
        task: Task::Embedding { like: e1 },
        ..plan()
    };
    assert_eq!(names(&emb), ["e1", "e2"], "only the same family");
    let w2 = c.models.iter().position(|m| m.model_id == "w2").unwrap();
    let stt = Plan {
        task: Task::Transcription { like: w2 },
        ..plan()
    };
    assert_eq!(names(&stt), ["w1", "w2"], "the family, in chain order");
    let speed = Plan {
        order: Order::Speed,
        ..plan()
    };
    assert_eq!(names(&speed), ["b", "c", "a"]);
    let smart = Plan {
        order: Order::Intelligence,
        ..plan()
    };
    assert_eq!(names(&smart), ["a", "b", "c"]);
}

#[test]
fn cleared_cooldowns_make_a_cooling_model_routable_at_once() {
    let (r, s) = router_with(vec![key(1, 0), key(2, 1)]);
    let mut p = Progress::default();
    let first = r.select(&s, &plan(), &p, T0).unwrap();
    assert_eq!(model_of(&s, first), "a");
    let limited = Verdict::RateLimited {
        retry_after_ms: Some(600_000),
        daily: false,
    };
    r.report(&s, first, limited, &mut p, T0);
    let fresh = Progress::default();
    assert_ne!(
        model_of(&s, r.select(&s, &plan(), &fresh, T0 + 1).unwrap()),
        "a"
    );
    // A filter that matches nothing clears nothing.
    assert_eq!(r.clear_cooldowns(&s, Some("beta"), None, None, T0 + 2), 0);
    assert_ne!(
        model_of(&s, r.select(&s, &plan(), &fresh, T0 + 2).unwrap()),
        "a"
    );
    assert_eq!(
        r.clear_cooldowns(&s, Some("alpha"), Some("a"), None, T0 + 2),
        1
    );
    assert_eq!(
        model_of(&s, r.select(&s, &plan(), &fresh, T0 + 3).unwrap()),
        "a"
    );
}

#[test]
fn a_need_skips_models_without_the_capability() {
    use crate::catalog::Caps;
    let mut c = (*catalog()).clone();
    c.models[1].caps = Caps::VISION.with(Caps::TOOLS);
    c.models[2].caps = Caps::TOOLS;
    let c = Arc::new(c);
    let r = Router::new(c.clone());
    r.rebuild(c, vec![key(1, 0), key(2, 1)], &[]);
    let s = r.snapshot();
    let vision = Plan {
        needs: Caps::VISION,
        ..plan()
    };
    let first = r.select(&s, &vision, &Progress::default(), T0).unwrap();
    assert_eq!(
        model_of(&s, first),
        "b",
        "a text-only model first in the chain is skipped"
    );
    let both = Plan {
        needs: Caps::VISION.with(Caps::JSON_SCHEMA),
        ..plan()
    };
    let why = r.select(&s, &both, &Progress::default(), T0).unwrap_err();
    assert!(
        why.no_keys && why.cooling == 0,
        "no capable model, so no key can serve: {why:?}"
    );
}

/// Tries: every built-in model id, its `platform/model_id` form, an id two platforms share
/// (the first in catalog order wins, as the catalog's own scan answers), and names that are
/// no model: the snapshot's index answers exactly as the catalog does.
#[test]
fn the_snapshot_resolves_model_names_as_the_catalog_does() {
    let mut c = Catalog::builtin();
    let mut twin = c.models[3].clone();
    twin.platform = c.models[0].platform + 1;
    c.models.push(twin);
    let c = Arc::new(c);
    let r = Router::new(c.clone());
    r.rebuild(c.clone(), vec![], &[]);
    let s = r.snapshot();
    let mut names: Vec<String> = c.models.iter().map(|m| m.model_id.clone()).collect();
    names.extend(
        c.models
            .iter()
            .map(|m| format!("{}/{}", c.platforms[m.platform].id, m.model_id)),
    );
    names.extend(
        [
            "",
            "/",
            "no-such-model",
            "groq/",
            "/x",
            "nope/llama-3.1-8b-instant",
        ]
        .map(String::from),
    );
    for name in &names {
        assert_eq!(s.find_model(name), c.find_model(name), "{name:?}");
    }
    assert_eq!(s.find_model(&c.models[3].model_id), Some(3));
}
