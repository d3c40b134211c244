//! DigitalOcean's per-token limits: 5,000 requests in any hour and 250 in a minute by default.
//! Each request counts for an hour; `ratelimit-reset` is when the oldest counted request
//! leaves the window. Counts are kept per minute (60 buckets a key), which bounds memory per
//! key and makes the hour window exact to the minute.

use std::collections::HashMap;
use std::sync::Mutex;

/// What the headers of a response say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds when a request slot frees up again.
    pub reset: i64,
    /// Seconds to wait before retrying, when refused.
    pub retry_after: u64,
}

#[derive(Clone)]
struct Window {
    /// (minute since the epoch, requests in that minute), indexed by minute % 60.
    buckets: [(i64, u32); 60],
}

impl Default for Window {
    fn default() -> Self {
        Window {
            buckets: [(i64::MIN, 0); 60],
        }
    }
}

impl Window {
    fn count_hour(&self, minute: i64) -> u32 {
        self.buckets
            .iter()
            .filter(|(m, _)| *m > minute - 60)
            .map(|(_, n)| n)
            .sum()
    }

    fn count_minute(&self, minute: i64) -> u32 {
        let (m, n) = self.buckets[minute.rem_euclid(60) as usize];
        if m == minute {
            n
        } else {
            0
        }
    }

    fn oldest_minute(&self, minute: i64) -> Option<i64> {
        self.buckets
            .iter()
            .filter(|(m, n)| *m > minute - 60 && *n > 0)
            .map(|(m, _)| *m)
            .min()
    }

    fn add(&mut self, minute: i64) {
        let slot = &mut self.buckets[minute.rem_euclid(60) as usize];
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += 1;
    }
}

pub struct RateLimiter {
    per_hour: u32,
    per_minute: u32,
    windows: Mutex<HashMap<String, Window>>,
}

/// Past this many keys, windows with nothing in the last hour are dropped.
const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    /// A limit of 0 disables that window.
    pub fn new(per_hour: u32, per_minute: u32) -> Self {
        RateLimiter {
            per_hour,
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key` at `now` (unix seconds), unless it is over a limit.
    pub fn check(&self, key: &str, now: i64) -> Verdict {
        let minute = now.div_euclid(60);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_KEYS && !windows.contains_key(key) {
            windows.retain(|_, w| w.count_hour(minute) > 0);
        }
        let window = windows.entry(key.to_owned()).or_default();
        let hour = window.count_hour(minute);
        let in_minute = window.count_minute(minute);
        let over_hour = self.per_hour > 0 && hour >= self.per_hour;
        let over_minute = self.per_minute > 0 && in_minute >= self.per_minute;
        let allowed = !over_hour && !over_minute;
        if allowed {
            window.add(minute);
        }
        let used = hour + u32::from(allowed);
        let oldest = window.oldest_minute(minute).unwrap_or(minute);
        let reset = (oldest + 60) * 60;
        let retry_after = if over_hour {
            (reset - now).max(1) as u64
        } else if over_minute {
            ((minute + 1) * 60 - now).max(1) as u64
        } else {
            0
        };
        let limit = if self.per_hour > 0 {
            self.per_hour
        } else {
            u32::MAX
        };
        Verdict {
            allowed,
            limit,
            remaining: limit.saturating_sub(used),
            reset,
            retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_limit_counts_every_request_for_an_hour() {
        let rl = RateLimiter::new(3, 0);
        let t0 = 1_700_000_000;
        for left in [2, 1, 0] {
            let v = rl.check("k", t0);
            assert!(v.allowed);
            assert_eq!(v.remaining, left);
        }
        let refused = rl.check("k", t0 + 1800);
        assert!(!refused.allowed);
        assert!(
            refused.retry_after > 1700 && refused.retry_after <= 1860,
            "{refused:?}"
        );
        assert!(rl.check("other", t0).allowed, "limits are per key");
        assert!(rl.check("k", t0 + 3660).allowed, "the window slides");
    }

    #[test]
    fn minute_limit_refuses_bursts() {
        let rl = RateLimiter::new(5000, 2);
        let t0 = 1_700_000_080; // 40 s into a minute
        assert!(rl.check("k", t0).allowed && rl.check("k", t0).allowed);
        let v = rl.check("k", t0 + 5);
        assert!(!v.allowed && v.retry_after == 15, "{v:?}");
        assert!(rl.check("k", t0 + 20).allowed);
    }
}
