//! Whatever bytes a client sends: heads, bodies and pipelined requests, read as a connection
//! reads them. No panic, no body over its limit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    freellmapi::http::fuzz::requests(data);
});
