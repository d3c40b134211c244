//! The scale-out catalog: PostgreSQL, shared by any number of `tidepool serve` replicas. What
//! only PostgreSQL does is in the modules below: `jobs` (claims with `FOR UPDATE SKIP LOCKED`,
//! `LISTEN/NOTIFY`), `lists` (pages and totals at scale) and `rate_counts`; the statements it
//! writes as SQLite does come from `shared`.

mod jobs;
mod lists;
mod rate_counts;

use super::count_cache::CountCache;
use super::row::{parse, record, IMAGE_COLUMNS};
use super::shared::{inserted, Dialect, Shared};
use super::*;
use sqlx::error::DatabaseError;
use sqlx::postgres::{PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, Pool, Postgres, QueryBuilder, Row};
use std::time::Duration;

impl Dialect for Postgres {
    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    // By name (migration 0001's `slug TEXT UNIQUE`), so that a unique index added later is
    // not taken for the slug's.
    fn is_slug_taken(err: &dyn DatabaseError) -> bool {
        err.is_unique_violation() && err.constraint() == Some("images_slug_key")
    }

    async fn execute_built(
        pool: &Pool<Self>,
        mut q: QueryBuilder<'_, Self>,
    ) -> Result<PgQueryResult, sqlx::Error> {
        q.build().execute(pool).await
    }
}

pub struct PostgresCatalog {
    pool: PgPool,
    queued: Arc<tokio::sync::Notify>,
    /// List totals by filter, valid while the viewer's list generation has not moved.
    counts: CountCache,
}

impl PostgresCatalog {
    pub async fn open(url: &str) -> CatalogResult<Self> {
        let unreachable = |e: sqlx::Error| {
            CatalogError::Config(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact_url(url)
            ))
        };
        // One plain connection first: a wrong host, password or database name fails at once
        // with its own message, instead of a pool retrying until its timeout.
        sqlx::PgConnection::connect(url)
            .await
            .map_err(unreachable)?
            .close()
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(unreachable)?;
        // sqlx holds a PostgreSQL advisory lock while migrating, so replicas starting together
        // apply each migration once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let queued = Arc::new(tokio::sync::Notify::new());
        Ok(PostgresCatalog {
            pool,
            queued,
            counts: CountCache::default(),
        })
    }
}

#[async_trait]
impl Catalog for PostgresCatalog {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn account_ensure(&self, name: &str, now: i64) -> CatalogResult<AccountId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (name, created_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(AccountId(id))
    }

    async fn token_insert(
        &self,
        account: AccountId,
        secret_hash: &str,
        scopes: Scopes,
        now: i64,
    ) -> CatalogResult<()> {
        Shared::token_insert(&self.pool, account, secret_hash, scopes, now).await
    }

    async fn token_lookup(&self, secret_hash: &str) -> CatalogResult<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT t.id, t.account_id, a.name, t.scopes FROM tokens t \
             JOIN accounts a ON a.id = t.account_id WHERE t.secret_hash = $1",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TokenRecord {
                token_id: r.try_get("id")?,
                account: AccountId(r.try_get("account_id")?),
                account_name: r.try_get("name")?,
                scopes: parse::<Scopes>("scopes", r.try_get("scopes")?)?,
            })
        })
        .transpose()
    }

    async fn token_count(&self) -> CatalogResult<u64> {
        Shared::token_count(&self.pool).await
    }

    async fn image_insert(&self, image: NewImage) -> CatalogResult<ImageRecord> {
        let mut tx = self.pool.begin().await?;
        let id = Shared::image_row_insert(&mut *tx, &image).await?;
        if !image.tags.is_empty() {
            sqlx::query(
                "INSERT INTO image_tags (image_id, tag) SELECT $1, unnest($2::text[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(&image.tags)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(job) = &image.job {
            Shared::job_insert(&mut *tx, id, job, image.created_at).await?;
            jobs::announce(&mut *tx).await?;
        }
        tx.commit().await?;
        inserted(id, self.image_get(id).await?)
    }

    async fn image_get(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = $1");
        record(
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn image_get_by_slug(&self, slug: &str) -> CatalogResult<Option<ImageRecord>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE slug = $1");
        record(
            sqlx::query_as(&sql)
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn image_list(&self, filter: &ImageFilter) -> CatalogResult<(Vec<ImageRecord>, u64)> {
        lists::page_and_total(&self.pool, &self.counts, filter).await
    }

    async fn image_list_public(&self) -> CatalogResult<Vec<ImageRecord>> {
        Shared::image_list_public(&self.pool).await
    }

    async fn image_update(
        &self,
        id: i64,
        changes: &ImageChanges,
    ) -> CatalogResult<Option<ImageRecord>> {
        if !Shared::image_update(&self.pool, id, changes).await? {
            return Ok(None);
        }
        self.image_get(id).await
    }

    async fn image_delete(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        Shared::image_delete(&self.pool, id).await
    }

    async fn job_claim(
        &self,
        worker: &str,
        lease_secs: i64,
        now: i64,
    ) -> CatalogResult<Option<ImportJob>> {
        jobs::claim(&self.pool, worker, lease_secs, now).await
    }

    async fn job_heartbeat(
        &self,
        image_id: i64,
        worker: &str,
        lease_secs: i64,
        now: i64,
        progress: JobProgress,
    ) -> CatalogResult<bool> {
        Shared::job_heartbeat(&self.pool, image_id, worker, lease_secs, now, progress).await
    }

    async fn job_complete(
        &self,
        image_id: i64,
        worker: &str,
        result: &JobResult,
    ) -> CatalogResult<bool> {
        Shared::job_complete(&self.pool, image_id, worker, result).await
    }

    async fn job_release(
        &self,
        image_id: i64,
        worker: &str,
        not_before: i64,
        last_error: &str,
    ) -> CatalogResult<bool> {
        jobs::release(&self.pool, image_id, worker, not_before, last_error).await
    }

    async fn job_progress(&self, image_id: i64) -> CatalogResult<Option<JobProgress>> {
        Shared::job_progress(&self.pool, image_id).await
    }

    async fn job_exists(&self, image_id: i64) -> CatalogResult<bool> {
        Shared::job_exists(&self.pool, image_id).await
    }

    async fn job_queue_stats(&self, now: i64) -> CatalogResult<JobQueueStats> {
        Shared::job_queue_stats(&self.pool, now).await
    }

    async fn ping(&self) -> CatalogResult<()> {
        Shared::ping(&self.pool).await
    }

    async fn job_listen(&self) -> CatalogResult<()> {
        jobs::listen(&self.pool, &self.queued).await
    }

    fn job_queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    async fn rate_counts_sync(
        &self,
        deltas: &[RateCount],
        keys: &[String],
        since_minute: i64,
    ) -> CatalogResult<Option<Vec<RateCount>>> {
        rate_counts::sync(&self.pool, deltas, keys, since_minute)
            .await
            .map(Some)
    }

    async fn meta_get(&self, key: &str) -> CatalogResult<Option<String>> {
        Shared::meta_get(&self.pool, key).await
    }

    async fn meta_set(&self, key: &str, value: &str) -> CatalogResult<()> {
        Shared::meta_set(&self.pool, key, value).await
    }
}
