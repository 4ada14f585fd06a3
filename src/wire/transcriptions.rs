//! Speech to text on the wire: OpenAI's `multipart/form-data` upload to
//! `{base}/audio/transcriptions` (Groq), and Cloudflare's `/ai/run/{model}` with the audio in
//! base64 inside JSON (Whisper large v3 turbo) or as the raw body (the older Whisper); each
//! answer read back into one [`Transcript`].
//!
//! The audio is never held in memory: the body is a reader that chains a small head, the
//! spooled file (base64-encoded on the way where the model needs it) and a small tail, with its
//! exact length known up front. Does no I/O of its own and never sees a provider key.

use std::io::{self, Cursor, Read};

use simd_json::OwnedValue;
use simd_json::prelude::*;

use super::WireError;
use crate::catalog::{AudioInput, Model, Platform, Wire};
use crate::json;
use crate::spool::SpoolFile;
use crate::upstream::Upload;

/// What a transcription asks of any provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SttRequest {
    /// ISO-639-1 code of the spoken language, when the client knows it.
    pub language: Option<String>,
    /// Text that guides spelling and style.
    pub prompt: Option<String>,
    /// The sampling temperature as the client sent it (checked to be a number in 0..=1).
    pub temperature: Option<String>,
    /// Segment timestamps are needed (srt, vtt, verbose_json).
    pub segments: bool,
    /// Word timestamps are asked for (`timestamp_granularities[]=word`).
    pub words: bool,
}

/// The uploaded file and what its client said it is.
pub struct Audio<'f, 's> {
    pub file: &'f SpoolFile<'s>,
    pub filename: Option<&'f str>,
    pub content_type: Option<&'f str>,
}

/// One stretch of speech with its times, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// What OpenAI's `verbose_json` also carries, when the provider gave it.
    pub seek: u64,
    pub tokens: Vec<u64>,
    pub temperature: f64,
    pub avg_logprob: f64,
    pub compression_ratio: f64,
    pub no_speech_prob: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
}

/// A provider's answer, whatever its shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub language: Option<String>,
    /// Seconds of audio.
    pub duration: Option<f64>,
    pub segments: Vec<Segment>,
    pub words: Vec<Word>,
}

/// How `model` on `platform` takes audio.
pub fn audio_input(platform: &Platform, model: &Model) -> Result<AudioInput, WireError> {
    match (platform.wire, model.audio_input) {
        (Wire::Gemini, _) => Err(WireError::Unsupported(
            "this platform has no speech-to-text API here",
        )),
        (_, Some(input)) => Ok(input),
        (Wire::Openai, None) => Ok(AudioInput::Multipart),
        (Wire::Cloudflare, None) => Ok(AudioInput::Binary),
    }
}

/// The upload for `model` on `platform`, its body streaming from `audio`.
pub fn outbound<'f>(
    platform: &Platform,
    model: &Model,
    req: &SttRequest,
    audio: &Audio<'f, '_>,
) -> Result<Upload<'f>, WireError> {
    let len = audio.file.len();
    let (url, content_type, body, len): (String, String, Box<dyn Read + 'f>, u64) =
        match audio_input(platform, model)? {
            AudioInput::Multipart => {
                let form = Multipart::new(model, req, audio);
                let total = form.head.len() as u64 + len + form.tail.len() as u64;
                let content_type = format!("multipart/form-data; boundary={}", form.boundary);
                let body = Cursor::new(form.head)
                    .chain(audio.file.reader())
                    .chain(Cursor::new(form.tail));
                (
                    format!("{}/audio/transcriptions", platform.base_url),
                    content_type,
                    Box::new(body),
                    total,
                )
            }
            AudioInput::Base64Json => {
                let mut head = json::encode(&base64_fields(req));
                // `{...}` becomes `{...,"audio":"` and the encoded file follows.
                head.pop();
                if head.len() > 1 {
                    head.push(b',');
                }
                head.extend_from_slice(br#""audio":""#);
                let tail = b"\"}".to_vec();
                let total = head.len() as u64 + len.div_ceil(3) * 4 + tail.len() as u64;
                let body = Cursor::new(head)
                    .chain(Base64Reader::new(audio.file.reader()))
                    .chain(Cursor::new(tail));
                (
                    run_url(platform, model),
                    "application/json".into(),
                    Box::new(body),
                    total,
                )
            }
            AudioInput::Binary => (
                run_url(platform, model),
                audio
                    .content_type
                    .filter(|ct| is_plain_header(ct))
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                Box::new(audio.file.reader()),
                len,
            ),
        };
    Ok(Upload {
        url,
        content_type,
        len,
        body,
        first_byte: platform.first_byte_timeout,
    })
}

/// Cloudflare's `/ai/run/{model}` beside its OpenAI-compatible `/ai/v1` base.
fn run_url(platform: &Platform, model: &Model) -> String {
    let base = platform.base_url.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/run/{}", model.model_id)
}

/// The JSON fields beside Cloudflare's base64 `audio`.
fn base64_fields(req: &SttRequest) -> OwnedValue {
    let mut o = simd_json::owned::Object::new();
    o.insert("task".into(), OwnedValue::from("transcribe"));
    if let Some(l) = &req.language {
        o.insert("language".into(), OwnedValue::from(l.as_str()));
    }
    if let Some(p) = &req.prompt {
        o.insert("initial_prompt".into(), OwnedValue::from(p.as_str()));
    }
    OwnedValue::from(o)
}

/// OpenAI's upload: the fields, then the file part's head (`head`), the file, the closing
/// boundary (`tail`).
struct Multipart {
    boundary: String,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Multipart {
    fn new(model: &Model, req: &SttRequest, audio: &Audio<'_, '_>) -> Multipart {
        let mut random = [0u8; 12];
        crate::crypto::fill_random(&mut random);
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let boundary = format!("freellmapi-{hex}");
        let mut head = Vec::with_capacity(512);
        let mut field = |name: &str, value: &str| {
            head.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        };
        field("model", &model.model_id);
        // srt and vtt are made here from segments: only verbose_json carries them.
        field(
            "response_format",
            if req.segments { "verbose_json" } else { "json" },
        );
        if let Some(l) = &req.language {
            field("language", l);
        }
        if let Some(p) = &req.prompt {
            field("prompt", p);
        }
        if let Some(t) = &req.temperature {
            field("temperature", t);
        }
        if req.segments {
            field("timestamp_granularities[]", "segment");
            if req.words {
                field("timestamp_granularities[]", "word");
            }
        }
        let filename = file_name(audio.filename, audio.content_type);
        let content_type = audio
            .content_type
            .filter(|ct| is_plain_header(ct))
            .unwrap_or("application/octet-stream");
        head.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
        Multipart {
            boundary,
            head,
            tail,
        }
    }
}

/// A header value with nothing that could end it or break the quoting around it.
fn is_plain_header(v: &str) -> bool {
    !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"')
}

/// The file name sent on: the client's, reduced to characters that need no quoting (providers
/// tell formats apart by its extension), else one made from the content type.
fn file_name(name: Option<&str>, content_type: Option<&str>) -> String {
    let base = name
        .and_then(|n| n.rsplit(['/', '\\']).next())
        .unwrap_or("");
    let clean: String = base
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.contains('.') && !clean.starts_with('.') {
        return clean;
    }
    let ext = match content_type.map(|c| c.split(';').next().unwrap_or("").trim()) {
        Some("audio/mpeg" | "audio/mp3") => "mp3",
        Some("audio/wav" | "audio/x-wav" | "audio/wave") => "wav",
        Some("audio/flac" | "audio/x-flac") => "flac",
        Some("audio/ogg") => "ogg",
        Some("audio/webm" | "video/webm") => "webm",
        Some("audio/mp4" | "audio/m4a" | "audio/x-m4a") => "m4a",
        Some("video/mp4") => "mp4",
        _ => "wav",
    };
    format!("audio.{ext}")
}

/// Encodes what `inner` reads as standard base64 (with padding), a window at a time.
pub struct Base64Reader<R> {
    inner: R,
    /// Bytes read and not yet encoded (fewer than 3 until the end).
    raw: Vec<u8>,
    out: Vec<u8>,
    at: usize,
    done: bool,
}

/// Raw bytes encoded per refill: a multiple of 3, so no padding falls mid-stream.
const BASE64_WINDOW: usize = 48 * 1024;

impl<R: Read> Base64Reader<R> {
    pub fn new(inner: R) -> Base64Reader<R> {
        Base64Reader {
            inner,
            raw: Vec::with_capacity(BASE64_WINDOW),
            out: Vec::with_capacity(BASE64_WINDOW / 3 * 4),
            at: 0,
            done: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.at = 0;
        while !self.done && self.raw.len() < BASE64_WINDOW {
            let start = self.raw.len();
            self.raw.resize(BASE64_WINDOW, 0);
            let n = self.inner.read(&mut self.raw[start..]);
            self.raw.truncate(start + *n.as_ref().unwrap_or(&0));
            if n? == 0 {
                self.done = true;
            }
        }
        let whole = if self.done {
            self.raw.len()
        } else {
            self.raw.len() / 3 * 3
        };
        crate::crypto::base64_into(&mut self.out, &self.raw[..whole]);
        self.raw.drain(..whole);
        Ok(())
    }
}

impl<R: Read> Read for Base64Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.out.len() {
            if self.done && self.raw.is_empty() {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads a 2xx answer of `platform`.
pub fn read(platform: &Platform, mut body: Vec<u8>) -> Result<Transcript, WireError> {
    let v = json::parse_object(&mut body).map_err(|_| WireError::Malformed)?;
    let t = match platform.wire {
        Wire::Cloudflare => {
            if v.get_bool("success") == Some(false) {
                return Err(WireError::UpstreamError);
            }
            let r = v.get("result").ok_or(WireError::Malformed)?;
            let info = r.get("transcription_info");
            transcript(
                r,
                info.and_then(|i| i.get_str("language")),
                info.and_then(|i| number(i.get("duration"))),
            )?
        }
        Wire::Openai => {
            if v.get("error").is_some() && v.get("text").is_none() {
                return Err(WireError::UpstreamError);
            }
            transcript(&v, v.get_str("language"), number(v.get("duration")))?
        }
        Wire::Gemini => return Err(WireError::Malformed),
    };
    Ok(t)
}

fn transcript(
    v: &OwnedValue,
    language: Option<&str>,
    duration: Option<f64>,
) -> Result<Transcript, WireError> {
    let text = v.get_str("text").ok_or(WireError::Malformed)?;
    let segments: Vec<Segment> = v
        .get_array("segments")
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some(Segment {
                start: number(s.get("start"))?,
                end: number(s.get("end"))?,
                text: s.get_str("text")?.to_string(),
                seek: s.get_u64("seek").unwrap_or(0),
                tokens: s
                    .get_array("tokens")
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_u64())
                    .collect(),
                temperature: number(s.get("temperature")).unwrap_or(0.0),
                avg_logprob: number(s.get("avg_logprob")).unwrap_or(0.0),
                compression_ratio: number(s.get("compression_ratio")).unwrap_or(0.0),
                no_speech_prob: number(s.get("no_speech_prob")).unwrap_or(0.0),
            })
        })
        .collect();
    let words: Vec<Word> = v
        .get_array("words")
        .into_iter()
        .flatten()
        .filter_map(|w| {
            Some(Word {
                word: w.get_str("word")?.to_string(),
                start: number(w.get("start"))?,
                end: number(w.get("end"))?,
            })
        })
        .collect();
    let duration = duration
        .or_else(|| segments.last().map(|s| s.end))
        .or_else(|| words.last().map(|w| w.end));
    Ok(Transcript {
        text: text.to_string(),
        language: language.filter(|l| !l.is_empty()).map(str::to_string),
        duration,
        segments,
        words,
    })
}

/// A JSON number (or a numeric string) that is finite and not negative.
fn number(v: Option<&OwnedValue>) -> Option<f64> {
    let v = v?;
    v.cast_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_streams_in_any_reads_as_it_encodes_whole() {
        for len in [
            0usize,
            1,
            2,
            3,
            4,
            47 * 1024,
            BASE64_WINDOW,
            BASE64_WINDOW + 1,
            200_001,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut want = Vec::new();
            crate::crypto::base64_into(&mut want, &data);
            assert_eq!(want.len() as u64, (len as u64).div_ceil(3) * 4);
            // An inner reader that hands out 1000 bytes at a time, read 777 at a time.
            struct Dribble<'a>(&'a [u8]);
            impl Read for Dribble<'_> {
                fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                    let n = self.0.len().min(buf.len()).min(1000);
                    buf[..n].copy_from_slice(&self.0[..n]);
                    self.0 = &self.0[n..];
                    Ok(n)
                }
            }
            let mut r = Base64Reader::new(Dribble(&data));
            let mut got = Vec::new();
            let mut buf = [0u8; 777];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, want, "{len}");
        }
    }

    #[test]
    fn file_names_keep_their_extension_and_nothing_that_breaks_quoting() {
        assert_eq!(file_name(Some("talk.mp3"), None), "talk.mp3");
        assert_eq!(
            file_name(Some("C:\\rec\\my \"talk\".m4a"), None),
            "my__talk_.m4a"
        );
        assert_eq!(file_name(Some("../x\r\n.wav"), None), "x__.wav");
        assert_eq!(file_name(None, Some("audio/mpeg")), "audio.mp3");
        assert_eq!(file_name(Some("noext"), Some("audio/ogg")), "audio.ogg");
        assert_eq!(file_name(Some(".hidden"), None), "audio.wav");
    }

    #[test]
    fn answers_of_both_wires_read_into_one_transcript() {
        let c = crate::catalog::Catalog::builtin();
        let groq = &c.platforms[c.platform_index("groq").unwrap()];
        let cf = &c.platforms[c.platform_index("cloudflare").unwrap()];
        let verbose = br#"{"task":"transcribe","language":"English","duration":3.5,"text":" Hi there.",
            "segments":[{"id":0,"seek":0,"start":0,"end":1.5,"text":" Hi","tokens":[50364,2421],"temperature":0,"avg_logprob":-0.2,"compression_ratio":0.8,"no_speech_prob":0.01},
                        {"id":1,"seek":0,"start":1.5,"end":3.5,"text":" there.","tokens":[],"temperature":0,"avg_logprob":-0.3,"compression_ratio":0.8,"no_speech_prob":0.02}],
            "x_groq":{"id":"req_1"}}"#;
        let t = read(groq, verbose.to_vec()).unwrap();
        assert_eq!(t.text, " Hi there.");
        assert_eq!(
            (t.language.as_deref(), t.duration),
            (Some("English"), Some(3.5))
        );
        assert_eq!(t.segments.len(), 2);
        assert_eq!(t.segments[0].tokens, [50364, 2421]);
        let t = read(groq, br#"{"text":"Hi"}"#.to_vec()).unwrap();
        assert_eq!((t.text.as_str(), t.duration), ("Hi", None));
        assert_eq!(
            read(groq, br#"{"nope":1}"#.to_vec()),
            Err(WireError::Malformed)
        );

        let turbo = br#"{"result":{"transcription_info":{"language":"en","language_probability":0.98,"duration":2.0,"duration_after_vad":2.0},
            "text":"Hello.","word_count":1,"segments":[{"start":0.0,"end":2.0,"text":"Hello.","temperature":0,"avg_logprob":-0.1,"compression_ratio":0.5,"no_speech_prob":0.0,"words":[]}],
            "vtt":"WEBVTT\n\n00:00.000 --> 00:02.000\nHello.\n\n"},"success":true,"errors":[],"messages":[]}"#;
        let t = read(cf, turbo.to_vec()).unwrap();
        assert_eq!(
            (t.text.as_str(), t.language.as_deref(), t.duration),
            ("Hello.", Some("en"), Some(2.0))
        );
        assert_eq!(t.segments[0].end, 2.0);
        let whisper = br#"{"result":{"text":"Hi you","word_count":2,"words":[{"word":"Hi","start":0,"end":0.5},{"word":"you","start":0.5,"end":1.25}],"vtt":"WEBVTT"},"success":true}"#;
        let t = read(cf, whisper.to_vec()).unwrap();
        assert_eq!((t.words.len(), t.duration), (2, Some(1.25)));
        assert_eq!(
            read(
                cf,
                br#"{"result":null,"success":false,"errors":[{"code":5006,"message":"x"}]}"#
                    .to_vec()
            ),
            Err(WireError::UpstreamError)
        );
    }
}
