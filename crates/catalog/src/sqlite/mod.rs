//! The embedded catalog: one SQLite file in the data directory, in WAL mode. Writes (most of
//! them the statements in `shared`) go through sqlx; the reads behind requests through `reads`.

mod reads;

use super::count_cache::{CountCache, CountKey};
use super::row::parse;
use super::shared::{inserted, Dialect, Shared};
use super::*;
use reads::{image_where, list_count, list_generation, list_page, Readers, INLINE_MAX_OFFSET};
use rusqlite::OptionalExtension;
use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Pool, QueryBuilder, Row, Sqlite, SqlitePool};
use std::time::Duration;
use tidepool_api::Region;

impl Dialect for Sqlite {
    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    // sqlx has no constraint names from SQLite; the message names the column instead.
    fn is_slug_taken(err: &dyn DatabaseError) -> bool {
        err.is_unique_violation() && err.message().ends_with(": images.slug")
    }

    async fn execute_built(
        pool: &Pool<Self>,
        mut q: QueryBuilder<'_, Self>,
    ) -> Result<SqliteQueryResult, sqlx::Error> {
        q.build().execute(pool).await
    }
}

pub struct SqliteCatalog {
    pool: SqlitePool,
    readers: Arc<Readers>,
    /// SQLite is one process's file: a wake-up in memory reaches every worker there is.
    queued: Arc<tokio::sync::Notify>,
    /// List totals by filter, valid while the list generation has not moved.
    counts: CountCache,
}

impl SqliteCatalog {
    pub async fn open(path: &Path) -> CatalogResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                CatalogError::Config(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable against process crashes; a power loss may lose the last
            // commits but never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteCatalog {
            pool,
            readers: Readers::new(path),
            queued: Arc::new(tokio::sync::Notify::new()),
            counts: CountCache::default(),
        })
    }

    async fn tags_replace(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        image_id: i64,
        tags: &[String],
    ) -> CatalogResult<()> {
        sqlx::query("DELETE FROM image_tags WHERE image_id = ?")
            .bind(image_id)
            .execute(&mut **tx)
            .await?;
        for tag in tags {
            sqlx::query("INSERT OR IGNORE INTO image_tags (image_id, tag) VALUES (?, ?)")
                .bind(image_id)
                .bind(tag)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Catalog for SqliteCatalog {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn account_ensure(&self, name: &str, now: i64) -> CatalogResult<AccountId> {
        sqlx::query("INSERT OR IGNORE INTO accounts (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(now)
            .execute(&self.pool)
            .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE name = ?")
            .bind(name)
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
        let row = self.readers.with(|conn| {
            conn.prepare_cached(
                "SELECT t.id, t.account_id, a.name, t.scopes FROM tokens t \
                 JOIN accounts a ON a.id = t.account_id WHERE t.secret_hash = ?1",
            )?
            .query_row([secret_hash], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .optional()
        })?;
        row.map(|(token_id, account, account_name, scopes)| {
            Ok(TokenRecord {
                token_id,
                account: AccountId(account),
                account_name,
                scopes: parse::<Scopes>("scopes", &scopes)?,
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
        Self::tags_replace(&mut tx, id, &image.tags).await?;
        if let Some(job) = &image.job {
            Shared::job_insert(&mut *tx, id, job, image.created_at).await?;
        }
        tx.commit().await?;
        if image.job.is_some() {
            self.queued.notify_one();
        }
        inserted(id, self.image_get(id).await?)
    }

    async fn image_get(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        self.readers.with(|conn| image_where(conn, "id", id))
    }

    async fn image_get_by_slug(&self, slug: &str) -> CatalogResult<Option<ImageRecord>> {
        self.readers.with(|conn| image_where(conn, "slug", slug))
    }

    async fn image_list(&self, filter: &ImageFilter) -> CatalogResult<(Vec<ImageRecord>, u64)> {
        // The generation is read before counting, so that a write in between makes the total
        // look stale, never the other way round.
        let page = list_page(filter);
        let (generation, images) = if filter.offset <= INLINE_MAX_OFFSET {
            self.readers.with(|conn| -> CatalogResult<_> {
                Ok((list_generation(conn)?, page.query_records(conn)?))
            })?
        } else {
            let generation = self.readers.with(list_generation)?;
            let images = self
                .readers
                .off_thread(move |conn| page.query_records(conn))
                .await?;
            (generation, images)
        };
        let total = self
            .counts
            .total(CountKey::of(filter), generation, async {
                let count = list_count(filter);
                let total = self
                    .readers
                    .off_thread(move |conn| count.query_count(conn))
                    .await?;
                Ok(total as u64)
            })
            .await?;
        Ok((images, total))
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
        let mut tx = self.pool.begin().await?;
        // One UPDATE picks and takes the job; SQLite runs it under its single writer lock, so
        // two workers cannot both see the job as free.
        let row = sqlx::query(
            "UPDATE import_jobs SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1, \
                 taken_over_from = lease_owner \
             WHERE image_id = (SELECT image_id FROM import_jobs \
                 WHERE lease_expires_at IS NULL OR lease_expires_at <= ? \
                 ORDER BY image_id LIMIT 1) \
             RETURNING image_id, url, region, attempts, request_id, taken_over_from",
        )
        .bind(worker)
        .bind(now + lease_secs)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let job = ImportJob {
            image_id: row.try_get("image_id")?,
            url: row.try_get("url")?,
            region: parse::<Region>("region", row.try_get("region")?)?,
            attempts: row.try_get::<i64, _>("attempts")? as u32,
            request_id: row.try_get("request_id")?,
            taken_over_from: row.try_get("taken_over_from")?,
        };
        sqlx::query("UPDATE images SET status = 'pending' WHERE id = ?")
            .bind(job.image_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(job))
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
        let released =
            Shared::job_release(&self.pool, image_id, worker, not_before, last_error).await?;
        if released {
            self.queued.notify_one();
        }
        Ok(released)
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

    fn job_queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    async fn meta_get(&self, key: &str) -> CatalogResult<Option<String>> {
        Shared::meta_get(&self.pool, key).await
    }

    async fn meta_set(&self, key: &str, value: &str) -> CatalogResult<()> {
        Shared::meta_set(&self.pool, key, value).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::new_custom;

    /// Catalogs made before `list_generation` had a migration have its objects already (they were
    /// created at every open) but only migration 1 applied; migration 2 must leave them alone.
    #[tokio::test]
    async fn a_catalog_from_before_the_list_generation_migration_keeps_its_counter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let c = SqliteCatalog::open(&path).await.unwrap();
        let owner = c.account_ensure("a", crate::testing::T0).await.unwrap();
        c.image_insert(new_custom(owner, "old", &[])).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 2")
            .execute(&c.pool)
            .await
            .unwrap();
        c.pool.close().await;
        drop(c);

        let c = SqliteCatalog::open(&path).await.unwrap();
        let generation = || c.readers.with(list_generation).unwrap();
        assert_eq!(generation(), 1, "the counter is kept");
        c.image_insert(new_custom(owner, "new", &[])).await.unwrap();
        assert_eq!(generation(), 2, "the triggers still move it");
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&c.pool)
                .await
                .unwrap();
        assert_eq!(applied[..2], [1, 2], "migration 2 is recorded as applied");
    }
}
