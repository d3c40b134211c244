//! The list-total cache both SQL backends share.

use super::{CatalogResult, ImageFilter};
use std::collections::HashMap;
use std::sync::Arc;

/// List totals by filter, valid while the list generation they were counted at is current.
///
/// Counting a million images takes either database hundreds of milliseconds, and every list page
/// reports the total, which changes only when an image enters or leaves a list. Each backend keeps
/// a generation that triggers move on exactly those writes (from any process or replica), and a
/// total is reused while its generation is current.
#[derive(Default)]
pub(super) struct CountCache {
    totals: std::sync::Mutex<HashMap<CountKey, (i64, u64)>>,
    /// One count per filter at a time: after a write, every list request of that filter would
    /// otherwise count the same rows at once, each slower for the others. Other filters count
    /// meanwhile.
    counting: std::sync::Mutex<HashMap<CountKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// What a total depends on: the filter without its page.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct CountKey(i64, bool, Option<&'static str>, Option<String>);

impl CountKey {
    pub(super) fn of(f: &ImageFilter) -> Self {
        CountKey(
            f.viewer.0,
            f.private_only,
            f.listing.map(|l| l.as_str()),
            f.tag.clone(),
        )
    }
}

/// Takes a filter's turn to count out of `CountCache::counting` once nobody else waits for it.
struct CountTurn<'a> {
    cache: &'a CountCache,
    key: CountKey,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for CountTurn<'_> {
    fn drop(&mut self) {
        let mut counting = lock(&self.cache.counting);
        // Clones are made only under this lock: the map's and this one mean nobody else has it.
        if Arc::strong_count(&self.gate) == 2 {
            counting.remove(&self.key);
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CountCache {
    /// Bounds the cache against many distinct tags and viewers.
    const MAX: usize = 4096;

    fn get(&self, key: &CountKey, generation: i64) -> Option<u64> {
        lock(&self.totals)
            .get(key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, total)| *total)
    }

    fn put(&self, key: CountKey, generation: i64, total: u64) {
        let mut map = lock(&self.totals);
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(key, (generation, total));
    }

    /// The total for `key` at `generation`: cached, or counted by `count`.
    pub(super) async fn total(
        &self,
        key: CountKey,
        generation: i64,
        count: impl std::future::Future<Output = CatalogResult<u64>>,
    ) -> CatalogResult<u64> {
        if let Some(total) = self.get(&key, generation) {
            return Ok(total);
        }
        let turn = {
            let mut counting = lock(&self.counting);
            let gate = counting.entry(key.clone()).or_default().clone();
            CountTurn {
                cache: self,
                key: key.clone(),
                gate,
            }
        };
        let _held = turn.gate.lock().await;
        if let Some(total) = self.get(&key, generation) {
            return Ok(total);
        }
        let total = count.await?;
        self.put(key, generation, total);
        Ok(total)
    }
}
