use super::*;
use crate::catalog::{Catalog, CustomModel, ModelOverride, Overrides};

const NOW: u64 = 1_796_000_000_000;

fn listed(ids: &[&str]) -> Vec<Listed> {
    ids.iter()
        .map(|id| Listed {
            model_id: id.to_string(),
            ..Listed::default()
        })
        .collect()
}

/// The built-in catalog narrowed to Groq's five live models, three chat and two speech to text
/// (and its retired rows).
fn groq(o: &Overrides, life: &Lifecycle) -> (Catalog, usize) {
    let c = Catalog::builtin().merged(o, life);
    let p = c.platform_index("groq").unwrap();
    (c, p)
}

const LIVE: [&str; 5] = [
    "whisper-large-v3-turbo",
    "whisper-large-v3",
    "openai/gpt-oss-120b",
    "qwen/qwen3.8-27b",
    "openai/gpt-oss-20b",
];

#[test]
fn a_model_no_longer_listed_retires_and_comes_back_when_listed_again() {
    let mut life = Lifecycle::default();
    let (c, p) = groq(&Overrides::default(), &life);
    let change = life.plan(&c, p, &listed(&LIVE[..4]), true);
    assert_eq!(change.retire, ["openai/gpt-oss-20b"]);
    assert_eq!(
        change.outcome,
        SyncOutcome::Synced {
            listed: 4,
            added: 0,
            retired: 1,
            returned: 0,
            unchanged: 4,
            held_back: None,
            held: vec![],
        }
    );
    life.apply(change, NOW);
    let (c, p) = groq(&Overrides::default(), &life);
    let m = c
        .models
        .iter()
        .find(|m| m.model_id == "openai/gpt-oss-20b")
        .unwrap();
    assert!(!m.serves() && m.state() == "retired");
    assert!(
        m.retired
            .as_ref()
            .unwrap()
            .describe("Groq")
            .starts_with("not listed by Groq since")
    );
    // The same listing again changes nothing, and keeps the first date.
    let again = life.plan(&c, p, &listed(&LIVE[..4]), true);
    assert!(again.retire.is_empty() && again.restore.is_empty());
    life.apply(again, NOW + 1000);
    assert_eq!(life.retired[0].why, Retirement::Unlisted { since_ms: NOW });
    // Listed again: back.
    let back = life.plan(&c, p, &listed(&LIVE), true);
    assert_eq!(back.restore, ["openai/gpt-oss-20b"]);
    life.apply(back, NOW + 2000);
    let (c, _) = groq(&Overrides::default(), &life);
    assert!(
        c.models
            .iter()
            .find(|m| m.model_id == "openai/gpt-oss-20b")
            .unwrap()
            .serves()
    );
}

#[test]
fn a_listing_that_shrinks_by_more_than_half_retires_nothing() {
    let mut life = Lifecycle::default();
    let (c, p) = groq(&Overrides::default(), &life);
    let mut one = listed(&["openai/gpt-oss-120b"]);
    one.extend(listed(&["brand/new"]));
    let change = life.plan(&c, p, &one, true);
    assert!(
        change.retire.is_empty() && change.discover.is_empty(),
        "{change:?}"
    );
    let SyncOutcome::Synced { held_back, .. } = &change.outcome else {
        panic!("{change:?}")
    };
    assert!(held_back.as_deref().unwrap().contains("lacks 4 of 5"));
    // The same listing again is no longer one odd answer: it retires and adds.
    let mut confirming = life.clone();
    confirming.apply(change, NOW);
    let again = confirming.plan(&c, p, &one, true);
    assert_eq!(again.retire.len(), 4, "{again:?}");
    assert_eq!(again.discover.len(), 1, "{again:?}");
    // Against the last listing's size too: 12 listed, then 5 (only 1 of ours missing).
    let mut ten = listed(&LIVE);
    ten.extend(listed(&["a", "b", "c", "d", "e", "f", "g"]));
    life.apply(life.plan(&c, p, &ten, true), NOW);
    let (c, p) = groq(&Overrides::default(), &life);
    let mut four = listed(&LIVE[..4]);
    four.extend(listed(&["a"]));
    let change = life.plan(&c, p, &four, true);
    assert!(change.retire.is_empty(), "{change:?}");
}

#[test]
fn new_ids_are_discovered_on_only_where_the_listing_proves_them_free() {
    let mut life = Lifecycle::default();
    let (c, p) = groq(&Overrides::default(), &life);
    let mut l = listed(&LIVE);
    l.push(Listed {
        model_id: "new/free".into(),
        free: Some(true),
        context_window: Some(65_536),
        tools: true,
        ..Listed::default()
    });
    l.push(Listed {
        model_id: "new/priced".into(),
        free: Some(false),
        ..Listed::default()
    });
    l.push(Listed {
        model_id: "new/unknown".into(),
        ..Listed::default()
    });
    let change = life.plan(&c, p, &l, false);
    assert_eq!(change.discover.len(), 3);
    assert_eq!(change.discover[0].model_id, "new/free", "free ones first");
    life.apply(change, NOW);
    let (c, p) = groq(&Overrides::default(), &life);
    let state = |id: &str| c.models.iter().find(|m| m.model_id == id).unwrap().state();
    assert_eq!(state("new/free"), "active");
    assert_eq!(state("new/priced"), "discovered");
    assert_eq!(state("new/unknown"), "discovered");
    let free = c.models.iter().find(|m| m.model_id == "new/free").unwrap();
    assert_eq!(
        (free.context_window, free.origin),
        (Some(65_536), Origin::Discovered)
    );
    assert!(free.caps.contains(crate::catalog::Caps::TOOLS));
    // A listing that covers a whole free tier turns on what it does not price.
    let mut x = listed(&LIVE);
    x.extend(listed(&["x"]));
    let change = Lifecycle::default().plan(&c, p, &x, true);
    assert_eq!(change.discover[0].free, Some(true));
    // Discovered rows that leave the listing retire like the rest.
    let change = life.plan(
        &c,
        p,
        &listed(&[
            "whisper-large-v3-turbo",
            "whisper-large-v3",
            "openai/gpt-oss-120b",
            "qwen/qwen3.8-27b",
            "openai/gpt-oss-20b",
            "new/free",
        ]),
        false,
    );
    assert_eq!(change.retire, ["new/priced", "new/unknown"]);
}

#[test]
fn user_edits_and_user_rows_are_never_overridden() {
    let mut o = Overrides::default();
    o.models.push(ModelOverride {
        platform: "groq".into(),
        model_id: "openai/gpt-oss-20b".into(),
        enabled: Some(false),
        ..ModelOverride::default()
    });
    o.custom_models.push(CustomModel {
        platform: "groq".into(),
        model_id: "mine".into(),
        display_name: String::new(),
        context_window: None,
        limits: Default::default(),
        intelligence_rank: 50,
        speed_rank: 50,
        enabled: true,
        capabilities: vec![],
    });
    let mut life = Lifecycle::default();
    let (c, p) = groq(&o, &life);
    // A listing without the user's own row retires nothing of it.
    let change = life.plan(&c, p, &listed(&LIVE[..4]), true);
    assert_eq!(change.retire, ["openai/gpt-oss-20b"]);
    life.apply(change, NOW);
    let back = {
        let (c, p) = groq(&o, &life);
        life.plan(&c, p, &listed(&LIVE), true)
    };
    life.apply(back, NOW + 1);
    let (c, _) = groq(&o, &life);
    let m = c
        .models
        .iter()
        .find(|m| m.model_id == "openai/gpt-oss-20b")
        .unwrap();
    assert_eq!(m.state(), "disabled", "back as the user left it: off");
    // A discovered row the user switched off stays off across syncs.
    let mut l = listed(&LIVE);
    l.push(Listed {
        model_id: "free/new".into(),
        free: Some(true),
        ..Listed::default()
    });
    let (c, p) = groq(&o, &life);
    life.apply(life.plan(&c, p, &l, false), NOW + 2);
    o.models.push(ModelOverride {
        platform: "groq".into(),
        model_id: "free/new".into(),
        enabled: Some(false),
        ..ModelOverride::default()
    });
    let (c, p) = groq(&o, &life);
    life.apply(life.plan(&c, p, &l, false), NOW + 3);
    let (c, _) = groq(&o, &life);
    assert_eq!(
        c.models
            .iter()
            .find(|m| m.model_id == "free/new")
            .unwrap()
            .state(),
        "discovered"
    );
}

#[test]
fn shut_down_rows_of_the_builtin_catalog_are_not_the_syncs_to_judge() {
    let life = Lifecycle::default();
    let (c, p) = groq(&Overrides::default(), &life);
    // Groq lists a model the catalog knows is shut down: it stays retired.
    let mut l = listed(&LIVE);
    l.push(Listed {
        model_id: "llama-3.3-70b-versatile".into(),
        ..Listed::default()
    });
    let change = life.plan(&c, p, &l, true);
    assert!(change.restore.is_empty() && change.discover.is_empty());
}

#[test]
fn a_gone_answer_retires_until_listed_and_failures_change_nothing() {
    let mut life = Lifecycle::default();
    assert!(life.retire_gone(
        "groq",
        "qwen/qwen3.8-27b",
        404,
        "The model does not exist",
        NOW
    ));
    assert!(!life.retire_gone("groq", "qwen/qwen3.8-27b", 404, "again", NOW + 1));
    let (c, p) = groq(&Overrides::default(), &life);
    let m = c
        .models
        .iter()
        .find(|m| m.model_id == "qwen/qwen3.8-27b")
        .unwrap();
    assert!(
        m.retired
            .as_ref()
            .unwrap()
            .describe("Groq")
            .contains("HTTP 404")
    );
    let before = life.retired.clone();
    life.apply_step(
        Step::Failed {
            platform: "groq".into(),
            error: "HTTP 500".into(),
        },
        NOW + 2,
    );
    assert_eq!(life.retired, before);
    assert!(matches!(
        life.last_sync("groq").unwrap().outcome,
        SyncOutcome::Failed { .. }
    ));
    let back = life.plan(&c, p, &listed(&LIVE), true);
    assert_eq!(back.restore, ["qwen/qwen3.8-27b"]);
}
