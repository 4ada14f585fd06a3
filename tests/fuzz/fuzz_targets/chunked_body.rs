//! Chunked request bodies: sizes, extensions, trailers and data after a valid chunked head.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut bytes =
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    bytes.extend_from_slice(data);
    freellmapi::http::fuzz::requests(&bytes);
});
