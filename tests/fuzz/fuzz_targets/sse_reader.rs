//! An upstream event stream in any split: the events read in one piece and byte by byte must
//! be the same, and nothing may panic. Each event is also glanced at as the relay does: an
//! event the scan lets pass unparsed must be one the parser reads as a plain chunk with the
//! same character count.
#![no_main]

use freellmapi::upstream::sse::SseReader;
use freellmapi::wire::glance::{Glance, glance};
use freellmapi::wire::openai::inspect_chunk;

fn events(data: &[u8], piece: usize) -> Result<Vec<Vec<u8>>, ()> {
    let mut sse = SseReader::new();
    let mut out = Vec::new();
    for part in data.chunks(piece.max(1)) {
        // One fill reads at most the reader's buffer: read the part until it is used up.
        let mut r = part;
        while sse.fill_from(&mut r).map_err(|_| ())? > 0 {
            while let Some(e) = sse.next_event().map_err(|_| ())? {
                out.push(e.to_vec());
            }
        }
    }
    if let Some(e) = sse.finish() {
        out.push(e.to_vec());
    }
    Ok(out)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let whole = events(data, data.len());
    let bytewise = events(data, 1);
    if let (Ok(a), Ok(b)) = (&whole, &bytewise) {
        assert_eq!(a, b, "the split changed the events");
    }
    let mut scratch = freellmapi::json::ChunkScratch::default();
    for event in whole.iter().flatten() {
        if let Glance::Plain { output_chars } = glance(event) {
            let facts = inspect_chunk(event, &mut scratch).expect("a passed event parses");
            assert!(!facts.error && !facts.finished && facts.usage.is_none());
            assert_eq!(facts.output_chars, output_chars, "character counts differ");
        }
    }
});
