//! Token-id vocabularies: tiktoken's `cl100k_base` and `o200k_base`, read from `.tiktoken`
//! files (one `base64(token bytes) rank` per line) shipped beside the binary, so embeddings
//! sent as token ids (LangChain's default) can be turned back into text for providers that
//! take text. A file is read on first use and kept; it is never embedded in the binary (the two
//! weigh 5 MiB), and a server that never sees token ids never reads one.
//!
//! Owns the files' parsing and the loaded tables. Must not know requests or HTTP.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Cl100k,
    O200k,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::Cl100k, Encoding::O200k];

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cl100k => "cl100k_base",
            Encoding::O200k => "o200k_base",
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Encoding::Cl100k => "cl100k_base.tiktoken",
            Encoding::O200k => "o200k_base.tiktoken",
        }
    }

    /// The encoding a client tokenized with for `model`, as tiktoken maps names: OpenAI's
    /// GPT-4o generation and later (and gpt-oss) use `o200k_base`; its embedding models,
    /// and every name tiktoken does not know (its clients fall back to it), `cl100k_base`.
    pub fn for_model(model: &str) -> Encoding {
        const O200K: [&str; 8] = [
            "gpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "gpt-oss",
            "chatgpt-4o",
            "o1",
            "o3",
        ];
        let m = model.rsplit('/').next().unwrap_or(model);
        if O200K.iter().any(|p| m.starts_with(p)) || m.starts_with("o4") {
            Encoding::O200k
        } else {
            Encoding::Cl100k
        }
    }

    /// Ids past the file's last rank that stand for control text.
    fn special(self, id: u32) -> Option<&'static str> {
        match (self, id) {
            (Encoding::Cl100k, 100257) | (Encoding::O200k, 199999) => Some("<|endoftext|>"),
            (Encoding::Cl100k, 100258) => Some("<|fim_prefix|>"),
            (Encoding::Cl100k, 100259) => Some("<|fim_middle|>"),
            (Encoding::Cl100k, 100260) => Some("<|fim_suffix|>"),
            (Encoding::Cl100k, 100276) | (Encoding::O200k, 200018) => Some("<|endofprompt|>"),
            _ => None,
        }
    }
}

/// Why a vocabulary cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VocabError {
    /// No file in any of the places looked.
    Missing {
        encoding: Encoding,
        searched: Vec<PathBuf>,
    },
    /// A file that is not a `.tiktoken` vocabulary.
    Malformed { path: PathBuf, why: String },
}

impl std::fmt::Display for VocabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VocabError::Missing { encoding, searched } => {
                let places: Vec<String> =
                    searched.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "the {} vocabulary file {} is not installed (looked in {})",
                    encoding.name(),
                    encoding.file_name(),
                    places.join(", ")
                )
            }
            VocabError::Malformed { path, why } => write!(f, "{}: {why}", path.display()),
        }
    }
}

/// One loaded vocabulary: every token's bytes end to end, and where each ends. About 1 MiB
/// for `cl100k_base`, 2 MiB for `o200k_base`.
pub struct Vocab {
    encoding: Encoding,
    bytes: Vec<u8>,
    /// `ends[rank]`: the end of that token's bytes; it starts where the one before ends.
    ends: Vec<u32>,
}

impl Vocab {
    /// Parses a `.tiktoken` file's text; ranks must run 0, 1, 2… as tiktoken writes them.
    pub fn parse(encoding: Encoding, text: &[u8]) -> Result<Vocab, String> {
        let mut bytes = Vec::with_capacity(text.len() / 2);
        let mut ends = Vec::with_capacity(text.len() / 12);
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", n + 1);
            let space = line
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| bad("expected `base64 rank`"))?;
            let token = crate::crypto::base64_decode(&line[..space])
                .ok_or_else(|| bad("the token is not base64"))?;
            let rank: usize = std::str::from_utf8(&line[space + 1..])
                .ok()
                .and_then(|r| r.parse().ok())
                .ok_or_else(|| bad("the rank is not a number"))?;
            if rank != ends.len() {
                return Err(bad(&format!("rank {rank} where {} was due", ends.len())));
            }
            bytes.extend_from_slice(&token);
            let end = u32::try_from(bytes.len()).map_err(|_| bad("the file is too large"))?;
            ends.push(end);
        }
        if ends.is_empty() {
            return Err("no tokens".into());
        }
        bytes.shrink_to_fit();
        Ok(Vocab {
            encoding,
            bytes,
            ends,
        })
    }

    /// The text of `ids`; a sequence cut inside a character (a client splits long texts by
    /// token count) shows U+FFFD there. `Err` holds the first id this vocabulary lacks.
    pub fn decode(&self, ids: &[u32]) -> Result<String, u32> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let rank = id as usize;
            if rank < self.ends.len() {
                let start = if rank == 0 { 0 } else { self.ends[rank - 1] };
                out.extend_from_slice(&self.bytes[start as usize..self.ends[rank] as usize]);
            } else if let Some(special) = self.encoding.special(id) {
                out.extend_from_slice(special.as_bytes());
            } else {
                return Err(id);
            }
        }
        Ok(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// The vocabularies a server may need, each read from the first of `dirs` holding its file
/// on first use and then kept. A failed load is not kept: a file installed later is found.
pub struct Vocabularies {
    dirs: Vec<PathBuf>,
    loaded: [OnceLock<Arc<Vocab>>; 2],
}

impl Vocabularies {
    pub fn new(dirs: Vec<PathBuf>) -> Vocabularies {
        Vocabularies {
            dirs,
            loaded: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The places looked in, in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn get(&self, encoding: Encoding) -> Result<Arc<Vocab>, VocabError> {
        let slot = &self.loaded[encoding as usize];
        if let Some(v) = slot.get() {
            return Ok(v.clone());
        }
        let vocab = Arc::new(self.load(encoding)?);
        // Two first users may both read the file; the first to finish is kept.
        Ok(slot.get_or_init(|| vocab).clone())
    }

    fn load(&self, encoding: Encoding) -> Result<Vocab, VocabError> {
        for dir in &self.dirs {
            let path = dir.join(encoding.file_name());
            let text = match std::fs::read(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(malformed(&path, e.to_string())),
            };
            let vocab = Vocab::parse(encoding, &text).map_err(|why| malformed(&path, why))?;
            log::info!(
                "loaded the {} vocabulary ({} tokens) from {}",
                encoding.name(),
                vocab.ends.len(),
                path.display()
            );
            return Ok(vocab);
        }
        Err(VocabError::Missing {
            encoding,
            searched: self.dirs.clone(),
        })
    }
}

fn malformed(path: &Path, why: String) -> VocabError {
    VocabError::Malformed {
        path: path.to_path_buf(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "hello" 0, " world" 1, "é" split in its two bytes 2 and 3.
    const SMALL: &[u8] = b"aGVsbG8= 0\nIHdvcmxk 1\r\nww== 2\nqQ== 3\n";

    #[test]
    fn decodes_ranks_specials_and_split_characters() {
        let v = Vocab::parse(Encoding::Cl100k, SMALL).unwrap();
        assert_eq!(v.decode(&[0, 1]).as_deref(), Ok("hello world"));
        assert_eq!(v.decode(&[0, 2, 3]).as_deref(), Ok("helloé"));
        assert_eq!(
            v.decode(&[2]).as_deref(),
            Ok("\u{FFFD}"),
            "half a character"
        );
        assert_eq!(v.decode(&[0, 100257]).as_deref(), Ok("hello<|endoftext|>"));
        assert_eq!(v.decode(&[0, 4]), Err(4));
        assert_eq!(v.decode(&[199999]), Err(199999), "o200k's id, not cl100k's");
    }

    #[test]
    fn refuses_files_that_are_not_vocabularies() {
        // Tries: no rank, bad base64, a gap in the ranks, a word for a rank, nothing.
        for (text, says) in [
            (&b"aGVsbG8=\n"[..], "line 1: expected"),
            (b"aGVsbG8 0\n", "line 1: the token is not base64"),
            (
                b"aGVsbG8= 0\nIHdvcmxk 2\n",
                "line 2: rank 2 where 1 was due",
            ),
            (b"aGVsbG8= zero\n", "line 1: the rank is not a number"),
            (b"\n\n", "no tokens"),
        ] {
            let err = Vocab::parse(Encoding::Cl100k, text).err().unwrap();
            assert!(err.starts_with(says), "{err}");
        }
    }

    #[test]
    fn encodings_follow_tiktoken_model_names() {
        for (model, want) in [
            ("text-embedding-3-small", Encoding::Cl100k),
            ("text-embedding-ada-002", Encoding::Cl100k),
            ("mistral-embed", Encoding::Cl100k),
            ("gpt-4o-mini", Encoding::O200k),
            ("openai/gpt-oss-120b", Encoding::O200k),
            ("o4-mini", Encoding::O200k),
        ] {
            assert_eq!(Encoding::for_model(model), want, "{model}");
        }
    }

    #[test]
    fn files_are_read_on_first_use_from_the_first_dir_holding_them() {
        let base = std::env::temp_dir().join(format!("freellmapi-vocab-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let vocabs = Vocabularies::new(vec![a.clone(), b.clone()]);
        let missing = vocabs.get(Encoding::Cl100k).err().unwrap();
        assert!(
            missing
                .to_string()
                .contains("cl100k_base.tiktoken is not installed"),
            "{missing}"
        );
        // Installed after the first miss: found without a restart.
        std::fs::write(b.join("cl100k_base.tiktoken"), SMALL).unwrap();
        let v = vocabs.get(Encoding::Cl100k).unwrap();
        assert_eq!(v.decode(&[1]).as_deref(), Ok(" world"));
        std::fs::write(a.join("o200k_base.tiktoken"), b"garbage\n").unwrap();
        let bad = vocabs.get(Encoding::O200k).err().unwrap();
        assert!(matches!(bad, VocabError::Malformed { .. }), "{bad}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
