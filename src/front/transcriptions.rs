//! OpenAI's `POST /v1/audio/transcriptions`: the form's text fields read into a request for any
//! provider (each bad value a 400 naming its field), and a [`Transcript`] written in the
//! `response_format` the client asked for: `json`, `text`, `verbose_json`, `srt` or `vtt`
//! (subtitles are made here from segments, whatever the provider can write).

use crate::chat::{Invalid, MAX_MODEL_NAME, invalid};
use crate::http::multipart::Form;
use crate::json::write_str;
use crate::wire::transcriptions::{Segment, SttRequest, Transcript};

/// The answer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
    VerboseJson,
    Srt,
    Vtt,
}

impl Format {
    fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "json" => Format::Json,
            "text" => Format::Text,
            "verbose_json" => Format::VerboseJson,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            _ => return None,
        })
    }

    /// Whether it needs segment timestamps from the provider.
    fn needs_segments(self) -> bool {
        matches!(self, Format::VerboseJson | Format::Srt | Format::Vtt)
    }
}

/// A transcription request as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub model: String,
    pub format: Format,
    pub request: SttRequest,
}

/// The longest prompt passed on (Whisper reads its last 224 tokens; this is ample).
const MAX_PROMPT_CHARS: usize = 4096;

/// Reads the form's fields; the file itself was checked to be there by the caller.
pub fn parse(form: &Form) -> Result<Parsed, Invalid> {
    let field = |name| form.field(name).map(str::trim);
    let model = match field("model") {
        None | Some("") => {
            return Err(invalid(
                "missing_required_parameter",
                "model: required; send whisper-1 or a speech-to-text model that /v1/models lists with \"type\": \"transcription\"".into(),
            ));
        }
        Some(m) if m.len() > MAX_MODEL_NAME => {
            return Err(invalid(
                "invalid_value",
                format!("model: longer than {MAX_MODEL_NAME} characters"),
            ));
        }
        Some(m) => m.to_string(),
    };
    let format = match field("response_format") {
        None | Some("") => Format::Json,
        Some(f) => Format::parse(f).ok_or_else(|| {
            invalid(
                "invalid_value",
                format!(
                    "response_format: {f:?} is not one of json, text, srt, verbose_json or vtt"
                ),
            )
        })?,
    };
    let language = match field("language") {
        None | Some("") => None,
        Some(l) if (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(l.to_ascii_lowercase())
        }
        Some(l) => {
            return Err(invalid(
                "invalid_value",
                format!(
                    "language: {l:?} is not an ISO-639-1 code such as \"en\" (leave it out to detect the language)"
                ),
            ));
        }
    };
    let temperature = match field("temperature") {
        None | Some("") => None,
        Some(t) => match t.parse::<f64>() {
            Ok(n) if (0.0..=1.0).contains(&n) => Some(t.to_string()),
            _ => {
                return Err(invalid(
                    "invalid_value",
                    format!("temperature: {t:?} is not a number from 0 to 1"),
                ));
            }
        },
    };
    let prompt = form.field("prompt").filter(|p| !p.trim().is_empty());
    if prompt.is_some_and(|p| p.chars().count() > MAX_PROMPT_CHARS) {
        return Err(invalid(
            "invalid_value",
            format!("prompt: longer than {MAX_PROMPT_CHARS} characters"),
        ));
    }
    let mut words = false;
    let mut granularities = 0;
    for g in form
        .all("timestamp_granularities[]")
        .chain(form.all("timestamp_granularities"))
    {
        granularities += 1;
        match g.trim() {
            "word" => words = true,
            "segment" => {}
            other => {
                return Err(invalid(
                    "invalid_value",
                    format!("timestamp_granularities[]: {other:?} is not word or segment"),
                ));
            }
        }
    }
    if granularities > 0 && format != Format::VerboseJson {
        return Err(invalid(
            "invalid_value",
            "timestamp_granularities[]: only with response_format verbose_json".into(),
        ));
    }
    if field("stream").is_some_and(|s| s.eq_ignore_ascii_case("true")) {
        return Err(invalid(
            "invalid_value",
            "stream: Whisper models answer whole; leave stream out".into(),
        ));
    }
    Ok(Parsed {
        model,
        format,
        request: SttRequest {
            language,
            prompt: prompt.map(str::to_string),
            temperature,
            segments: format.needs_segments(),
            words,
        },
    })
}

/// The answer's content type and body.
pub fn render(t: &Transcript, p: &Parsed) -> (&'static str, Vec<u8>) {
    match p.format {
        Format::Json => {
            let mut out = b"{\"text\":".to_vec();
            write_str(&mut out, &t.text);
            out.push(b'}');
            ("application/json", out)
        }
        Format::Text => {
            let mut out = t.text.trim().as_bytes().to_vec();
            out.push(b'\n');
            ("text/plain; charset=utf-8", out)
        }
        Format::VerboseJson => ("application/json", verbose(t, p)),
        Format::Srt => ("application/x-subrip; charset=utf-8", srt(t)),
        Format::Vtt => ("text/vtt; charset=utf-8", vtt(t)),
    }
}

fn push_num(out: &mut Vec<u8>, n: f64) {
    // Seconds to the millisecond, as OpenAI writes them; never NaN (checked when read).
    let n = (n * 1000.0).round() / 1000.0;
    out.extend_from_slice(format!("{n:?}").as_bytes());
}

/// OpenAI's `verbose_json`: task, language, duration, text, segments (and words when asked).
fn verbose(t: &Transcript, p: &Parsed) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + t.text.len() * 2);
    out.extend_from_slice(b"{\"task\":\"transcribe\",\"language\":");
    let language = t
        .language
        .as_deref()
        .or(p.request.language.as_deref())
        .unwrap_or("unknown");
    write_str(&mut out, language);
    out.extend_from_slice(b",\"duration\":");
    push_num(&mut out, t.duration.unwrap_or(0.0));
    out.extend_from_slice(b",\"text\":");
    write_str(&mut out, &t.text);
    out.extend_from_slice(b",\"segments\":[");
    for (i, s) in segments(t).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("{{\"id\":{i},\"seek\":{},\"start\":", s.seek).as_bytes());
        push_num(&mut out, s.start);
        out.extend_from_slice(b",\"end\":");
        push_num(&mut out, s.end);
        out.extend_from_slice(b",\"text\":");
        write_str(&mut out, &s.text);
        out.extend_from_slice(b",\"tokens\":[");
        let tokens: Vec<String> = s.tokens.iter().map(u64::to_string).collect();
        out.extend_from_slice(tokens.join(",").as_bytes());
        out.extend_from_slice(b"],\"temperature\":");
        push_num(&mut out, s.temperature);
        out.extend_from_slice(b",\"avg_logprob\":");
        // Log probabilities are negative: written as read, not clamped.
        out.extend_from_slice(format!("{:?}", s.avg_logprob).as_bytes());
        out.extend_from_slice(b",\"compression_ratio\":");
        push_num(&mut out, s.compression_ratio);
        out.extend_from_slice(b",\"no_speech_prob\":");
        push_num(&mut out, s.no_speech_prob);
        out.push(b'}');
    }
    out.push(b']');
    if p.request.words {
        out.extend_from_slice(b",\"words\":[");
        for (i, w) in t.words.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"word\":");
            write_str(&mut out, &w.word);
            out.extend_from_slice(b",\"start\":");
            push_num(&mut out, w.start);
            out.extend_from_slice(b",\"end\":");
            push_num(&mut out, w.end);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
    out
}

/// The transcript's segments: the provider's, else made from its words (a cue per sentence,
/// or per 12 words), else one for the whole text.
fn segments(t: &Transcript) -> Vec<Segment> {
    if !t.segments.is_empty() {
        return t.segments.clone();
    }
    if !t.words.is_empty() {
        let mut out: Vec<Segment> = Vec::new();
        let mut open: Option<(Segment, usize)> = None;
        for w in &t.words {
            let (seg, n) = open.get_or_insert_with(|| {
                (
                    Segment {
                        start: w.start,
                        ..Segment::default()
                    },
                    0,
                )
            });
            if !seg.text.is_empty() {
                seg.text.push(' ');
            }
            seg.text.push_str(w.word.trim());
            seg.end = w.end;
            *n += 1;
            if *n >= 12 || w.word.trim_end().ends_with(['.', '?', '!']) {
                out.extend(open.take().map(|(s, _)| s));
            }
        }
        out.extend(open.map(|(s, _)| s));
        return out;
    }
    if t.text.trim().is_empty() {
        return Vec::new();
    }
    vec![Segment {
        start: 0.0,
        end: t.duration.unwrap_or(0.0),
        text: t.text.clone(),
        ..Segment::default()
    }]
}

/// `HH:MM:SS` and the milliseconds after `sep`.
fn timestamp(out: &mut String, seconds: f64, sep: char) {
    let ms = (seconds * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    out.push_str(&format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}"));
}

/// A cue's text on one or more lines, with no blank line (which would end the cue).
fn cue_text(text: &str) -> String {
    text.trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn srt(t: &Transcript) -> Vec<u8> {
    let mut out = String::new();
    for (i, s) in segments(t).iter().enumerate() {
        out.push_str(&format!("{}\n", i + 1));
        timestamp(&mut out, s.start, ',');
        out.push_str(" --> ");
        timestamp(&mut out, s.end, ',');
        out.push('\n');
        out.push_str(&cue_text(&s.text));
        out.push_str("\n\n");
    }
    out.into_bytes()
}

fn vtt(t: &Transcript) -> Vec<u8> {
    let mut out = String::from("WEBVTT\n\n");
    for s in segments(t) {
        timestamp(&mut out, s.start, '.');
        out.push_str(" --> ");
        timestamp(&mut out, s.end, '.');
        out.push('\n');
        // `-->` inside a cue's text would read as a timing line.
        out.push_str(&cue_text(&s.text).replace("-->", "->"));
        out.push_str("\n\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::transcriptions::Word;

    fn form(fields: &[(&str, &str)]) -> Form {
        Form {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            file: None,
        }
    }

    #[test]
    fn fields_are_checked_and_each_error_names_its_field() {
        let p = parse(&form(&[
            ("model", "whisper-1"),
            ("language", "EN"),
            ("temperature", "0.2"),
            ("prompt", "Freellmapi, Groq"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
        ]))
        .unwrap();
        assert_eq!(p.model, "whisper-1");
        assert_eq!(p.format, Format::VerboseJson);
        assert_eq!(p.request.language.as_deref(), Some("en"));
        assert!(p.request.segments && p.request.words);
        let p = parse(&form(&[("model", "m")])).unwrap();
        assert_eq!((p.format, p.request.segments), (Format::Json, false));
        for (fields, names) in [
            (&[][..], "model:"),
            (
                &[("model", "m"), ("response_format", "xml")][..],
                "response_format:",
            ),
            (&[("model", "m"), ("language", "english")][..], "language:"),
            (&[("model", "m"), ("temperature", "2")][..], "temperature:"),
            (
                &[("model", "m"), ("temperature", "hot")][..],
                "temperature:",
            ),
            (
                &[("model", "m"), ("timestamp_granularities[]", "word")][..],
                "timestamp_granularities[]:",
            ),
            (
                &[
                    ("model", "m"),
                    ("response_format", "verbose_json"),
                    ("timestamp_granularities[]", "char"),
                ][..],
                "timestamp_granularities[]:",
            ),
            (&[("model", "m"), ("stream", "true")][..], "stream:"),
        ] {
            let e = parse(&form(fields)).unwrap_err();
            assert!(e.message.starts_with(names), "{fields:?}: {}", e.message);
        }
    }

    fn transcript() -> Transcript {
        Transcript {
            text: " Hello there. General Kenobi!".into(),
            language: Some("english".into()),
            duration: Some(3725.5),
            segments: vec![
                Segment {
                    start: 0.0,
                    end: 1.5,
                    text: " Hello there.".into(),
                    avg_logprob: -0.25,
                    ..Segment::default()
                },
                Segment {
                    start: 3661.001,
                    end: 3725.5,
                    text: " General --> Kenobi!\n\n".into(),
                    ..Segment::default()
                },
            ],
            words: vec![],
        }
    }

    fn rendered(format: &str) -> (String, String) {
        let p = parse(&form(&[("model", "m"), ("response_format", format)])).unwrap();
        let (ct, body) = render(&transcript(), &p);
        (ct.to_string(), String::from_utf8(body).unwrap())
    }

    #[test]
    fn every_format_is_written_as_openai_writes_it() {
        assert_eq!(
            rendered("json"),
            (
                "application/json".into(),
                r#"{"text":" Hello there. General Kenobi!"}"#.into()
            )
        );
        assert_eq!(rendered("text").1, "Hello there. General Kenobi!\n");
        assert_eq!(
            rendered("srt").1,
            "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n01:01:01,001 --> 01:02:05,500\nGeneral --> Kenobi!\n\n"
        );
        assert_eq!(
            rendered("vtt").1,
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n01:01:01.001 --> 01:02:05.500\nGeneral -> Kenobi!\n\n"
        );
        let (ct, v) = rendered("verbose_json");
        assert_eq!(ct, "application/json");
        let mut bytes = v.into_bytes();
        let v = simd_json::to_owned_value(&mut bytes).unwrap();
        use simd_json::prelude::*;
        assert_eq!(v.get_str("task"), Some("transcribe"));
        assert_eq!(v.get_str("language"), Some("english"));
        assert_eq!(v.get_f64("duration"), Some(3725.5));
        let segs = v.get_array("segments").unwrap();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].get_u64("id"), Some(1));
        assert_eq!(segs[0].get_f64("avg_logprob"), Some(-0.25));
        assert!(v.get("words").is_none(), "words only when asked");
    }

    #[test]
    fn cues_come_from_words_or_the_whole_text_when_there_are_no_segments() {
        let words: Vec<Word> = ["One", "two.", "Three"]
            .iter()
            .enumerate()
            .map(|(i, w)| Word {
                word: w.to_string(),
                start: i as f64,
                end: i as f64 + 0.5,
            })
            .collect();
        let t = Transcript {
            text: "One two. Three".into(),
            words,
            ..Transcript::default()
        };
        let s = segments(&t);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].text.as_str(), s[0].start, s[0].end),
            ("One two.", 0.0, 1.5)
        );
        assert_eq!(
            (s[1].text.as_str(), s[1].start, s[1].end),
            ("Three", 2.0, 2.5)
        );
        let whole = Transcript {
            text: "Just this".into(),
            duration: Some(2.0),
            ..Transcript::default()
        };
        assert_eq!(segments(&whole)[0].end, 2.0);
        assert!(segments(&Transcript::default()).is_empty());
    }
}
