//! The catalog, timed: a decorator over whichever backend start-up chose, so that every
//! operation's latency and failures are measured in one place and neither backend knows of
//! metrics.

use super::Metrics;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tidepool_api::Scopes;
use tidepool_catalog::{
    AccountId, Catalog, CatalogError, CatalogResult, ImageChanges, ImageFilter, ImageRecord,
    ImportJob, JobProgress, JobQueueStats, JobResult, NewImage, RateCount, TokenRecord,
};

pub struct MeteredCatalog {
    inner: Arc<dyn Catalog>,
    metrics: Arc<Metrics>,
}

impl MeteredCatalog {
    pub fn wrap(inner: Arc<dyn Catalog>, metrics: Arc<Metrics>) -> Arc<dyn Catalog> {
        Arc::new(MeteredCatalog { inner, metrics })
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = CatalogResult<T>>,
    ) -> CatalogResult<T> {
        let start = Instant::now();
        let result = call.await;
        // A slug that is taken is the caller's mistake, answered as such: not a catalog error.
        let failed = matches!(&result, Err(e) if !matches!(e, CatalogError::SlugTaken(_)));
        self.metrics
            .catalog_operation(operation, start.elapsed(), failed);
        result
    }
}

#[async_trait]
impl Catalog for MeteredCatalog {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn account_ensure(&self, name: &str, now: i64) -> CatalogResult<AccountId> {
        self.timed("account_ensure", self.inner.account_ensure(name, now))
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
            "token_insert",
            self.inner.token_insert(account, secret_hash, scopes, now),
        )
        .await
    }

    async fn token_lookup(&self, secret_hash: &str) -> CatalogResult<Option<TokenRecord>> {
        self.timed("token_lookup", self.inner.token_lookup(secret_hash))
            .await
    }

    async fn token_count(&self) -> CatalogResult<u64> {
        self.timed("token_count", self.inner.token_count()).await
    }

    async fn image_insert(&self, image: NewImage) -> CatalogResult<ImageRecord> {
        self.timed("image_insert", self.inner.image_insert(image))
            .await
    }

    async fn image_get(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        self.timed("image_get", self.inner.image_get(id)).await
    }

    async fn image_get_by_slug(&self, slug: &str) -> CatalogResult<Option<ImageRecord>> {
        self.timed("image_get_by_slug", self.inner.image_get_by_slug(slug))
            .await
    }

    async fn image_list_public(&self) -> CatalogResult<Vec<ImageRecord>> {
        self.timed("image_list_public", self.inner.image_list_public())
            .await
    }

    async fn image_list(&self, filter: &ImageFilter) -> CatalogResult<(Vec<ImageRecord>, u64)> {
        self.timed("image_list", self.inner.image_list(filter))
            .await
    }

    async fn image_update(
        &self,
        id: i64,
        changes: &ImageChanges,
    ) -> CatalogResult<Option<ImageRecord>> {
        self.timed("image_update", self.inner.image_update(id, changes))
            .await
    }

    async fn image_delete(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        self.timed("image_delete", self.inner.image_delete(id))
            .await
    }

    async fn job_claim(
        &self,
        worker: &str,
        lease_secs: i64,
        now: i64,
    ) -> CatalogResult<Option<ImportJob>> {
        self.timed("job_claim", self.inner.job_claim(worker, lease_secs, now))
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
            "job_heartbeat",
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
            "job_complete",
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
            "job_release",
            self.inner
                .job_release(image_id, worker, not_before, last_error),
        )
        .await
    }

    async fn job_progress(&self, image_id: i64) -> CatalogResult<Option<JobProgress>> {
        self.timed("job_progress", self.inner.job_progress(image_id))
            .await
    }

    async fn job_exists(&self, image_id: i64) -> CatalogResult<bool> {
        self.timed("job_exists", self.inner.job_exists(image_id))
            .await
    }

    async fn job_queue_stats(&self, now: i64) -> CatalogResult<JobQueueStats> {
        self.timed("job_queue_stats", self.inner.job_queue_stats(now))
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
            "rate_counts_sync",
            self.inner.rate_counts_sync(deltas, keys, since_minute),
        )
        .await
    }

    async fn ping(&self) -> CatalogResult<()> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn meta_get(&self, key: &str) -> CatalogResult<Option<String>> {
        self.timed("meta_get", self.inner.meta_get(key)).await
    }

    async fn meta_set(&self, key: &str, value: &str) -> CatalogResult<()> {
        self.timed("meta_set", self.inner.meta_set(key, value))
            .await
    }
}
