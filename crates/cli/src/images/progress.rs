//! What a person sees while an import runs: a progress bar on a terminal, plain lines
//! otherwise (logs, CI), both on stderr so that stdout stays the image.

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};
use tidepool_client::{ImageStatus, WaitProgress};

/// Plain lines come at most this often while nothing but the byte count changes.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Shows the looks of a wait as they come.
pub enum Reporter {
    /// On a terminal: one line redrawn in place.
    Bar { bar: ProgressBar, shape: Shape },
    /// Elsewhere: a line per change of status, and every few seconds while bytes come.
    Lines {
        started: Instant,
        last: Option<(ImageStatus, Instant)>,
    },
}

impl Reporter {
    /// A bar when stderr is a terminal, lines when not.
    pub fn new(id: u64, terminal: bool) -> Reporter {
        if !terminal {
            return Reporter::Lines {
                started: Instant::now(),
                last: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(Shape::Status.style());
        bar.set_message(format!("image {id}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Reporter::Bar {
            bar,
            shape: Shape::Status,
        }
    }

    /// Shows one look.
    pub fn update(&mut self, p: &WaitProgress) {
        match self {
            Reporter::Bar { bar, shape } => {
                bar.set_message(format!("image {} {}", p.id, p.status));
                let wanted = match (p.bytes_read, p.bytes_total) {
                    (_, Some(_)) => Shape::Sized,
                    (Some(_), None) => Shape::Bytes,
                    (None, None) => Shape::Status,
                };
                // Only ever towards more detail, so that the bar does not flicker.
                if wanted > *shape {
                    if let Some(total) = p.bytes_total {
                        bar.set_length(total);
                    }
                    bar.set_style(wanted.style());
                    *shape = wanted;
                }
                if let Some(read) = p.bytes_read {
                    bar.set_position(read);
                }
            }
            Reporter::Lines { started, last } => {
                let changed =
                    last.is_none_or(|(s, at)| s != p.status || at.elapsed() >= LINE_EVERY);
                if changed {
                    eprintln!("{}", line(p, started.elapsed()));
                    *last = Some((p.status, Instant::now()));
                }
            }
        }
    }

    /// Clears the bar; the outcome is printed by the caller.
    pub fn finish(self) {
        if let Reporter::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// What the bar can show: the status alone (DigitalOcean tells no progress), bytes so far
/// (length unknown), or a bar towards the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    Status,
    Bytes,
    Sized,
}

impl Shape {
    fn style(self) -> ProgressStyle {
        let template = match self {
            Shape::Status => "{spinner} {msg}  {elapsed}",
            Shape::Bytes => "{spinner} {msg}  {bytes}  {binary_bytes_per_sec}  {elapsed}",
            Shape::Sized => {
                "{msg}  [{bar:30}] {bytes}/{total_bytes}  {binary_bytes_per_sec}  {eta} left"
            }
        };
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> ")
    }
}

/// `image 42: pending, 12.0 MiB of 64.0 MiB (2.0 MiB/s, about 26 seconds left)`.
fn line(p: &WaitProgress, elapsed: Duration) -> String {
    let mut text = format!("image {}: {}", p.id, p.status);
    let Some(read) = p.bytes_read.filter(|r| *r > 0) else {
        return text;
    };
    text.push_str(&format!(", {}", HumanBytes(read)));
    if let Some(total) = p.bytes_total {
        text.push_str(&format!(" of {}", HumanBytes(total)));
    }
    let secs = elapsed.as_secs_f64();
    if secs >= 1.0 && p.status == ImageStatus::Pending {
        let rate = read as f64 / secs;
        text.push_str(&format!(" ({}/s", HumanBytes(rate as u64)));
        if let Some(total) = p.bytes_total.filter(|t| *t > read && rate > 0.0) {
            let left = Duration::from_secs_f64((total - read) as f64 / rate);
            text.push_str(&format!(", about {} left", HumanDuration(left)));
        }
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_tell_bytes_rate_and_time_left() {
        let p = WaitProgress {
            id: 42,
            status: ImageStatus::Pending,
            bytes_read: Some(4 << 20),
            bytes_total: Some(8 << 20),
        };
        assert_eq!(
            line(&p, Duration::from_secs(2)),
            "image 42: pending, 4.00 MiB of 8.00 MiB (2.00 MiB/s, about 2 seconds left)"
        );
    }
}
