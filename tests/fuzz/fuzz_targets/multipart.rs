//! multipart/form-data bodies: any bytes under any boundary, read in pieces of any size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    freellmapi::http::fuzz::multipart(data);
});
