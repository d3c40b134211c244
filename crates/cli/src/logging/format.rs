//! How a plain log line is written: its timestamp and its fields.
//!
//! tracing-subscriber's own field formatter writes every value through `Debug`, a character at
//! a time so as to escape terminal control sequences: measured under callgrind, it was 13,000 of
//! the 15,000 instructions a request's log line cost, and the line as much as the rest of the
//! request. These write each value whole and escape only what needs it; the output keeps the
//! same `name=value` shape, and control characters in a value are still escaped, so that no
//! value can forge a line or drive the terminal.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::FormatFields;
// One rule for bare words, shared with the request line the server writes as one message.
use tidepool_server::http::request_log::is_plain_word;

/// Fields as `message name=value …`. A text value is written bare when it is one plain word and
/// quoted (escaped as Rust escapes strings) otherwise; other values are written as they format.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = Visitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Escaping<'_, '_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let mut out = Escaping(self.writer);
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                out.0.write_char(' ')?;
            }
            if field.name() != "message" {
                out.0.write_str(field.name())?;
                out.0.write_char('=')?;
            }
            value(&mut out)
        })();
    }
}

impl Visit for Visitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        let plain = !message && is_plain_word(value);
        self.field(field, |out| {
            if plain {
                // Checked already: nothing to escape.
                out.0.write_str(value)
            } else if message {
                out.write_str(value)
            } else {
                write!(out.0, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out.0, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out.0, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| {
            out.0.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| write!(out, "{value:?}"));
    }
}

/// Passes text through, escaping control characters (an escape sequence, a newline) so that a
/// value cannot end the line or reach the terminal. The check is per piece of text, so the
/// common case costs a scan and one copy.
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // A scan without an early exit, which the compiler turns into wide compares: a request's
        // whole line is checked this way.
        let controls = s
            .bytes()
            .fold(false, |found, b| found | (b < b' ') | (b == 0x7f));
        if !controls {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            if c.is_control() {
                write!(self.0, "{}", c.escape_default())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// RFC 3339 timestamps in UTC with microseconds, as tracing-subscriber writes them. The date and
/// time of day change once a second: they are formatted then and kept, so that a line costs the
/// microseconds only.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timestamp;

thread_local! {
    /// The last second formatted on this thread, and its text up to the seconds' point.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for Timestamp {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        SECOND.with_borrow_mut(|(second, text)| {
            if *second != secs {
                let Ok(at) = time::OffsetDateTime::from_unix_timestamp(secs as i64) else {
                    return w.write_str("<time out of range>");
                };
                text.clear();
                write!(
                    text,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                    at.year(),
                    u8::from(at.month()),
                    at.day(),
                    at.hour(),
                    at.minute(),
                    at.second()
                )?;
                *second = secs;
            }
            w.write_str(text)?;
            // `.uuuuuuZ`, without `fmt`'s padding machinery.
            let mut micros = now.subsec_micros();
            let mut tail = *b".000000Z";
            for digit in tail[1..7].iter_mut().rev() {
                *digit = b'0' + (micros % 10) as u8;
                micros /= 10;
            }
            w.write_str(std::str::from_utf8(&tail).map_err(|_| fmt::Error)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter;

    /// Captures what a subscriber writes, for the assertions.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn logged(emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .fmt_fields(PlainFields)
            .with_timer(Timestamp)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn fields_read_as_name_value_and_cannot_forge_a_line() {
        let line = logged(|| {
            tracing::info!(
                route = "/v2/images/{image_id}",
                account = "two words",
                status = 200u64,
                delta = -3i64,
                complete = true,
                client = %"203.0.113.9",
                hostile = %"evil\n2026-01-01T00:00:00Z INFO forged\u{1b}[31m",
                "request"
            )
        });
        assert_eq!(
            line.lines().count(),
            1,
            "one line, whatever the values: {line:?}"
        );
        assert!(
            line.contains(
                "request route=/v2/images/{image_id} account=\"two words\" status=200 delta=-3 \
                 complete=true client=203.0.113.9 hostile=evil\\n2026"
            ),
            "{line}"
        );
        assert!(
            !line.contains('\u{1b}'),
            "no escape character reaches the log: {line:?}"
        );
        assert!(line.contains("forged\\u{1b}[31m"), "{line}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let line = logged(|| tracing::info!("x"));
        let stamp = line.split(' ').next().unwrap();
        let parsed =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{stamp:?}: {e}"));
        let age = time::OffsetDateTime::now_utc() - parsed;
        assert!(age.whole_seconds().abs() < 5, "{stamp} is now");
        assert_eq!(stamp.len(), "2026-12-04T19:22:36.058735Z".len(), "{stamp}");
    }
}
