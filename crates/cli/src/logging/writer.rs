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
pub type BufferedStderr = Buffered<Stderr>;

/// Lines buffered on their way to `W` (stderr; a `Vec` in the tests).
pub struct Buffered<W: Write> {
    buffer: Arc<Mutex<BufWriter<W>>>,
}

impl<W: Write> Clone for Buffered<W> {
    fn clone(&self) -> Self {
        Buffered {
            buffer: self.buffer.clone(),
        }
    }
}

impl BufferedStderr {
    /// A buffered stderr, with a thread that flushes it every [`FLUSH_EVERY`].
    pub fn start() -> Self {
        let writer = Buffered::new(io::stderr(), BUFFER_BYTES);
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
            return Buffered::new(io::stderr(), 0);
        }
        writer
    }
}

impl<W: Write> Buffered<W> {
    fn new(out: W, capacity: usize) -> Self {
        Buffered {
            buffer: Arc::new(Mutex::new(BufWriter::with_capacity(capacity, out))),
        }
    }

    /// Writes out what is buffered (at exit, and from the flushing thread).
    pub fn flush(&self) {
        let _ = self.lock().flush();
    }

    /// Writes out what is buffered unless a line is being written: for the panic hook, which
    /// may run on the thread that holds the buffer (waiting for it there would never end).
    pub fn flush_unless_busy(&self) {
        if let Ok(mut buffer) = self.buffer.try_lock() {
            let _ = buffer.flush();
        }
    }

    fn lock(&self) -> MutexGuard<'_, BufWriter<W>> {
        // A panic while a line was being written leaves at worst a partial line.
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One line's writer: holds the buffer for the line, and flushes it after an urgent one.
pub struct LineWriter<'a, W: Write> {
    buffer: MutexGuard<'a, BufWriter<W>>,
    urgent: bool,
}

impl<W: Write> Write for LineWriter<'_, W> {
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

impl<W: Write> Drop for LineWriter<'_, W> {
    fn drop(&mut self) {
        if self.urgent {
            let _ = self.buffer.flush();
        }
    }
}

impl<'a, W: Write + 'a> MakeWriter<'a> for Buffered<W> {
    type Writer = LineWriter<'a, W>;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// What reached the sink, shared with the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn info_lines_wait_for_a_flush_and_warnings_go_out_at_once_in_order() {
        let sink = Sink::default();
        let logs = Buffered::new(sink.clone(), BUFFER_BYTES);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first");
            assert_eq!(sink.text(), "", "an info line waits in the buffer");
            tracing::warn!("second");
            let text = sink.text();
            let (first, second) = (text.find("first"), text.find("second"));
            assert!(
                first.is_some() && first < second,
                "in order, at once: {text:?}"
            );
            tracing::info!("third");
            assert!(!sink.text().contains("third"));
            logs.flush();
            assert!(sink.text().contains("third"), "a flush writes the rest");
            tracing::info!("fourth");
            logs.flush_unless_busy();
            assert!(
                sink.text().contains("fourth"),
                "nobody is writing: it flushes"
            );
        });
    }
}
