//! Every task that runs beside the requests, started, named and stopped in one place: the
//! import workers, the orphan sweep, the sharing of rate-limit counts between replicas and the
//! catalog's job listener. Each is told to stop through one cancellation token and joined on
//! shutdown, so that nothing outlives the server.

use crate::app::rate_limit::RateLimiter;
use crate::app::unix_now;
use crate::config::ImportArgs;
use crate::jobs::{self, JobStorage, Worker};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tidepool_catalog::Catalog;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often replicas exchange rate-limit counts. The limits hold across replicas up to what
/// the others admit within one interval: a token can exceed its limit by at most the requests
/// it makes on the other replicas during the last second.
pub const RATE_COUNT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The running tasks.
pub struct BackgroundTasks {
    stop: CancellationToken,
    tasks: JoinSet<String>,
    names: Vec<String>,
}

impl BackgroundTasks {
    pub fn start(
        storage: &JobStorage,
        limiter: Arc<RateLimiter>,
        import: &ImportArgs,
        stop: CancellationToken,
    ) -> Self {
        let mut tasks = BackgroundTasks {
            stop,
            tasks: JoinSet::new(),
            names: vec![],
        };
        let workers = import.worker_config();
        tracing::info!(
            workers = workers.workers,
            max_bytes = workers.limits.max_bytes,
            private_networks = workers.limits.allow_private_networks,
            "import workers starting"
        );
        for worker in Worker::for_this_process(storage, &workers) {
            let name = format!("import worker {}", worker.id());
            let stop = tasks.stop.clone();
            tasks.spawn(name, worker.run(stop));
        }
        let (sweep, every, stop) = (storage.clone(), import.sweep_interval(), tasks.stop.clone());
        let grace = import.sweep_grace();
        if grace < workers.limits.stall_timeout {
            // A live import that waits on a silent URL does not touch its staging file for up
            // to the stall timeout; a shorter grace could remove it from under the import.
            tracing::warn!(
                grace_secs = grace.as_secs(),
                stall_timeout_secs = workers.limits.stall_timeout.as_secs(),
                "the sweep grace is shorter than the import stall timeout"
            );
        }
        tasks.spawn(
            "orphan sweep".into(),
            jobs::run_sweeper(sweep, every, grace, stop),
        );
        let (catalog, stop) = (storage.catalog.clone(), tasks.stop.clone());
        tasks.spawn(
            "rate-count sync".into(),
            rate_counts_sync(limiter, catalog, stop),
        );
        let (catalog, stop) = (storage.catalog.clone(), tasks.stop.clone());
        tasks.spawn("job listener".into(), job_listener(catalog, stop));
        tasks
    }

    fn spawn(&mut self, name: String, task: impl Future<Output = ()> + Send + 'static) {
        tracing::debug!(task = %name, "background task started");
        self.names.push(name.clone());
        self.tasks.spawn(async move {
            task.await;
            name
        });
    }

    /// The names of the tasks started, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Tells every task to stop and waits for each; returns the names of those that ended, in
    /// the order they did. Workers put the imports they were running back in the queue.
    pub async fn shutdown(mut self) -> Vec<String> {
        self.stop.cancel();
        let mut ended = Vec::with_capacity(self.names.len());
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(name) => {
                    tracing::debug!(task = %name, "background task stopped");
                    ended.push(name);
                }
                Err(err) => tracing::error!("a background task failed: {err}"),
            }
        }
        ended
    }
}

/// Keeps this replica's rate-limit counts in step with the others' through the catalog, for as
/// long as the catalog is shared (PostgreSQL); with SQLite it returns at once.
async fn rate_counts_sync(
    limiter: Arc<RateLimiter>,
    catalog: Arc<dyn Catalog>,
    stop: CancellationToken,
) {
    loop {
        let now = unix_now();
        let deltas = limiter.take_deltas(now);
        let keys = limiter.active_keys(now);
        match catalog
            .rate_counts_sync(&deltas, &keys, now.div_euclid(60) - 59)
            .await
        {
            Ok(Some(totals)) => limiter.apply_totals(&totals),
            Ok(None) => return,
            Err(err) => tracing::warn!("rate-limit counts not shared this time: {err}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RATE_COUNT_SYNC_INTERVAL) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Wakes idle workers when another process queues a job (PostgreSQL's NOTIFY); the catalog's
/// listener is dropped, and its connection closed, on shutdown.
async fn job_listener(catalog: Arc<dyn Catalog>, stop: CancellationToken) {
    tokio::select! {
        listened = catalog.job_listen() => {
            if let Err(err) = listened {
                // Workers still poll; they only lose the prompt wake-up.
                tracing::warn!("job notifications unavailable: {err}");
            }
        }
        _ = stop.cancelled() => {}
    }
}
