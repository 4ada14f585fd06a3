//! The client APIs a request can come in by. Named here, below everything that records or
//! routes by them (the request log, metrics, the fronts, the route table), so none of those
//! needs another's types to say which API a request used.

/// Which client API a request came in through (recorded with every request).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// `/v1/chat/completions`.
    #[default]
    Chat,
    /// Anthropic Messages, `/v1/messages`.
    Messages,
    /// OpenAI Responses, `/v1/responses`.
    Responses,
    /// Legacy text completions, `/v1/completions`.
    Completions,
    /// `/v1/embeddings` (and the Ollama API's embedding calls).
    Embeddings,
    /// The Ollama API's `/api/chat`.
    #[serde(rename = "ollama_chat")]
    OllamaChat,
    /// The Ollama API's `/api/generate`.
    #[serde(rename = "ollama_generate")]
    OllamaGenerate,
    /// The Gemini API's `generateContent` and `streamGenerateContent`.
    Gemini,
    /// Speech to text, `/v1/audio/transcriptions`.
    Transcriptions,
}

impl Surface {
    pub const ALL: [Surface; 9] = [
        Surface::Chat,
        Surface::Messages,
        Surface::Responses,
        Surface::Completions,
        Surface::Embeddings,
        Surface::OllamaChat,
        Surface::OllamaGenerate,
        Surface::Gemini,
        Surface::Transcriptions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Chat => "chat",
            Surface::Messages => "messages",
            Surface::Responses => "responses",
            Surface::Completions => "completions",
            Surface::Embeddings => "embeddings",
            Surface::OllamaChat => "ollama_chat",
            Surface::OllamaGenerate => "ollama_generate",
            Surface::Gemini => "gemini",
            Surface::Transcriptions => "transcriptions",
        }
    }
}
