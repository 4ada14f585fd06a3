//! What the providers themselves said about the catalog's models: which ones they stopped
//! offering (retired, by a listing that no longer names them or by an answer that says the
//! model is gone) and which ones they list that the catalog lacks (discovered), plus the
//! outcome of each platform's last sync.
//!
//! Owns that record and the rules that change it, as pure functions of a listing and the
//! catalog: [`Lifecycle::plan`] turns one listing into a [`Change`], and [`Lifecycle::apply`]
//! folds a change in. Nothing here deletes a row or touches a user's edit: a retired model
//! keeps its row and its settings and comes back as the user left it when a listing names it
//! again; a discovered model is switched on only where the listing proves it free. This
//! module does no I/O; the store keeps the record, `discover` reads listings.

use serde::{Deserialize, Serialize};

use super::{Catalog, Kind, Origin};

/// Discovered rows kept per platform (OpenRouter lists hundreds): past this the listing's
/// free rows come first, then the rest in listing order.
pub const MAX_DISCOVERED_PER_PLATFORM: usize = 400;

/// A model as a provider's listing describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    pub model_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub vision: bool,
    #[serde(default)]
    pub tools: bool,
    #[serde(default)]
    pub json_schema: bool,
    /// The listing says it costs nothing (OpenRouter's prices both "0"); `None` when the
    /// listing says nothing about prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
    /// The request parameters the listing says it accepts (OpenRouter), as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_parameters: Vec<String>,
}

/// Why a model left routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Retirement {
    /// A sync's listing no longer named it.
    Unlisted { since_ms: u64 },
    /// A call was answered that the model is gone (404/410, or a 400 that says it was
    /// decommissioned); the provider's message is kept, cut short and without any key.
    Gone {
        since_ms: u64,
        status: u16,
        message: String,
    },
    /// The built-in catalog knows the provider shut it down (a sync does not bring it back).
    Announced { since_ms: u64, note: String },
}

impl Retirement {
    pub fn since_ms(&self) -> u64 {
        match self {
            Retirement::Unlisted { since_ms }
            | Retirement::Gone { since_ms, .. }
            | Retirement::Announced { since_ms, .. } => *since_ms,
        }
    }

    /// One line for a person: why, and since when.
    pub fn describe(&self, platform: &str) -> String {
        let date = crate::time::rfc3339_ms(self.since_ms());
        match self {
            Retirement::Unlisted { .. } => {
                format!("not listed by {platform} since {}", &date[..10])
            }
            Retirement::Gone {
                status, message, ..
            } => format!(
                "{platform} answered HTTP {status} on {}: {message}",
                &date[..10]
            ),
            Retirement::Announced { note, .. } => format!("{note} (since {})", &date[..10]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub platform: String,
    pub model_id: String,
    pub why: Retirement,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovered {
    pub platform: String,
    #[serde(flatten)]
    pub listed: Listed,
    pub first_seen_ms: u64,
}

/// How one platform's last sync ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum SyncOutcome {
    Synced {
        /// Models the listing named.
        listed: u32,
        added: u32,
        retired: u32,
        returned: u32,
        unchanged: u32,
        /// Why this listing changed nothing (it shrank too much at once).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held_back: Option<String>,
        /// What a held-back listing would have retired: the next sync that lacks no more than
        /// these confirms it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        held: Vec<String>,
    },
    /// The listing could not be had; nothing was changed.
    Failed { error: String },
}

impl std::fmt::Display for SyncOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncOutcome::Synced {
                listed,
                added,
                retired,
                returned,
                unchanged,
                held_back,
                ..
            } => {
                write!(
                    f,
                    "{listed} listed: {added} new, {retired} retired, {returned} back, {unchanged} unchanged"
                )?;
                match held_back {
                    Some(why) => write!(f, " (warning: {why})"),
                    None => Ok(()),
                }
            }
            SyncOutcome::Failed { error } => write!(f, "failed, nothing changed: {error}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformSync {
    pub platform: String,
    pub at_ms: u64,
    #[serde(flatten)]
    pub outcome: SyncOutcome,
}

/// The whole record, stored as one setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    #[serde(default)]
    pub retired: Vec<Retired>,
    #[serde(default)]
    pub discovered: Vec<Discovered>,
    #[serde(default)]
    pub syncs: Vec<PlatformSync>,
}

/// What a sync found for one platform: the change its listing makes, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Change(Change),
    Failed { platform: String, error: String },
}

impl Step {
    pub fn platform(&self) -> &str {
        match self {
            Step::Change(c) => &c.platform,
            Step::Failed { platform, .. } => platform,
        }
    }

    pub fn outcome(&self) -> SyncOutcome {
        match self {
            Step::Change(c) => c.outcome.clone(),
            Step::Failed { error, .. } => SyncOutcome::Failed {
                error: error.clone(),
            },
        }
    }
}

/// What one listing changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub platform: String,
    pub retire: Vec<String>,
    pub restore: Vec<String>,
    pub discover: Vec<Listed>,
    /// Discovered rows the listing describes anew (their facts are refreshed).
    pub refresh: Vec<Listed>,
    pub outcome: SyncOutcome,
}

impl Lifecycle {
    pub fn retirement(&self, platform: &str, model_id: &str) -> Option<&Retirement> {
        self.retired
            .iter()
            .find(|r| r.platform == platform && r.model_id == model_id)
            .map(|r| &r.why)
    }

    pub fn last_sync(&self, platform: &str) -> Option<&PlatformSync> {
        self.syncs.iter().find(|s| s.platform == platform)
    }

    /// What `listed` (platform `p`'s whole listing) changes, against `catalog` (built-in,
    /// custom and discovered rows merged, retirements marked). Rows the user added are the
    /// user's: they are never retired. `listing_is_free` marks every listed model free.
    pub fn plan(
        &self,
        catalog: &Catalog,
        p: usize,
        listed: &[Listed],
        listing_is_free: bool,
    ) -> Change {
        let platform = &catalog.platforms[p];
        let in_listing = |id: &str| listed.iter().any(|l| l.model_id == id);
        // Rows the user added are theirs, and what the built-in catalog knows is shut down
        // stays so: a sync judges the rest.
        let ours = || {
            catalog.models.iter().filter(move |m| {
                m.platform == p
                    && m.origin != Origin::Custom
                    && !matches!(m.retired, Some(Retirement::Announced { .. }))
            })
        };
        let mut retire: Vec<String> = ours()
            .filter(|m| m.retired.is_none() && !in_listing(&m.model_id))
            .map(|m| m.model_id.clone())
            .collect();
        let mut restore: Vec<String> = ours()
            .filter(|m| m.retired.is_some() && in_listing(&m.model_id))
            .map(|m| m.model_id.clone())
            .collect();
        let known = |id: &str| {
            catalog
                .models
                .iter()
                .any(|m| m.platform == p && m.model_id == id)
        };
        let mut discover: Vec<Listed> = listed
            .iter()
            .filter(|l| !known(&l.model_id))
            .cloned()
            .map(|mut l| {
                // A listing that marks some models paid (Cloudflare's) still says so.
                if listing_is_free && l.free.is_none() {
                    l.free = Some(true);
                }
                l
            })
            .collect();
        // Free ones first, so a cut keeps what can route.
        discover.sort_by_key(|l| l.free != Some(true));
        let room = MAX_DISCOVERED_PER_PLATFORM.saturating_sub(
            self.discovered
                .iter()
                .filter(|d| d.platform == platform.id)
                .count(),
        );
        discover.truncate(room);
        let mut refresh: Vec<Listed> = listed
            .iter()
            .filter(|l| {
                self.discovered
                    .iter()
                    .any(|d| d.platform == platform.id && d.listed.model_id == l.model_id)
            })
            .cloned()
            .collect();
        // A listing that suddenly lacks most of what was there is more likely a provider's
        // bad day (or a key that sees less) than half its models gone at once: it changes
        // nothing until the next sync lists the same again.
        let active = ours().filter(|m| m.retired.is_none()).count();
        let (previous, held_before) = match self.last_sync(&platform.id).map(|s| &s.outcome) {
            Some(SyncOutcome::Synced { listed, held, .. }) => (*listed as usize, held.as_slice()),
            _ => (0, &[][..]),
        };
        let confirmed = !held_before.is_empty() && retire.iter().all(|id| held_before.contains(id));
        let held_back = if confirmed || retire.is_empty() {
            None
        } else if retire.len() * 2 > active {
            Some(format!(
                "the listing lacks {} of {active} models at once; nothing was changed (a sync that lists the same again retires them)",
                retire.len()
            ))
        } else if listed.len() * 2 < previous {
            Some(format!(
                "the listing shrank from {previous} to {} models at once; nothing was changed (a sync that lists the same again retires what it lacks)",
                listed.len()
            ))
        } else {
            None
        };
        let mut held = Vec::new();
        if held_back.is_some() {
            held = std::mem::take(&mut retire);
            restore.clear();
            discover.clear();
            refresh.clear();
        }
        let unchanged = ours().count() - retire.len() - restore.len();
        let outcome = SyncOutcome::Synced {
            listed: listed.len() as u32,
            added: discover.len() as u32,
            retired: retire.len() as u32,
            returned: restore.len() as u32,
            unchanged: unchanged as u32,
            held_back,
            held,
        };
        Change {
            platform: platform.id.clone(),
            retire,
            restore,
            discover,
            refresh,
            outcome,
        }
    }

    /// Folds `change` in, dated `now_ms`. Idempotent: a model already retired keeps its first
    /// date, one already discovered is refreshed.
    pub fn apply(&mut self, change: Change, now_ms: u64) {
        let platform = change.platform;
        for id in change.retire {
            if self.retirement(&platform, &id).is_none() {
                self.retired.push(Retired {
                    platform: platform.clone(),
                    model_id: id,
                    why: Retirement::Unlisted { since_ms: now_ms },
                });
            }
        }
        self.retired
            .retain(|r| r.platform != platform || !change.restore.contains(&r.model_id));
        for listed in change.refresh.into_iter().chain(change.discover) {
            match self
                .discovered
                .iter_mut()
                .find(|d| d.platform == platform && d.listed.model_id == listed.model_id)
            {
                Some(d) => d.listed = listed,
                None => self.discovered.push(Discovered {
                    platform: platform.clone(),
                    listed,
                    first_seen_ms: now_ms,
                }),
            }
        }
        self.record(platform, change.outcome, now_ms);
    }

    /// Folds in one platform's sync (a failed one changes nothing but its record).
    pub fn apply_step(&mut self, step: Step, now_ms: u64) {
        match step {
            Step::Change(c) => self.apply(c, now_ms),
            Step::Failed { platform, error } => self.failed(&platform, error, now_ms),
        }
    }

    /// Records a failed sync: nothing else changes.
    pub fn failed(&mut self, platform: &str, error: String, now_ms: u64) {
        self.record(platform.to_string(), SyncOutcome::Failed { error }, now_ms);
    }

    fn record(&mut self, platform: String, outcome: SyncOutcome, at_ms: u64) {
        self.syncs.retain(|s| s.platform != platform);
        self.syncs.push(PlatformSync {
            platform,
            at_ms,
            outcome,
        });
    }

    /// Retires a model a call said is gone (until a sync lists it again). False when it was
    /// retired already.
    pub fn retire_gone(
        &mut self,
        platform: &str,
        model_id: &str,
        status: u16,
        message: &str,
        now_ms: u64,
    ) -> bool {
        if self.retirement(platform, model_id).is_some() {
            return false;
        }
        self.retired.push(Retired {
            platform: platform.to_string(),
            model_id: model_id.to_string(),
            why: Retirement::Gone {
                since_ms: now_ms,
                status,
                message: message.chars().take(200).collect(),
            },
        });
        true
    }
}

#[cfg(test)]
mod tests;
