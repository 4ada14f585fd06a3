//! A model's row: its limits, ranks and capabilities, where the row came from and whether its
//! provider still serves it.

use serde::{Deserialize, Serialize};

use super::{Listed, Retirement};

/// Free-tier limits of one model, per key. `None` means not tracked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
}

/// What a model does: chat (and completions built on chat), embeddings, or speech to text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Chat,
    Embedding,
    /// Audio in, text out (`/v1/audio/transcriptions`); never offered chat.
    Transcription,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Embedding => "embedding",
            Kind::Transcription => "transcription",
        }
    }
}

/// How a speech-to-text model takes its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioInput {
    /// OpenAI's `multipart/form-data` upload (Groq).
    Multipart,
    /// A JSON object whose `audio` is the file in base64 (Cloudflare's Whisper large v3 turbo).
    Base64Json,
    /// The file as the whole request body (Cloudflare's older Whisper models).
    Binary,
}

/// What a chat model can do beyond plain text: a small set, checked against what a request
/// needs before the model is offered it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps(u8);

impl Caps {
    pub const NONE: Caps = Caps(0);
    /// Image parts in messages.
    pub const VISION: Caps = Caps(1);
    /// `tools` / tool calls.
    pub const TOOLS: Caps = Caps(2);
    /// `response_format: {"type":"json_schema"}`.
    pub const JSON_SCHEMA: Caps = Caps(4);
    /// The provider takes `reasoning_effort` (low, medium, high) for this model. Not a need a
    /// request routes by: to a model without it the effort is simply not sent.
    pub const REASONING: Caps = Caps(8);
    const NAMES: [(Caps, &'static str); 4] = [
        (Caps::VISION, "vision"),
        (Caps::TOOLS, "tools"),
        (Caps::JSON_SCHEMA, "json_schema"),
        (Caps::REASONING, "reasoning"),
    ];

    pub fn with(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Caps::NAMES
            .iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| *n)
            .collect()
    }

    /// From names; an unknown one is an error naming it.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Caps, String> {
        names.iter().try_fold(Caps::NONE, |acc, n| {
            let n = n.as_ref();
            Caps::NAMES
                .iter()
                .find(|(_, name)| *name == n)
                .map(|(c, _)| acc.with(*c))
                .ok_or_else(|| {
                    let known: Vec<&str> = Caps::NAMES.iter().map(|(_, name)| *name).collect();
                    format!(
                        "unknown capability {n:?}; expected one of {}",
                        known.join(", ")
                    )
                })
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct ModelRow {
    pub(super) platform: String,
    pub(super) model_id: String,
    display_name: String,
    intelligence_rank: u32,
    speed_rank: u32,
    size_label: String,
    #[serde(flatten)]
    limits: Limits,
    monthly_token_budget: String,
    context_window: Option<u32>,
    enabled: bool,
    #[serde(default)]
    kind: Kind,
    #[serde(default)]
    fim: bool,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    flexible_dimensions: bool,
    /// Speech-to-text models: how the audio goes (else the platform's wire decides).
    #[serde(default)]
    audio_input: Option<AudioInput>,
    /// `vision`, `tools`, `json_schema` (chat models).
    #[serde(default)]
    caps: Vec<String>,
    /// The provider shut it down: since when, why.
    #[serde(default)]
    retired: Option<RetiredRow>,
}

#[derive(Debug, Clone, Deserialize)]
struct RetiredRow {
    /// `YYYY-MM-DD`.
    since: String,
    note: String,
}

impl ModelRow {
    /// The model this row describes, on platform `platform` (its index).
    pub(super) fn into_model(self, platform: usize) -> Result<Model, String> {
        let caps = Caps::parse(&self.caps).map_err(|e| format!("model {}: {e}", self.model_id))?;
        let retired = match &self.retired {
            None => None,
            Some(r) => Some(Retirement::Announced {
                since_ms: crate::time::parse_date_ms(&r.since)
                    .ok_or_else(|| format!("model {}: bad retired.since", self.model_id))?,
                note: r.note.clone(),
            }),
        };
        Ok(Model {
            platform,
            model_id: self.model_id,
            display_name: self.display_name,
            intelligence_rank: self.intelligence_rank,
            speed_rank: self.speed_rank,
            size_label: self.size_label,
            limits: self.limits,
            monthly_token_budget: self.monthly_token_budget,
            context_window: self.context_window,
            enabled: self.enabled,
            pool: None,
            origin: Origin::Builtin,
            retired,
            supported_parameters: Vec::new(),
            kind: self.kind,
            fim: self.fim,
            family: self.family,
            max_output_tokens: self.max_output_tokens,
            dimensions: self.dimensions,
            flexible_dimensions: self.flexible_dimensions,
            audio_input: self.audio_input,
            caps,
        })
    }
}

/// Where a model row comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Shipped in `catalog.json`.
    #[default]
    Builtin,
    /// Added by the user.
    Custom,
    /// Named by a provider's listing (a sync).
    Discovered,
}

#[derive(Debug, Clone)]
pub struct Model {
    /// Index into [`Catalog::platforms`].
    pub platform: usize,
    pub model_id: String,
    pub display_name: String,
    pub intelligence_rank: u32,
    pub speed_rank: u32,
    pub size_label: String,
    pub limits: Limits,
    pub monthly_token_budget: String,
    pub context_window: Option<u32>,
    pub enabled: bool,
    /// Index into the platform's `pools`, when a shared limit applies to this model.
    pub pool: Option<usize>,
    pub origin: Origin,
    /// The provider stopped offering it: it keeps its row and settings and leaves routing.
    pub retired: Option<Retirement>,
    /// What a listing said it accepts, where one said (discovered rows).
    pub supported_parameters: Vec<String>,
    pub kind: Kind,
    /// Serves fill-in-the-middle (`prompt` + `suffix`) at `{base}/fim/completions`.
    pub fim: bool,
    /// Models whose vectors are interchangeable share a family (embeddings fail over only
    /// within one); speech-to-text models of one family answer alike (`whisper`).
    pub family: Option<String>,
    /// The most output tokens one answer may ask for, when the provider documents a limit.
    pub max_output_tokens: Option<u32>,
    /// Embedding vector length.
    pub dimensions: Option<u32>,
    /// Accepts a smaller `dimensions` (truncated, Matryoshka-style vectors).
    pub flexible_dimensions: bool,
    /// How a speech-to-text model takes its audio, when the catalog says; else its wire's way.
    pub audio_input: Option<AudioInput>,
    /// What it can do beyond plain text chat.
    pub caps: Caps,
}

impl Model {
    /// Whether it may be offered requests: switched on and not retired.
    pub fn serves(&self) -> bool {
        self.enabled && self.retired.is_none()
    }

    /// `active`, `disabled`, `retired`, or `discovered` (listed by its provider, not on).
    pub fn state(&self) -> &'static str {
        match (&self.retired, self.enabled, self.origin) {
            (Some(_), _, _) => "retired",
            (None, true, _) => "active",
            (None, false, Origin::Discovered) => "discovered",
            (None, false, _) => "disabled",
        }
    }

    /// The request parameters it accepts beyond the basics, as OpenAI-style clients name
    /// them: what a listing said, else what its capabilities imply.
    pub fn supported_parameters(&self) -> Vec<&str> {
        if !self.supported_parameters.is_empty() {
            return self
                .supported_parameters
                .iter()
                .map(String::as_str)
                .collect();
        }
        if self.kind == Kind::Transcription {
            return vec!["language", "prompt", "response_format", "temperature"];
        }
        if self.kind == Kind::Embedding {
            return if self.flexible_dimensions {
                vec!["encoding_format", "dimensions"]
            } else {
                vec!["encoding_format"]
            };
        }
        let mut out = vec![
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "seed",
            "stream",
        ];
        if self.caps.contains(Caps::TOOLS) {
            out.extend(["tools", "tool_choice", "parallel_tool_calls"]);
        }
        if self.caps.contains(Caps::JSON_SCHEMA) {
            out.extend(["response_format", "structured_outputs"]);
        }
        out
    }

    /// The capability names `/v1/models` lists: its kind, then `fim` and the
    /// [`Caps`].
    pub fn capability_names(&self) -> Vec<&'static str> {
        let mut out = vec![self.kind.as_str()];
        if self.fim {
            out.push("fim");
        }
        out.extend(self.caps.names());
        out
    }

    /// The output tokens a request may ask of this model with `input_tokens` of prompt: the
    /// documented output limit, else what the context window leaves.
    pub fn output_room(&self, input_tokens: u64) -> Option<u64> {
        let by_window = self
            .context_window
            .map(|w| u64::from(w).saturating_sub(input_tokens).max(1));
        match (self.max_output_tokens.map(u64::from), by_window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A model row made from a listing: on only where the listing proves it free.
pub(super) fn discovered_model(platform: usize, l: &Listed) -> Model {
    let caps = [
        (l.vision, Caps::VISION),
        (l.tools, Caps::TOOLS),
        (l.json_schema, Caps::JSON_SCHEMA),
        (
            l.supported_parameters
                .iter()
                .any(|p| p == "reasoning_effort" || p == "reasoning"),
            Caps::REASONING,
        ),
    ]
    .into_iter()
    .filter(|(has, _)| *has)
    .fold(Caps::NONE, |acc, (_, c)| acc.with(c));
    Model {
        platform,
        model_id: l.model_id.clone(),
        display_name: l.name.clone().unwrap_or_else(|| l.model_id.clone()),
        // Behind every shipped model until the user ranks it.
        intelligence_rank: 100,
        speed_rank: 100,
        size_label: String::new(),
        limits: Limits::default(),
        monthly_token_budget: String::new(),
        context_window: l.context_window,
        enabled: l.free == Some(true),
        pool: None,
        origin: Origin::Discovered,
        retired: None,
        supported_parameters: l.supported_parameters.clone(),
        kind: l.kind,
        fim: false,
        // A model nobody has vouched for shares no family: it serves by its own name only.
        family: (l.kind != Kind::Chat).then(|| l.model_id.clone()),
        max_output_tokens: l.max_output_tokens,
        dimensions: None,
        flexible_dimensions: false,
        audio_input: None,
        caps,
    }
}
