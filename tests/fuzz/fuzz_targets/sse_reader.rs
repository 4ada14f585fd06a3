//! An upstream event stream in any split: the events read in one piece and byte by byte must
//! be the same, and nothing may panic.
#![no_main]

use freellmapi::upstream::sse::SseReader;

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
});
