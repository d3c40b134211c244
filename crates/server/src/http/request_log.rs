//! The line every request leaves in the log (target `tidepool::request`).
//!
//! It is written for every request, so its cost is the API's: measured under callgrind, through
//! tracing's ten fields it cost 6,000 instructions, 8 % of a `GET /v2/images/{id}`. For JSON
//! logs the values stay fields of their own, which log collectors index. For plain logs the same
//! `name=value` text is built in a stack buffer and handed to tracing as the message, a third of
//! the cost.

use crate::config::LogFormat;
use std::fmt::{self, Write};
use std::net::IpAddr;
use std::time::Duration;
use tracing::Level;

/// What the line says about one request.
pub(super) struct RequestLine<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub bytes: u64,
    pub account: &'a str,
    pub client: Option<IpAddr>,
    /// Whether the body was sent to its end (not dropped because the client went away).
    pub complete: bool,
}

impl RequestLine<'_> {
    /// Writes the line, at `debug` for `probe` requests (health checks, scrapes), else `info`.
    pub(super) fn emit(&self, format: LogFormat, probe: bool) {
        // With the line filtered out (`TIDEPOOL_LOG=warn`), nothing of it is built.
        let enabled = if probe {
            tracing::enabled!(target: "tidepool::request", Level::DEBUG)
        } else {
            tracing::enabled!(target: "tidepool::request", Level::INFO)
        };
        if !enabled {
            return;
        }
        let duration = StackText::<24>::millis(self.elapsed);
        let client = StackText::<48>::client(self.client);
        macro_rules! line {
            ($level:ident) => {
                match format {
                    LogFormat::Json => tracing::$level!(
                        target: "tidepool::request",
                        request_id = self.request_id,
                        method = self.method,
                        route = self.route,
                        status = self.status,
                        duration_ms = duration.as_str(),
                        bytes = self.bytes,
                        account = self.account,
                        client = client.as_str(),
                        complete = self.complete,
                        "request"
                    ),
                    LogFormat::Text => {
                        let mut text = StackText::<512>::new();
                        let mut long = String::new();
                        // An account name too long for the buffer takes the slow way.
                        let line = match self.write_text(&mut text, &duration, &client) {
                            Ok(()) => text.as_str(),
                            Err(_) => {
                                let _ = self.write_text(&mut long, &duration, &client);
                                &long
                            }
                        };
                        tracing::$level!(target: "tidepool::request", message = line)
                    }
                }
            };
        }
        if probe {
            line!(debug);
        } else {
            line!(info);
        }
    }

    fn write_text(
        &self,
        out: &mut impl Write,
        duration: &StackText<24>,
        client: &StackText<48>,
    ) -> fmt::Result {
        write!(
            out,
            "request request_id={} method={} route={} status={} duration_ms={} bytes={} \
             account={} client={} complete={}",
            self.request_id,
            self.method,
            self.route,
            self.status,
            duration.as_str(),
            self.bytes,
            Word(self.account),
            client.as_str(),
            self.complete
        )
    }
}

/// Whether a text value reads unambiguously in a `name=value` line without quotes.
pub fn is_plain_word(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b > b' ' && b != b'"' && b != b'=' && b != b'\\' && b != 0x7f)
}

/// A value as a `name=value` line shows it: bare when it is one plain word, else quoted.
struct Word<'a>(&'a str);

impl fmt::Display for Word<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_word(self.0) {
            f.write_str(self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

/// Text built in a buffer on the stack; writing past its end is an error, not a reallocation.
struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    fn new() -> Self {
        StackText {
            buf: [0; N],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }

    /// Milliseconds with three decimals, from the duration's microseconds, without `fmt`.
    fn millis(elapsed: Duration) -> Self {
        let micros = elapsed.as_micros();
        let mut text = StackText::new();
        let fraction = (micros % 1000) as u16;
        let digits = [fraction / 100, fraction / 10 % 10, fraction % 10].map(|d| b'0' + d as u8);
        let _ = text
            .push(itoa::Buffer::new().format(micros / 1000))
            .and_then(|()| text.push("."))
            .and_then(|()| text.push(std::str::from_utf8(&digits).unwrap_or("000")));
        text
    }

    /// The client's address, or `-` when it is not known (`Ipv4Addr`'s `Display` pads through a
    /// buffer of its own, and costs as much as the rest of the line).
    fn client(ip: Option<IpAddr>) -> Self {
        let mut text = StackText::new();
        let _ = match ip {
            None => text.push("-"),
            Some(IpAddr::V4(v4)) => {
                let mut number = itoa::Buffer::new();
                v4.octets().iter().enumerate().try_for_each(|(i, octet)| {
                    if i > 0 {
                        text.push(".")?;
                    }
                    text.push(number.format(*octet))
                })
            }
            Some(ip @ IpAddr::V6(_)) => write!(text, "{ip}"),
        };
        text
    }

    fn push(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn durations_and_addresses_read_as_their_usual_text() {
        let millis = |micros| StackText::<24>::millis(Duration::from_micros(micros));
        assert_eq!(millis(512).as_str(), "0.512");
        assert_eq!(millis(1_234_005).as_str(), "1234.005");
        assert_eq!(millis(3_600_000_000).as_str(), "3600000.000");
        let client = |addr: Option<&str>| StackText::<48>::client(addr.map(ip));
        assert_eq!(client(Some("203.0.113.9")).as_str(), "203.0.113.9");
        assert_eq!(client(Some("0.0.0.0")).as_str(), "0.0.0.0");
        // The longest an IPv6 address prints.
        let longest_v6 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
        assert_eq!(
            client(Some(longest_v6)).as_str(),
            ip(longest_v6).to_string()
        );
        assert_eq!(client(Some("2001:db8::1")).as_str(), "2001:db8::1");
        assert_eq!(client(None).as_str(), "-");
    }

    fn text_line(account: &str) -> String {
        let line = RequestLine {
            request_id: "5b0c9d4e-0000-4000-8000-000000000001",
            method: "GET",
            route: "/v2/images/{image_id}",
            status: 404,
            elapsed: Duration::from_micros(1_433),
            bytes: 549,
            account,
            client: Some(ip("127.0.0.1")),
            complete: true,
        };
        let (duration, client) = (
            StackText::<24>::millis(line.elapsed),
            StackText::<48>::client(line.client),
        );
        let mut stack = StackText::<512>::new();
        let mut heap = String::new();
        let on_stack = line.write_text(&mut stack, &duration, &client);
        line.write_text(&mut heap, &duration, &client).unwrap();
        if on_stack.is_ok() {
            assert_eq!(stack.as_str(), heap, "the stack buffer and a String agree");
        }
        heap
    }

    #[test]
    fn the_text_line_names_every_value_and_quotes_what_is_not_one_word() {
        assert_eq!(
            text_line("default"),
            "request request_id=5b0c9d4e-0000-4000-8000-000000000001 method=GET \
             route=/v2/images/{image_id} status=404 duration_ms=1.433 bytes=549 \
             account=default client=127.0.0.1 complete=true"
        );
        assert!(text_line("two words").contains(" account=\"two words\" client="));
        assert!(text_line("").contains(" account=\"\" client="));
        // Too long for the stack buffer: written all the same.
        let long = "a".repeat(600);
        assert!(text_line(&long).contains(&format!(" account={long} client=")));
    }
}
