//! Process entry: the allocator, the panic hook, and the command line. Nothing else.

#[global_allocator]
static GLOBAL: freellmapi::alloc::EdgeAlloc = freellmapi::alloc::EdgeAlloc;

fn main() {
    freellmapi::alloc::purge_promptly();
    // Panics go through the redacting logger, one line, instead of raw stderr.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        if log::log_enabled!(log::Level::Error) {
            log::error!("internal error{location}: {message}");
        } else {
            eprintln!(
                "freellmapi: internal error{location}: {}",
                freellmapi::logging::redact(&message)
            );
        }
    }));
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(freellmapi::cli::run(args));
}
