//! The statements that read the same in SQLite and PostgreSQL, written once.
//!
//! Each is a function generic over the sqlx `Database`, in one `impl` block whose `where` clause
//! states, once, what the statements need of a dialect (the types they bind and decode). The
//! alternative, a macro that expands the same body once per pool (as vaultwarden does), would
//! hide the bodies from rustfmt and report every mistake twice, at the macro's call sites; here
//! they are ordinary Rust, checked once. Plain strings do for the SQL: both dialects number
//! parameters `$1, $2, …` (sqlx binds SQLite's `$N` by its number), and `QueryBuilder` writes each
//! dialect's own placeholders where a statement is built. Monomorphised, each function is the
//! code a backend would have written for itself: nothing is slower for the sharing.
//!
//! What truly differs stays in the backends: claims (`SKIP LOCKED`), job announcements
//! (`NOTIFY` or an in-process wake-up), list plans, rate counts, upserts, tag inserts, and
//! SQLite's request-path reads (rusqlite, in `sqlite/reads.rs`). `Dialect` holds the little that
//! differs inside a shared statement.

use super::row::{join_regions, push_changes, record, records, ImageRow, IMAGE_COLUMNS};
use super::*;
use sqlx::error::DatabaseError;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, QueryBuilder, Type};
use std::future::Future;
use std::marker::PhantomData;

/// What the two dialects do differently within the statements they share.
pub(crate) trait Dialect: Database {
    fn rows_affected(done: &Self::QueryResult) -> u64;
    /// Whether a statement failed on the unique index of image slugs, not another constraint.
    fn is_slug_taken(err: &dyn DatabaseError) -> bool;
    /// Runs what a `QueryBuilder` built. Generic code cannot: behind `Database::Arguments<'a>`
    /// the arguments' lifetime cannot shorten to the borrow of the builder, which would then
    /// have to outlive the builder itself. A backend's own argument type can.
    fn execute_built<'a>(
        pool: &'a Pool<Self>,
        q: QueryBuilder<'a, Self>,
    ) -> impl Future<Output = Result<Self::QueryResult, sqlx::Error>> + Send + 'a;
}

/// The shared statements, for a backend's `DB`: `Shared::job_exists(&pool, id)`. Each takes the
/// executor to run on first, a pool or a caller's transaction, as sqlx's own queries do.
pub(crate) struct Shared<DB>(PhantomData<DB>);

/// The record an insert just made, read back: missing only if the catalog is broken.
pub(crate) fn inserted(id: i64, found: Option<ImageRecord>) -> CatalogResult<ImageRecord> {
    found.ok_or_else(|| CatalogError::Corrupt(format!("image {id} vanished after insert")))
}

/// A unique-slug violation as an error of its own: callers insert and handle the conflict
/// instead of looking first, which two writers at once would both pass.
fn slug_error<DB: Dialect>(err: sqlx::Error, slug: Option<&str>) -> CatalogError {
    match (&err, slug) {
        (sqlx::Error::Database(e), Some(slug)) if DB::is_slug_taken(&**e) => {
            CatalogError::SlugTaken(slug.to_owned())
        }
        _ => err.into(),
    }
}

impl<DB> Shared<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (bool,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (i64, Option<i64>): FromRow<'r, DB::Row>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
    for<'r> ImageRow: FromRow<'r, DB::Row>,
{
    pub(crate) async fn token_insert<'e>(
        db: impl Executor<'e, Database = DB>,
        account: AccountId,
        secret_hash: &str,
        scopes: Scopes,
        now: i64,
    ) -> CatalogResult<()> {
        sqlx::query(
            "INSERT INTO tokens (account_id, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(account.0)
        .bind(secret_hash)
        .bind(scopes.to_string())
        .bind(now)
        .execute(db)
        .await?;
        Ok(())
    }

    pub(crate) async fn token_count<'e>(
        db: impl Executor<'e, Database = DB>,
    ) -> CatalogResult<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tokens")
            .fetch_one(db)
            .await?;
        Ok(n as u64)
    }

    /// The image's own row, without its tags or job. Returns its id, or `SlugTaken`.
    pub(crate) async fn image_row_insert<'e>(
        db: impl Executor<'e, Database = DB>,
        image: &NewImage,
    ) -> CatalogResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO images (owner_id, name, distribution, slug, public, listing, regions, \
             created_at, kind, min_disk_size, size_gigabytes, description, tags, status, \
             error_message, source_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '', $15) RETURNING id",
        )
        .bind(image.owner.map(|a| a.0))
        .bind(image.name.as_str())
        .bind(image.distribution.as_str())
        .bind(image.slug.as_deref())
        .bind(image.public)
        .bind(image.listing.map(|l| l.as_str()))
        .bind(join_regions(&image.regions))
        .bind(image.created_at)
        .bind(image.kind.as_str())
        .bind(image.min_disk_size.map(|v| v as i64))
        .bind(image.size_gigabytes)
        .bind(image.description.as_str())
        .bind(image.tags.join(","))
        .bind(image.status.as_str())
        .bind(image.job.as_ref().map(|j| j.url.as_str()))
        .fetch_one(db)
        .await
        .map_err(|err| slug_error::<DB>(err, image.slug.as_deref()))?;
        Ok(id)
    }

    pub(crate) async fn job_insert<'e>(
        db: impl Executor<'e, Database = DB>,
        image_id: i64,
        job: &NewJob,
        created_at: i64,
    ) -> CatalogResult<()> {
        sqlx::query(
            "INSERT INTO import_jobs (image_id, url, region, created_at, request_id) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(image_id)
        .bind(job.url.as_str())
        .bind(job.region.as_str())
        .bind(created_at)
        .bind(job.request_id.as_deref())
        .execute(db)
        .await?;
        Ok(())
    }

    /// Every public image, retired ones included, by id.
    pub(crate) async fn image_list_public<'e>(
        db: impl Executor<'e, Database = DB>,
    ) -> CatalogResult<Vec<ImageRecord>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE public = TRUE ORDER BY id");
        records(sqlx::query_as(&sql).fetch_all(db).await?)
    }

    /// False when there is no such image; `SlugTaken` when another image has the new slug.
    pub(crate) async fn image_update(
        pool: &Pool<DB>,
        id: i64,
        changes: &ImageChanges,
    ) -> CatalogResult<bool> {
        let mut q = QueryBuilder::<DB>::new("UPDATE images SET id = id");
        push_changes(&mut q, changes);
        q.push(" WHERE id = ").push_bind(id);
        let slug = changes.slug.as_ref().and_then(Option::as_deref);
        let done = DB::execute_built(pool, q)
            .await
            .map_err(|err| slug_error::<DB>(err, slug))?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// Removes the image; its tags and job go with it (`ON DELETE CASCADE`).
    pub(crate) async fn image_delete<'e>(
        db: impl Executor<'e, Database = DB>,
        id: i64,
    ) -> CatalogResult<Option<ImageRecord>> {
        let sql = format!("DELETE FROM images WHERE id = $1 RETURNING {IMAGE_COLUMNS}");
        record(sqlx::query_as(&sql).bind(id).fetch_optional(db).await?)
    }

    pub(crate) async fn job_heartbeat<'e>(
        db: impl Executor<'e, Database = DB>,
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
        .execute(db)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// Records the result and removes the job, in one transaction, only while `worker` holds
    /// the job and the image exists.
    pub(crate) async fn job_complete(
        pool: &Pool<DB>,
        image_id: i64,
        worker: &str,
        result: &JobResult,
    ) -> CatalogResult<bool> {
        let mut tx = pool.begin().await?;
        let held = sqlx::query("DELETE FROM import_jobs WHERE image_id = $1 AND lease_owner = $2")
            .bind(image_id)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&held) != 1 {
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
                    "UPDATE images SET status = 'available', error_message = '', regions = $1, \
                     format = $2, virtual_size = $3, stored_bytes = $4, sha256 = $5, blob_key = $6, \
                     size_gigabytes = $7, min_disk_size = $8 WHERE id = $9",
                )
                .bind(region.as_str())
                .bind(format.as_str())
                .bind(*virtual_size as i64)
                .bind(*stored_bytes as i64)
                .bind(sha256.as_str())
                .bind(blob_key.as_str())
                .bind(size_gigabytes(*stored_bytes))
                .bind(min_disk_size(*virtual_size) as i64)
                .bind(image_id)
                .execute(&mut *tx)
                .await?
            }
            JobResult::Failed { message } => {
                sqlx::query("UPDATE images SET status = 'deleted', error_message = $1 WHERE id = $2")
                    .bind(message.as_str())
                    .bind(image_id)
                    .execute(&mut *tx)
                    .await?
            }
        };
        if DB::rows_affected(&updated) != 1 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives the job back to the queue. False when `worker` does not hold it.
    pub(crate) async fn job_release<'e>(
        db: impl Executor<'e, Database = DB>,
        image_id: i64,
        worker: &str,
        not_before: i64,
        last_error: &str,
    ) -> CatalogResult<bool> {
        let done = sqlx::query(
            "UPDATE import_jobs SET lease_owner = NULL, lease_expires_at = $1, last_error = $2 \
             WHERE image_id = $3 AND lease_owner = $4",
        )
        .bind(not_before)
        .bind(last_error)
        .bind(image_id)
        .bind(worker)
        .execute(db)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub(crate) async fn job_progress<'e>(
        db: impl Executor<'e, Database = DB>,
        image_id: i64,
    ) -> CatalogResult<Option<JobProgress>> {
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT bytes_read, bytes_total FROM import_jobs WHERE image_id = $1")
                .bind(image_id)
                .fetch_optional(db)
                .await?;
        Ok(row.map(|(bytes_read, bytes_total)| JobProgress {
            bytes_read: bytes_read as u64,
            bytes_total: bytes_total.map(|v| v as u64),
        }))
    }

    pub(crate) async fn job_exists<'e>(
        db: impl Executor<'e, Database = DB>,
        image_id: i64,
    ) -> CatalogResult<bool> {
        let (exists,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM import_jobs WHERE image_id = $1)")
                .bind(image_id)
                .fetch_one(db)
                .await?;
        Ok(exists)
    }

    pub(crate) async fn job_queue_stats<'e>(
        db: impl Executor<'e, Database = DB>,
        now: i64,
    ) -> CatalogResult<JobQueueStats> {
        // A held job whose lease ran out counts as queued: its worker is gone and the next
        // claim takes it over.
        let (queued, running): (i64, i64) = sqlx::query_as(
            "SELECT \
               COUNT(*) FILTER (WHERE lease_owner IS NULL OR lease_expires_at <= $1), \
               COUNT(*) FILTER (WHERE lease_owner IS NOT NULL AND lease_expires_at > $1) \
             FROM import_jobs",
        )
        .bind(now)
        .fetch_one(db)
        .await?;
        Ok(JobQueueStats {
            queued: queued as u64,
            running: running as u64,
        })
    }

    pub(crate) async fn ping<'e>(db: impl Executor<'e, Database = DB>) -> CatalogResult<()> {
        let (_,): (i64,) = sqlx::query_as("SELECT CAST(1 AS BIGINT)")
            .fetch_one(db)
            .await?;
        Ok(())
    }

    pub(crate) async fn meta_get<'e>(
        db: impl Executor<'e, Database = DB>,
        key: &str,
    ) -> CatalogResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM catalog_meta WHERE key = $1")
                .bind(key)
                .fetch_optional(db)
                .await?;
        Ok(row.map(|(value,)| value))
    }

    pub(crate) async fn meta_set<'e>(
        db: impl Executor<'e, Database = DB>,
        key: &str,
        value: &str,
    ) -> CatalogResult<()> {
        sqlx::query(
            "INSERT INTO catalog_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(db)
        .await?;
        Ok(())
    }
}
