//! Where the server's log lines go: standard error, through a buffer.
//!
//! Written straight to stderr, every request's log line cost a `write` system call on the
//! request's own thread, more than formatting the line (and more still into a pipe to journald).
//! As nginx's `access_log … buffer= flush=` does, lines at `info` and below are gathered and
//! written together when the buffer fills or [`FLUSH_EVERY`] has passed, whichever comes first;
//! warnings and errors are written at once, after what is buffered, so that order holds and
//! nothing that matters waits. What a `kill -9` can lose is at most the last [`FLUSH_EVERY`] of
//! request lines.

use std::io::{self, BufWriter, Stderr, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a buffered line may wait: short enough that someone tailing the log sees no delay.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A few hundred request lines.
const BUFFER_BYTES: usize = 64 * 1024;

/// The writer the log subscriber writes through; clones share one buffer.
#[derive(Clone)]
pub struct BufferedStderr {
    buffer: Arc<Mutex<BufWriter<Stderr>>>,
}

impl BufferedStderr {
    /// A buffered stderr, with a thread that flushes it every [`FLUSH_EVERY`].
    pub fn start() -> Self {
        let writer = BufferedStderr {
            buffer: Arc::new(Mutex::new(BufWriter::with_capacity(
                BUFFER_BYTES,
                io::stderr(),
            ))),
        };
        let flusher = writer.clone();
        let spawned = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_EVERY);
                flusher.flush();
            });
        if spawned.is_err() {
            // Without the thread, lines would wait for the buffer to fill: write them at once.
            eprintln!("tidepool: log lines are written unbuffered (no thread to flush them)");
            return BufferedStderr {
                buffer: Arc::new(Mutex::new(BufWriter::with_capacity(0, io::stderr()))),
            };
        }
        writer
    }

    /// Writes out what is buffered (at exit, and before a panic's message).
    pub fn flush(&self) {
        let _ = self.lock().flush();
    }

    fn lock(&self) -> MutexGuard<'_, BufWriter<Stderr>> {
        // A panic while a line was being written leaves at worst a partial line.
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One line's writer: holds the buffer for the line, and flushes it after an urgent one.
pub struct LineWriter<'a> {
    buffer: MutexGuard<'a, BufWriter<Stderr>>,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.buffer.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.buffer.flush()
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.urgent {
            let _ = self.buffer.flush();
        }
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            buffer: self.lock(),
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            buffer: self.lock(),
            // `WARN` and `ERROR` compare as less than `INFO`: they are the more severe.
            urgent: *meta.level() <= Level::WARN,
        }
    }
}
