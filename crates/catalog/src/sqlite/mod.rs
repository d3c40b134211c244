//! The embedded catalog: one SQLite file in the data directory, in WAL mode. Writes go
//! through sqlx; the reads behind requests through `reads`.

mod reads;

use super::count_cache::{CountCache, CountKey};
use super::row::{join_regions, parse, push_changes, record, records, IMAGE_COLUMNS};
use super::*;
use reads::{image_where, list_count, list_generation, list_page, Readers, INLINE_MAX_OFFSET};
use rusqlite::OptionalExtension;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::time::Duration;
use tidepool_api::Region;

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
        sqlx::query(
            "INSERT INTO tokens (account_id, secret_hash, scopes, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(account.0)
        .bind(secret_hash)
        .bind(scopes.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_lookup(&self, secret_hash: &str) -> CatalogResult<Option<TokenRecord>> {
        let row = self.readers.with(|conn| {
            conn.prepare_cached("SELECT id, account_id, scopes FROM tokens WHERE secret_hash = ?1")?
                .query_row([secret_hash], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .optional()
        })?;
        row.map(|(token_id, account, scopes)| {
            Ok(TokenRecord {
                token_id,
                account: AccountId(account),
                scopes: parse::<Scopes>("scopes", &scopes)?,
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?) RETURNING id",
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
        Self::tags_replace(&mut tx, id, &image.tags).await?;
        if let Some(job) = &image.job {
            sqlx::query(
                "INSERT INTO import_jobs (image_id, url, region, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(id)
            .bind(&job.url)
            .bind(job.region.as_str())
            .bind(image.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if image.job.is_some() {
            self.queued.notify_one();
        }
        self.image_get(id)
            .await?
            .ok_or_else(|| CatalogError::Corrupt(format!("image {id} vanished after insert")))
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
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE public = 1 ORDER BY id");
        records(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    async fn image_update(
        &self,
        id: i64,
        changes: &ImageChanges,
    ) -> CatalogResult<Option<ImageRecord>> {
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE images SET id = id");
        push_changes(&mut q, changes);
        q.push(" WHERE id = ").push_bind(id);
        let done = q.build().execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.image_get(id).await
    }

    async fn image_delete(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        let sql = format!("DELETE FROM images WHERE id = ? RETURNING {IMAGE_COLUMNS}");
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
        let mut tx = self.pool.begin().await?;
        // One UPDATE picks and takes the job; SQLite runs it under its single writer lock, so
        // two workers cannot both see the job as free.
        let row = sqlx::query(
            "UPDATE import_jobs SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1 \
             WHERE image_id = (SELECT image_id FROM import_jobs \
                 WHERE lease_expires_at IS NULL OR lease_expires_at <= ? \
                 ORDER BY image_id LIMIT 1) \
             RETURNING image_id, url, region, attempts",
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
        let done = sqlx::query(
            "UPDATE import_jobs SET lease_expires_at = ?, bytes_read = ?, bytes_total = ? \
             WHERE image_id = ? AND lease_owner = ?",
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
        let held = sqlx::query("DELETE FROM import_jobs WHERE image_id = ? AND lease_owner = ?")
            .bind(image_id)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        let updated = match result {
            JobResult::Available {
                region,
                format,
                virtual_size,
                stored_bytes,
                sha256,
                blob_key,
            } => {
                sqlx::query(
                    "UPDATE images SET status = 'available', error_message = '', regions = ?, \
                     format = ?, virtual_size = ?, stored_bytes = ?, sha256 = ?, blob_key = ?, \
                     size_gigabytes = ?, min_disk_size = ? WHERE id = ?",
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
                sqlx::query("UPDATE images SET status = 'deleted', error_message = ? WHERE id = ?")
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
        let done = sqlx::query(
            "UPDATE import_jobs SET lease_owner = NULL, lease_expires_at = ?, last_error = ? \
             WHERE image_id = ? AND lease_owner = ?",
        )
        .bind(not_before)
        .bind(last_error)
        .bind(image_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            self.queued.notify_one();
        }
        Ok(done.rows_affected() == 1)
    }

    async fn job_progress(&self, image_id: i64) -> CatalogResult<Option<JobProgress>> {
        let row = sqlx::query("SELECT bytes_read, bytes_total FROM import_jobs WHERE image_id = ?")
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
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM import_jobs WHERE image_id = ?")
            .bind(image_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    fn job_queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    async fn meta_get(&self, key: &str) -> CatalogResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM catalog_meta WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn meta_set(&self, key: &str, value: &str) -> CatalogResult<()> {
        sqlx::query(
            "INSERT INTO catalog_meta (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
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
        assert_eq!(applied, vec![1, 2]);
    }
}
