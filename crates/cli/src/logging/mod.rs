//! The server's logs: plain text or JSON lines on stderr, filtered by `TIDEPOOL_LOG`.

mod format;
mod writer;

use format::{PlainFields, Timestamp};
use tidepool_server::config::LogFormat;
pub use writer::BufferedStderr;

/// Logs to stderr, buffered (see `writer`); the returned writer is flushed at exit.
pub fn init(format: LogFormat) -> BufferedStderr {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIDEPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let writer = BufferedStderr::start();
    // A panic's message goes straight to stderr: the lines before it go first.
    let panic_flush = writer.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        panic_flush.flush_unless_busy();
        default_hook(info);
    }));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone())
        .with_timer(Timestamp);
    match format {
        // Colours only for a person at a terminal: a file or journald would keep the escapes.
        LogFormat::Text => logs
            .fmt_fields(PlainFields)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        // The event's fields at the top level, and the span it happened in (a request's or an
        // import's, with their ids).
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    writer
}
