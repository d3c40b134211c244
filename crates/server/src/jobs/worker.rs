//! Import workers. The catalog row is the job: a worker claims it with a lease, renews the
//! lease while it works, and records the result only while it still holds it. A worker that
//! dies simply stops renewing; another takes the job over once the lease runs out.

use super::{unix_now, JobStorage};
use crate::metrics::{FailureLabel, IMPORT};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tidepool_catalog::{CatalogResult, ImportJob, JobProgress, JobResult};
use tidepool_import::{image_key, import_image, FailureKind, ImportError, ImportLimits, Progress};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Progress is logged each time another tenth of the announced size has arrived, or, when the
/// size is unknown, another GiB.
const PROGRESS_STEP_UNKNOWN_TOTAL: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub workers: usize,
    pub limits: ImportLimits,
    /// A job whose worker has not renewed its lease for this long is taken over.
    pub lease: Duration,
    /// An import running longer than this fails.
    pub timeout: Duration,
    /// Transient failures are retried until a job has had this many attempts.
    pub max_attempts: u32,
    /// How often an idle worker looks for work it was not woken for (jobs freed by an expired
    /// lease or a backoff, or queued by another process).
    pub poll_interval: Duration,
}

/// One import worker. `run` claims and runs jobs until `shutdown` is cancelled, putting the
/// import it was running back in the queue.
pub struct Worker {
    storage: JobStorage,
    config: WorkerConfig,
    id: String,
}

/// Whether the catalog took the job's outcome. Its own failure is logged for what it is; the
/// lease then runs out and another attempt takes the job over.
fn written(image_id: i64, outcome: CatalogResult<bool>) -> bool {
    outcome.unwrap_or_else(|err| {
        tracing::error!(
            image_id,
            "cannot record the import's outcome in the catalog: {err}"
        );
        false
    })
}

/// Seconds before a job that failed its attempt number `attempts` (from 1) may be claimed again:
/// 5·2^attempts, so 10, 20, 40 and 80 s with the default five attempts, 150 s in all. The
/// README's time for a failing import to be reported follows from it.
fn retry_backoff_secs(attempts: u32) -> i64 {
    5i64.saturating_mul(1 << attempts.min(10))
}

fn secs(d: Duration) -> i64 {
    d.as_secs().max(1) as i64
}

impl Worker {
    /// `config.workers` workers of this process, with ids unique across replicas.
    pub fn for_this_process(storage: &JobStorage, config: &WorkerConfig) -> Vec<Worker> {
        let process = uuid::Uuid::new_v4().simple().to_string();
        (0..config.workers)
            .map(|n| Worker {
                storage: storage.clone(),
                config: config.clone(),
                id: format!("{}-{}-{n}", std::process::id(), &process[..8]),
            })
            .collect()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let queued = self.storage.catalog.job_queued();
        while !shutdown.is_cancelled() {
            match self
                .storage
                .catalog
                .job_claim(&self.id, secs(self.config.lease), unix_now())
                .await
            {
                Ok(Some(job)) => {
                    // Every line of the import, the importer's own included, names the image
                    // and the request that created it.
                    let span = tracing::info_span!(
                        "import",
                        image_id = job.image_id,
                        request_id = job.request_id.as_deref().unwrap_or("")
                    );
                    self.import(job, &shutdown).instrument(span).await
                }
                Ok(None) => {
                    tokio::select! {
                        _ = queued.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(err) => {
                    tracing::error!(worker = %self.id, "cannot claim import jobs: {err}");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    async fn import(&self, job: ImportJob, shutdown: &CancellationToken) {
        let catalog = &self.storage.catalog;
        let cancel = shutdown.child_token();
        let progress = Arc::new(Progress::new());
        let _registration =
            self.storage
                .running
                .register(job.image_id, cancel.clone(), progress.clone());
        let key = image_key(
            job.image_id as u64,
            &tidepool_import::blobs::new_attempt_id(),
        );
        let metrics = &self.storage.metrics;
        metrics.job_started(IMPORT, job.taken_over_from.is_some());
        let _running = metrics.job_running(IMPORT);
        match &job.taken_over_from {
            Some(previous) => tracing::info!(
                attempt = job.attempts, worker = %self.id, previous_worker = %previous,
                "import claimed: taken over after the previous worker's lease ran out"
            ),
            None => tracing::info!(attempt = job.attempts, worker = %self.id, "import claimed"),
        }

        let lost = Arc::new(AtomicBool::new(false));
        let counted = Arc::new(CountedBytes::default());
        let heartbeat = tokio::spawn({
            let (catalog, progress, lost, cancel) = (
                catalog.clone(),
                progress.clone(),
                lost.clone(),
                cancel.clone(),
            );
            let (id, worker, lease) = (job.image_id, self.id.clone(), self.config.lease);
            let (metrics, counted) = (metrics.clone(), counted.clone());
            let mut logged = ProgressLog::default();
            async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let now = JobProgress {
                        bytes_read: progress.bytes_read(),
                        bytes_total: progress.bytes_total(),
                    };
                    metrics.job_bytes(IMPORT, counted.up_to(now.bytes_read));
                    logged.log_if_further(now);
                    match catalog
                        .job_heartbeat(id, &worker, secs(lease), unix_now(), now)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            // Deleted, or taken over after our lease ran out: stop now.
                            lost.store(true, Ordering::SeqCst);
                            cancel.cancel();
                            return;
                        }
                        Err(err) => tracing::warn!(image_id = id, "lease renewal failed: {err}"),
                    }
                }
            }
            .in_current_span()
        });
        let run = import_image(
            &job.url,
            &key,
            &self.storage.blobs,
            &self.config.limits,
            &progress,
            cancel.clone(),
        );
        let result = match tokio::time::timeout(self.config.timeout, run).await {
            Ok(result) => result,
            Err(_) => {
                cancel.cancel();
                let limit = self.config.timeout.as_secs();
                let limit = if limit < 120 {
                    format!("{limit} seconds")
                } else {
                    format!("{} minutes", limit / 60)
                };
                Err(ImportError::abort(
                    FailureKind::Timeout,
                    format!("the import took longer than {limit} and was stopped"),
                ))
            }
        };
        heartbeat.abort();
        // The heartbeat counted the bytes up to its last beat; the rest are counted here.
        metrics.job_bytes(IMPORT, counted.up_to(progress.bytes_read()));
        self.record(&job, &key, result, lost.load(Ordering::SeqCst), shutdown)
            .await;
    }

    async fn record(
        &self,
        job: &ImportJob,
        key: &str,
        result: Result<tidepool_import::ImportOutcome, ImportError>,
        lost: bool,
        shutdown: &CancellationToken,
    ) {
        let catalog = &self.storage.catalog;
        let metrics = &self.storage.metrics;
        let id = job.image_id;
        let recorded = match result {
            Ok(outcome) => {
                let done = JobResult::Available {
                    region: job.region,
                    format: outcome.format.to_string(),
                    virtual_size: outcome.virtual_size,
                    stored_bytes: outcome.stored_bytes,
                    sha256: outcome.sha256,
                    blob_key: outcome.blob_key,
                };
                let held = !lost && written(id, catalog.job_complete(id, &self.id, &done).await);
                if held {
                    metrics.job_completed(IMPORT);
                    tracing::info!(
                        stored_bytes = outcome.stored_bytes,
                        "import completed: the image is available"
                    );
                } else {
                    // Nobody will ever point at these bytes: the image is gone or the job
                    // belongs to another worker now.
                    if let Err(err) = self.storage.blobs.delete(key).await {
                        tracing::warn!(image_id = id, "could not remove an unrecorded blob: {err}");
                    }
                }
                held
            }
            Err(_) if lost => false,
            Err(ImportError::Retry(failure)) if shutdown.is_cancelled() => {
                tracing::info!(
                    image_id = id,
                    "shutting down: import goes back to the queue ({failure})"
                );
                written(
                    id,
                    catalog
                        .job_release(id, &self.id, unix_now(), "interrupted by a shutdown")
                        .await,
                )
            }
            Err(ImportError::Retry(failure)) if job.attempts < self.config.max_attempts => {
                let backoff = retry_backoff_secs(job.attempts);
                let reason = FailureLabel::from(failure.kind);
                tracing::warn!(
                    image_id = id,
                    attempt = job.attempts,
                    backoff_secs = backoff,
                    reason = reason.as_str(),
                    "import will be retried: {failure}"
                );
                metrics.job_retried(IMPORT, reason);
                written(
                    id,
                    catalog
                        .job_release(id, &self.id, unix_now() + backoff, &failure.message)
                        .await,
                )
            }
            Err(err) => {
                let failed = JobResult::Failed {
                    message: err.message().to_owned(),
                };
                let reason = FailureLabel::from(err.kind());
                tracing::warn!(
                    image_id = id,
                    reason = reason.as_str(),
                    "import failed: {}",
                    err.message()
                );
                let held = written(id, catalog.job_complete(id, &self.id, &failed).await);
                if held {
                    metrics.job_failed(IMPORT, reason);
                }
                held
            }
        };
        if !recorded {
            tracing::info!(image_id = id, worker = %self.id, "import result not recorded: the job is no longer ours");
        }
    }
}

/// The bytes of one import already added to the metrics, so that the heartbeat and the end of
/// the import each add only what is new.
#[derive(Default)]
struct CountedBytes(AtomicU64);

impl CountedBytes {
    /// How many bytes are new now that `read` have been read.
    fn up_to(&self, read: u64) -> u64 {
        read.saturating_sub(self.0.fetch_max(read, Ordering::Relaxed))
    }
}

/// Where the import's progress was last logged.
#[derive(Default)]
struct ProgressLog {
    step: u64,
}

impl ProgressLog {
    fn log_if_further(&mut self, now: JobProgress) {
        let step = match now.bytes_total {
            Some(total) => now.bytes_read.saturating_mul(10) / total.max(1),
            None => now.bytes_read / PROGRESS_STEP_UNKNOWN_TOTAL,
        };
        if step <= self.step {
            return;
        }
        self.step = step;
        match now.bytes_total {
            Some(total) => tracing::info!(
                bytes_read = now.bytes_read,
                bytes_total = total,
                percent = (step * 10).min(100),
                "import progress"
            ),
            None => tracing::info!(bytes_read = now.bytes_read, "import progress"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::retry_backoff_secs;

    #[test]
    fn the_default_attempts_wait_150_seconds_in_all() {
        let waits: Vec<i64> = (1..5).map(retry_backoff_secs).collect();
        assert_eq!(waits, [10, 20, 40, 80]);
        assert_eq!(waits.iter().sum::<i64>(), 150);
        assert_eq!(retry_backoff_secs(40), retry_backoff_secs(10), "capped");
    }
}
