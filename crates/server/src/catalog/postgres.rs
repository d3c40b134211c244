//! The scale-out catalog: PostgreSQL, shared by any number of `tidepool serve` replicas. Jobs
//! are claimed with `FOR UPDATE SKIP LOCKED`; idle workers wake on `LISTEN/NOTIFY`.

use super::row::{join_regions, parse, push_changes, push_filter, record, records, IMAGE_COLUMNS};
use super::*;
use crate::app::unix_now;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, QueryBuilder, Row};
use std::time::Duration;
use tidepool_api::Region;

/// The channel on which a queued or released job is announced to every replica.
const JOBS_CHANNEL: &str = "tidepool_jobs";

pub struct PostgresCatalog {
    pool: PgPool,
    queued: Arc<tokio::sync::Notify>,
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
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(JOBS_CHANNEL).await?;
        let wake = queued.clone();
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => wake.notify_one(),
                    Err(err) => {
                        // PgListener reconnects by itself on the next recv; workers poll meanwhile.
                        tracing::warn!("job notifications interrupted: {err}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(PostgresCatalog { pool, queued })
    }

    async fn announce_job(executor: impl sqlx::PgExecutor<'_>) -> CatalogResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(executor)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Catalog for PostgresCatalog {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn account_ensure(&self, name: &str) -> CatalogResult<AccountId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (name, created_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .bind(unix_now())
        .fetch_one(&self.pool)
        .await?;
        Ok(AccountId(id))
    }

    async fn token_insert(
        &self,
        account: AccountId,
        secret_hash: &str,
        scopes: Scopes,
    ) -> CatalogResult<()> {
        sqlx::query("INSERT INTO tokens (account_id, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4)")
            .bind(account.0)
            .bind(secret_hash)
            .bind(scopes.to_string())
            .bind(unix_now())
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
                .bind(unix_now())
                .execute(&mut *tx)
                .await?;
            Self::announce_job(&mut *tx).await?;
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
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM images");
        push_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut page = QueryBuilder::<Postgres>::new(format!("SELECT {IMAGE_COLUMNS} FROM images"));
        push_filter(&mut page, filter);
        page.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(filter.limit))
            .push(" OFFSET ")
            .push_bind(i64::try_from(filter.offset).unwrap_or(i64::MAX));
        let images = records(page.build_query_as().fetch_all(&self.pool).await?)?;
        Ok((images, total as u64))
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
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: replicas claiming at once each get a different job, without waiting.
        let row = sqlx::query(
            "UPDATE import_jobs j SET lease_owner = $1, lease_expires_at = $2, attempts = j.attempts + 1 \
             FROM (SELECT image_id FROM import_jobs \
                   WHERE lease_expires_at IS NULL OR lease_expires_at <= $3 \
                   ORDER BY image_id LIMIT 1 FOR UPDATE SKIP LOCKED) next \
             WHERE j.image_id = next.image_id \
             RETURNING j.image_id, j.url, j.region, j.attempts",
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
            attempts: row.try_get::<i32, _>("attempts")? as u32,
        };
        sqlx::query("UPDATE images SET status = 'pending' WHERE id = $1")
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
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE import_jobs SET lease_owner = NULL, lease_expires_at = $1, last_error = $2 \
             WHERE image_id = $3 AND lease_owner = $4",
        )
        .bind(not_before)
        .bind(last_error)
        .bind(image_id)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        let released = done.rows_affected() == 1;
        if released {
            Self::announce_job(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(released)
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

    fn job_queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    async fn rate_counts_sync(
        &self,
        deltas: &[SharedCount],
        keys: &[String],
        since_minute: i64,
    ) -> CatalogResult<Option<Vec<SharedCount>>> {
        let mut tx = self.pool.begin().await?;
        if !deltas.is_empty() {
            let (k, m, c): (Vec<_>, Vec<_>, Vec<_>) = deltas
                .iter()
                .map(|d| (d.key.clone(), d.minute, d.count))
                .fold(
                    (vec![], vec![], vec![]),
                    |(mut k, mut m, mut c), (a, b, d)| {
                        k.push(a);
                        m.push(b);
                        c.push(d);
                        (k, m, c)
                    },
                );
            sqlx::query(
                "INSERT INTO rate_counts (key, minute, count) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) \
                 ON CONFLICT (key, minute) DO UPDATE SET count = rate_counts.count + excluded.count",
            )
            .bind(k)
            .bind(m)
            .bind(c)
            .execute(&mut *tx)
            .await?;
        }
        // Minutes older than the hour window count for nothing any more.
        sqlx::query("DELETE FROM rate_counts WHERE minute < $1")
            .bind(since_minute - 1)
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT key, minute, count FROM rate_counts WHERE minute >= $1 AND key = ANY($2)",
        )
        .bind(since_minute)
        .bind(keys)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let totals = rows
            .iter()
            .map(|r| {
                Ok(SharedCount {
                    key: r.try_get("key")?,
                    minute: r.try_get("minute")?,
                    count: r.try_get("count")?,
                })
            })
            .collect::<CatalogResult<_>>()?;
        Ok(Some(totals))
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
