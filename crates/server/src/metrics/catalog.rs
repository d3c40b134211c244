//! The catalog, timed: a decorator over whichever backend start-up chose, so that every
//! operation's latency and failures are measured in one place and neither backend knows of
//! metrics.

use super::Metrics;
use async_trait::async_trait;
use prometheus::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tidepool_api::Scopes;
use tidepool_catalog::{
    AccountId, Catalog, CatalogError, CatalogResult, ImageChanges, ImageFilter, ImageRecord,
    ImportJob, JobProgress, JobQueueStats, JobResult, NewImage, RateCount, TokenRecord,
};

/// The enum of the catalog's operations, each with the name the `operation` label gives it.
macro_rules! operations {
    ($($op:ident => $name:literal,)*) => {
        /// An index rather than a name, so that timing a call is an array access (a request
        /// makes one or two).
        #[derive(Debug, Clone, Copy)]
        enum Op {
            $($op,)*
        }

        impl Op {
            const ALL: [Op; [$($name),*].len()] = [$(Op::$op),*];

            fn name(self) -> &'static str {
                match self {
                    $(Op::$op => $name,)*
                }
            }
        }
    };
}

operations! {
    AccountEnsure => "account_ensure",
    TokenInsert => "token_insert",
    TokenLookup => "token_lookup",
    TokenCount => "token_count",
    ImageInsert => "image_insert",
    ImageGet => "image_get",
    ImageGetBySlug => "image_get_by_slug",
    ImageListPublic => "image_list_public",
    ImageList => "image_list",
    ImageUpdate => "image_update",
    ImageDelete => "image_delete",
    JobClaim => "job_claim",
    JobHeartbeat => "job_heartbeat",
    JobComplete => "job_complete",
    JobRelease => "job_release",
    JobProgress => "job_progress",
    JobExists => "job_exists",
    JobQueueStats => "job_queue_stats",
    RateCountsSync => "rate_counts_sync",
    Ping => "ping",
    MetaGet => "meta_get",
    MetaSet => "meta_set",
}

pub struct MeteredCatalog {
    inner: Arc<dyn Catalog>,
    metrics: Arc<Metrics>,
    /// By `Op`.
    durations: [Histogram; Op::ALL.len()],
}

impl MeteredCatalog {
    pub fn wrap(inner: Arc<dyn Catalog>, metrics: Arc<Metrics>) -> Arc<dyn Catalog> {
        let durations = Op::ALL.map(|op| metrics.catalog_duration(op.name()));
        Arc::new(MeteredCatalog {
            inner,
            metrics,
            durations,
        })
    }

    async fn timed<T>(
        &self,
        operation: Op,
        call: impl Future<Output = CatalogResult<T>>,
    ) -> CatalogResult<T> {
        let start = Instant::now();
        let result = call.await;
        // A slug that is taken is the caller's mistake, answered as such: not a catalog error.
        let failed = matches!(&result, Err(e) if !matches!(e, CatalogError::SlugTaken(_)));
        self.durations[operation as usize].observe(start.elapsed().as_secs_f64());
        if failed {
            self.metrics.catalog_error(operation.name());
        }
        result
    }
}

#[async_trait]
impl Catalog for MeteredCatalog {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn account_ensure(&self, name: &str, now: i64) -> CatalogResult<AccountId> {
        self.timed(Op::AccountEnsure, self.inner.account_ensure(name, now))
            .await
    }

    async fn token_insert(
        &self,
        account: AccountId,
        secret_hash: &str,
        scopes: Scopes,
        now: i64,
    ) -> CatalogResult<()> {
        self.timed(
            Op::TokenInsert,
            self.inner.token_insert(account, secret_hash, scopes, now),
        )
        .await
    }

    async fn token_lookup(&self, secret_hash: &str) -> CatalogResult<Option<TokenRecord>> {
        self.timed(Op::TokenLookup, self.inner.token_lookup(secret_hash))
            .await
    }

    async fn token_count(&self) -> CatalogResult<u64> {
        self.timed(Op::TokenCount, self.inner.token_count()).await
    }

    async fn image_insert(&self, image: NewImage) -> CatalogResult<ImageRecord> {
        self.timed(Op::ImageInsert, self.inner.image_insert(image))
            .await
    }

    async fn image_get(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        self.timed(Op::ImageGet, self.inner.image_get(id)).await
    }

    async fn image_get_by_slug(&self, slug: &str) -> CatalogResult<Option<ImageRecord>> {
        self.timed(Op::ImageGetBySlug, self.inner.image_get_by_slug(slug))
            .await
    }

    async fn image_list_public(&self) -> CatalogResult<Vec<ImageRecord>> {
        self.timed(Op::ImageListPublic, self.inner.image_list_public())
            .await
    }

    async fn image_list(&self, filter: &ImageFilter) -> CatalogResult<(Vec<ImageRecord>, u64)> {
        self.timed(Op::ImageList, self.inner.image_list(filter))
            .await
    }

    async fn image_update(
        &self,
        id: i64,
        changes: &ImageChanges,
    ) -> CatalogResult<Option<ImageRecord>> {
        self.timed(Op::ImageUpdate, self.inner.image_update(id, changes))
            .await
    }

    async fn image_delete(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        self.timed(Op::ImageDelete, self.inner.image_delete(id))
            .await
    }

    async fn job_claim(
        &self,
        worker: &str,
        lease_secs: i64,
        now: i64,
    ) -> CatalogResult<Option<ImportJob>> {
        self.timed(Op::JobClaim, self.inner.job_claim(worker, lease_secs, now))
            .await
    }

    async fn job_heartbeat(
        &self,
        image_id: i64,
        worker: &str,
        lease_secs: i64,
        now: i64,
        progress: JobProgress,
    ) -> CatalogResult<bool> {
        self.timed(
            Op::JobHeartbeat,
            self.inner
                .job_heartbeat(image_id, worker, lease_secs, now, progress),
        )
        .await
    }

    async fn job_complete(
        &self,
        image_id: i64,
        worker: &str,
        result: &JobResult,
    ) -> CatalogResult<bool> {
        self.timed(
            Op::JobComplete,
            self.inner.job_complete(image_id, worker, result),
        )
        .await
    }

    async fn job_release(
        &self,
        image_id: i64,
        worker: &str,
        not_before: i64,
        last_error: &str,
    ) -> CatalogResult<bool> {
        self.timed(
            Op::JobRelease,
            self.inner
                .job_release(image_id, worker, not_before, last_error),
        )
        .await
    }

    async fn job_progress(&self, image_id: i64) -> CatalogResult<Option<JobProgress>> {
        self.timed(Op::JobProgress, self.inner.job_progress(image_id))
            .await
    }

    async fn job_exists(&self, image_id: i64) -> CatalogResult<bool> {
        self.timed(Op::JobExists, self.inner.job_exists(image_id))
            .await
    }

    async fn job_queue_stats(&self, now: i64) -> CatalogResult<JobQueueStats> {
        self.timed(Op::JobQueueStats, self.inner.job_queue_stats(now))
            .await
    }

    fn job_queued(&self) -> Arc<tokio::sync::Notify> {
        self.inner.job_queued()
    }

    // Not timed: it runs for as long as the server does.
    async fn job_listen(&self) -> CatalogResult<()> {
        self.inner.job_listen().await
    }

    async fn rate_counts_sync(
        &self,
        deltas: &[RateCount],
        keys: &[String],
        since_minute: i64,
    ) -> CatalogResult<Option<Vec<RateCount>>> {
        self.timed(
            Op::RateCountsSync,
            self.inner.rate_counts_sync(deltas, keys, since_minute),
        )
        .await
    }

    async fn ping(&self) -> CatalogResult<()> {
        self.timed(Op::Ping, self.inner.ping()).await
    }

    async fn meta_get(&self, key: &str) -> CatalogResult<Option<String>> {
        self.timed(Op::MetaGet, self.inner.meta_get(key)).await
    }

    async fn meta_set(&self, key: &str, value: &str) -> CatalogResult<()> {
        self.timed(Op::MetaSet, self.inner.meta_set(key, value))
            .await
    }
}
