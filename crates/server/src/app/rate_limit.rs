//! DigitalOcean's per-token limits: 5,000 requests in any hour and 250 in a minute by default.
//! Each request counts for an hour; `ratelimit-reset` is when the oldest counted request
//! leaves the window. Counts are kept per minute (60 buckets a key), which bounds memory per
//! key and makes the hour window exact to the minute. Replicas share their counts through the
//! catalog (`background::rate_counts`); this module only keeps and reconciles them.

use std::collections::HashMap;
use std::sync::Mutex;
use tidepool_catalog::RateCount;

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

/// One minute of one key's requests.
#[derive(Clone, Copy)]
struct Bucket {
    minute: i64,
    /// Requests this process admitted.
    own: u32,
    /// Of `own`, how many the shared store already counts.
    flushed: u32,
    /// Requests other replicas admitted, as of the last sync.
    others: u32,
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        minute: i64::MIN,
        own: 0,
        flushed: 0,
        others: 0,
    };

    fn count(&self) -> u32 {
        self.own + self.others
    }
}

#[derive(Clone)]
struct Window {
    /// Indexed by minute % 60.
    buckets: [Bucket; 60],
}

impl Default for Window {
    fn default() -> Self {
        Window {
            buckets: [Bucket::EMPTY; 60],
        }
    }
}

impl Window {
    fn live(&self, minute: i64) -> impl Iterator<Item = &Bucket> {
        self.buckets
            .iter()
            .filter(move |b| b.minute > minute - 60 && b.minute <= minute)
    }

    fn count_hour(&self, minute: i64) -> u32 {
        self.live(minute).map(Bucket::count).sum()
    }

    fn count_minute(&self, minute: i64) -> u32 {
        self.live(minute)
            .filter(|b| b.minute == minute)
            .map(Bucket::count)
            .sum()
    }

    fn oldest_minute(&self, minute: i64) -> Option<i64> {
        self.live(minute)
            .filter(|b| b.count() > 0)
            .map(|b| b.minute)
            .min()
    }

    fn slot(&mut self, minute: i64) -> &mut Bucket {
        let slot = &mut self.buckets[minute.rem_euclid(60) as usize];
        if slot.minute != minute {
            *slot = Bucket {
                minute,
                ..Bucket::EMPTY
            };
        }
        slot
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
            window.slot(minute).own += 1;
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

impl RateLimiter {
    /// What this process admitted since the last sync, to add to the shared counts.
    pub fn take_deltas(&self, now: i64) -> Vec<RateCount> {
        let minute = now.div_euclid(60);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut deltas = vec![];
        for (key, window) in windows.iter_mut() {
            for b in window.buckets.iter_mut().filter(|b| b.minute > minute - 60) {
                if b.own > b.flushed {
                    deltas.push(RateCount {
                        key: key.clone(),
                        minute: b.minute,
                        count: i64::from(b.own - b.flushed),
                    });
                    b.flushed = b.own;
                }
            }
        }
        deltas
    }

    /// Keys with requests in the last hour: those whose shared counts matter here.
    pub fn active_keys(&self, now: i64) -> Vec<String> {
        let minute = now.div_euclid(60);
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .iter()
            .filter(|(_, w)| w.count_hour(minute) > 0)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Takes in the shared totals (every replica's requests, this one's flushed ones included).
    pub fn apply_totals(&self, totals: &[RateCount]) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        for total in totals {
            let window = windows.entry(total.key.clone()).or_default();
            let slot = window.slot(total.minute);
            let total = u32::try_from(total.count).unwrap_or(u32::MAX);
            slot.others = total.saturating_sub(slot.flushed);
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

    /// One sync of every replica through a store that adds up what each flushed.
    fn sync(replicas: &[&RateLimiter], store: &mut Vec<RateCount>, now: i64) {
        for rl in replicas {
            for d in rl.take_deltas(now) {
                match store
                    .iter_mut()
                    .find(|s| s.key == d.key && s.minute == d.minute)
                {
                    Some(s) => s.count += d.count,
                    None => store.push(d),
                }
            }
        }
        for rl in replicas {
            rl.apply_totals(store);
        }
    }

    #[test]
    fn replicas_share_their_counts() {
        let (a, b) = (RateLimiter::new(4, 0), RateLimiter::new(4, 0));
        let t0 = 1_700_000_000;
        let mut store = vec![];
        assert!(a.check("k", t0).allowed && a.check("k", t0).allowed);
        assert!(b.check("k", t0).allowed);
        sync(&[&a, &b], &mut store, t0);
        assert!(
            a.take_deltas(t0).is_empty(),
            "flushed counts are not sent twice"
        );
        let v = b.check("k", t0);
        assert!(
            v.allowed && v.remaining == 0,
            "three elsewhere plus this one: {v:?}"
        );
        sync(&[&a, &b], &mut store, t0);
        assert!(
            !a.check("k", t0).allowed,
            "the fifth request anywhere is refused"
        );
        assert!(!b.check("k", t0).allowed);
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
