//! When to try a request again and how long to wait first, and the rate-limit headers that
//! inform both.

use reqwest::header::HeaderMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `ratelimit-*` headers of a response: DigitalOcean's per-token request budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in the window (`ratelimit-limit`).
    pub limit: u64,
    /// Requests left in the window (`ratelimit-remaining`).
    pub remaining: u64,
    /// Unix time in seconds when a request slot frees up (`ratelimit-reset`).
    pub reset: u64,
}

impl RateLimit {
    /// The three headers, when all are present and numeric.
    pub fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        Some(RateLimit {
            limit: header_u64(headers, "ratelimit-limit")?,
            remaining: header_u64(headers, "ratelimit-remaining")?,
            reset: header_u64(headers, "ratelimit-reset")?,
        })
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// How a request that failed for a passing reason is tried again.
///
/// A 429 is retried for every call, since the server did not act on the request; a 5xx or a
/// connection error only for GET, PUT and DELETE, since a create that failed that way may
/// still have created an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first; 0 turns retries off.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it.
    pub base_backoff: Duration,
    /// The longest single wait. A 429 whose `retry-after` (or `ratelimit-reset`) asks for a
    /// longer wait is not retried at all: waiting less would only be refused again.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 4 retries, from 250 ms; waits up to 60 s, so that a per-minute limit is waited out
    /// (a `retry-after` of up to a minute) but an exhausted hourly one is not.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first) after a 5xx or a lost connection:
    /// exponential with "equal jitter", so that many clients do not retry in step.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.max_backoff);
        let half = exp / 2;
        half + jitter(exp - half)
    }

    /// The wait before retrying a 429, or `None` when the server asks for longer than
    /// `max_backoff`. `retry-after` comes first; then `ratelimit-reset` when nothing remains.
    pub(crate) fn after_429(&self, retry: u32, headers: &HeaderMap) -> Option<Duration> {
        let asked = retry_after(headers).or_else(|| {
            let rl = RateLimit::from_headers(headers)?;
            (rl.remaining == 0).then(|| Duration::from_secs(rl.reset.saturating_sub(unix_now())))
        });
        match asked {
            // A little extra, never less, so that a crowd told the same second spreads out.
            Some(wait) if wait <= self.max_backoff => Some(
                (wait + jitter(self.base_backoff.min(Duration::from_millis(500))))
                    .min(self.max_backoff),
            ),
            Some(_) => None,
            None => Some(self.backoff(retry)),
        }
    }
}

/// `retry-after` in seconds (the HTTP-date form is not used by DigitalOcean and is ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_u64(headers, "retry-after").map(Duration::from_secs)
}

fn jitter(up_to: Duration) -> Duration {
    if up_to.is_zero() {
        return up_to;
    }
    up_to.mul_f64(rand::random::<f64>())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn backoff_grows_within_bounds() {
        let p = RetryPolicy {
            max_retries: 5,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        for _ in 0..50 {
            let b0 = p.backoff(0);
            assert!(b0 >= Duration::from_millis(50) && b0 <= Duration::from_millis(100));
            let b5 = p.backoff(5);
            assert!(b5 >= Duration::from_millis(150) && b5 <= Duration::from_millis(300));
        }
    }

    #[test]
    fn a_429_honours_retry_after_then_reset_and_gives_up_past_the_cap() {
        let p = RetryPolicy::default();
        let w = p
            .after_429(0, &headers(&[("retry-after", "2".into())]))
            .unwrap();
        assert!(w >= Duration::from_secs(2) && w < Duration::from_millis(2500));
        let reset = (unix_now() + 3).to_string();
        let h = headers(&[
            ("ratelimit-limit", "5".into()),
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", reset),
        ]);
        let w = p.after_429(0, &h).unwrap();
        assert!(
            w >= Duration::from_secs(2) && w <= Duration::from_secs(4),
            "{w:?}"
        );
        assert_eq!(
            p.after_429(0, &headers(&[("retry-after", "3600".into())])),
            None
        );
    }

    #[test]
    fn rate_limit_needs_all_three_headers() {
        let h = headers(&[
            ("ratelimit-limit", "5000".into()),
            ("ratelimit-remaining", "4999".into()),
        ]);
        assert_eq!(RateLimit::from_headers(&h), None);
    }
}
