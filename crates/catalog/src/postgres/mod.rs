//! The scale-out catalog: PostgreSQL, shared by any number of `tidepool serve` replicas. Jobs
//! are claimed with `FOR UPDATE SKIP LOCKED`; idle workers wake on `LISTEN/NOTIFY`.

mod jobs;
mod lists;
mod rate_counts;

use super::count_cache::CountCache;
use super::row::{join_regions, parse, push_changes, record, records, IMAGE_COLUMNS};
use super::*;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, QueryBuilder, Row};
use std::time::Duration;

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
        sqlx::query("INSERT INTO tokens (account_id, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4)")
            .bind(account.0)
            .bind(secret_hash)
            .bind(scopes.to_string())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn token_lookup(&self, secret_hash: &str) -> CatalogResult<Option<TokenRecord>> {
        let row = sqlx::query("SELECT id, account_id, scopes FROM tokens WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(TokenRecord {
                token_id: r.try_get("id")?,
                account: AccountId(r.try_get("account_id")?),
                scopes: parse::<Scopes>("scopes", r.try_get("scopes")?)?,
            })
        })
        .transpose()
    }

    async fn token_count(&self) -> CatalogResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn image_insert(&self, image: NewImage) -> CatalogResult<ImageRecord> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO images (owner_id, name, distribution, slug, public, listing, regions, \
             created_at, kind, min_disk_size, size_gigabytes, description, tags, status, \
             error_message, source_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '', $15) RETURNING id",
        )
        .bind(image.owner.map(|a| a.0))
        .bind(&image.name)
        .bind(image.distribution.as_str())
        .bind(&image.slug)
        .bind(image.public)
        .bind(image.listing.map(|l| l.as_str()))
        .bind(join_regions(&image.regions))
        .bind(image.created_at)
        .bind(image.kind.as_str())
        .bind(image.min_disk_size.map(|v| v as i64))
        .bind(image.size_gigabytes)
        .bind(&image.description)
        .bind(image.tags.join(","))
        .bind(image.status.as_str())
        .bind(image.job.as_ref().map(|j| &j.url))
        .fetch_one(&mut *tx)
        .await?;
        if !image.tags.is_empty() {
            sqlx::query("INSERT INTO image_tags (image_id, tag) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(&image.tags)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(job) = &image.job {
            sqlx::query("INSERT INTO import_jobs (image_id, url, region, created_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(&job.url)
                .bind(job.region.as_str())
                .bind(image.created_at)
                .execute(&mut *tx)
                .await?;
            jobs::announce(&mut *tx).await?;
        }
        tx.commit().await?;
        self.image_get(id)
            .await?
            .ok_or_else(|| CatalogError::Corrupt(format!("image {id} vanished after insert")))
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
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE public ORDER BY id");
        records(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    async fn image_update(
        &self,
        id: i64,
        changes: &ImageChanges,
    ) -> CatalogResult<Option<ImageRecord>> {
        let mut q = QueryBuilder::<Postgres>::new("UPDATE images SET id = id");
        push_changes(&mut q, changes);
        q.push(" WHERE id = ").push_bind(id);
        if q.build().execute(&self.pool).await?.rows_affected() == 0 {
            return Ok(None);
        }
        self.image_get(id).await
    }

    async fn image_delete(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        let sql = format!("DELETE FROM images WHERE id = $1 RETURNING {IMAGE_COLUMNS}");
        record(
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
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
        let done = sqlx::query(
            "UPDATE import_jobs SET lease_expires_at = $1, bytes_read = $2, bytes_total = $3 \
             WHERE image_id = $4 AND lease_owner = $5",
        )
        .bind(now + lease_secs)
        .bind(progress.bytes_read as i64)
        .bind(progress.bytes_total.map(|t| t as i64))
        .bind(image_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn job_complete(
        &self,
        image_id: i64,
        worker: &str,
        result: &JobResult,
    ) -> CatalogResult<bool> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query("DELETE FROM import_jobs WHERE image_id = $1 AND lease_owner = $2")
            .bind(image_id)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        let updated = match result {
            JobResult::Available { region, format, virtual_size, stored_bytes, sha256, blob_key } => {
                sqlx::query(
                    "UPDATE images SET status = 'available', error_message = '', regions = $1, \
                     format = $2, virtual_size = $3, stored_bytes = $4, sha256 = $5, blob_key = $6, \
                     size_gigabytes = $7, min_disk_size = $8 WHERE id = $9",
                )
                .bind(region.as_str())
                .bind(format)
                .bind(*virtual_size as i64)
                .bind(*stored_bytes as i64)
                .bind(sha256)
                .bind(blob_key)
                .bind(size_gigabytes(*stored_bytes))
                .bind(min_disk_size(*virtual_size) as i64)
                .bind(image_id)
                .execute(&mut *tx)
                .await?
            }
            JobResult::Failed { message } => {
                sqlx::query("UPDATE images SET status = 'deleted', error_message = $1 WHERE id = $2")
                    .bind(message)
                    .bind(image_id)
                    .execute(&mut *tx)
                    .await?
            }
        };
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
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
        let row =
            sqlx::query("SELECT bytes_read, bytes_total FROM import_jobs WHERE image_id = $1")
                .bind(image_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(JobProgress {
                bytes_read: r.try_get::<i64, _>("bytes_read")? as u64,
                bytes_total: r
                    .try_get::<Option<i64>, _>("bytes_total")?
                    .map(|v| v as u64),
            })
        })
        .transpose()
    }

    async fn job_exists(&self, image_id: i64) -> CatalogResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM import_jobs WHERE image_id = $1)")
                .bind(image_id)
                .fetch_one(&self.pool)
                .await?,
        )
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
        Ok(
            sqlx::query_scalar("SELECT value FROM catalog_meta WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn meta_set(&self, key: &str, value: &str) -> CatalogResult<()> {
        sqlx::query(
            "INSERT INTO catalog_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
