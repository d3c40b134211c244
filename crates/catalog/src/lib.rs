//! The catalog: accounts, tokens, images and import jobs. One trait, chosen once at start-up
//! from the database URL, and one contract suite (`testing::test_suite`) that every backend runs.
//! The SQL the two backends write alike is in `shared`; each backend keeps what its dialect does
//! its own way, and the schema is in the migrations (`migrations/{sqlite,postgres}`).

mod count_cache;
mod postgres;
mod records;
mod row;
mod shared;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use postgres::PostgresCatalog;
pub use records::*;
pub use sqlite::SqliteCatalog;

use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use tidepool_api::Scopes;

/// A failure of the catalog itself (the database), or a write that the stored images refuse
/// (`SlugTaken`), which callers answer as the caller's mistake.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Database(sqlx::Error),
    #[error("catalog database error: {0}")]
    Read(rusqlite::Error),
    /// The database's disk is full (SQLite's `SQLITE_FULL`, PostgreSQL's `53100 disk_full`):
    /// nothing was written, and nothing will be until an operator makes room, so callers say
    /// so rather than report a fault of their own.
    #[error("catalog database is out of space: {0}")]
    OutOfSpace(String),
    #[error("catalog migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
    #[error("a record in the catalog is not valid: {0}")]
    Corrupt(String),
    /// Another image already has this slug (the database's unique index said so).
    #[error("the slug {0:?} is already taken")]
    SlugTaken(String),
}

pub type CatalogResult<T> = Result<T, CatalogError>;

/// SQLite's primary result code for "database or disk is full"; its extended codes keep it in
/// the low byte.
const SQLITE_FULL: i32 = 13;
/// PostgreSQL's SQLSTATE `disk_full`.
const POSTGRES_DISK_FULL: &str = "53100";

impl From<sqlx::Error> for CatalogError {
    fn from(err: sqlx::Error) -> Self {
        let full = match &err {
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some(POSTGRES_DISK_FULL) => db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some(),
                Some(code) => {
                    db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                        && code.parse::<i32>().is_ok_and(|c| c & 0xff == SQLITE_FULL)
                }
                None => false,
            },
            _ => false,
        };
        if full {
            CatalogError::OutOfSpace(err.to_string())
        } else {
            CatalogError::Database(err)
        }
    }
}

impl From<rusqlite::Error> for CatalogError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => CatalogError::OutOfSpace(err.to_string()),
            _ => CatalogError::Read(err),
        }
    }
}

#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Short name for logs: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    async fn account_ensure(&self, name: &str, now: i64) -> CatalogResult<AccountId>;
    async fn token_insert(
        &self,
        account: AccountId,
        secret_hash: &str,
        scopes: Scopes,
        now: i64,
    ) -> CatalogResult<()>;
    async fn token_lookup(&self, secret_hash: &str) -> CatalogResult<Option<TokenRecord>>;
    async fn token_count(&self) -> CatalogResult<u64>;

    /// Inserts an image (with its tags, and its import job when `job` is set) atomically.
    /// `SlugTaken`, with nothing stored, when another image has its slug.
    async fn image_insert(&self, image: NewImage) -> CatalogResult<ImageRecord>;
    async fn image_get(&self, id: i64) -> CatalogResult<Option<ImageRecord>>;
    async fn image_get_by_slug(&self, slug: &str) -> CatalogResult<Option<ImageRecord>>;
    /// Every public image, retired ones included, by id.
    async fn image_list_public(&self) -> CatalogResult<Vec<ImageRecord>>;
    /// One page of the images `filter` selects, in id order, and the number of all of them.
    async fn image_list(&self, filter: &ImageFilter) -> CatalogResult<(Vec<ImageRecord>, u64)>;
    /// Applies `changes` at once, or (`SlugTaken`: another image has the new slug) none of them.
    async fn image_update(
        &self,
        id: i64,
        changes: &ImageChanges,
    ) -> CatalogResult<Option<ImageRecord>>;
    /// Removes the image, its tags and its job. Returns the removed record.
    async fn image_delete(&self, id: i64) -> CatalogResult<Option<ImageRecord>>;

    /// Claims the oldest job that nobody holds (or whose holder's lease expired) and whose
    /// backoff has passed; marks its image `pending`. At most one worker gets a given job.
    async fn job_claim(
        &self,
        worker: &str,
        lease_secs: i64,
        now: i64,
    ) -> CatalogResult<Option<ImportJob>>;
    /// Renews the lease and records progress. False when the worker no longer holds the job
    /// (it expired and was taken over, or the image was deleted): the worker must stop.
    async fn job_heartbeat(
        &self,
        image_id: i64,
        worker: &str,
        lease_secs: i64,
        now: i64,
        progress: JobProgress,
    ) -> CatalogResult<bool>;
    /// Records the result on the image and removes the job, only if `worker` still holds it
    /// and the image still exists. False otherwise (nothing is written).
    async fn job_complete(
        &self,
        image_id: i64,
        worker: &str,
        result: &JobResult,
    ) -> CatalogResult<bool>;
    /// Gives the job back to the queue, to be claimed again from `not_before`.
    async fn job_release(
        &self,
        image_id: i64,
        worker: &str,
        not_before: i64,
        last_error: &str,
    ) -> CatalogResult<bool>;
    /// Progress of an import that has not completed.
    async fn job_progress(&self, image_id: i64) -> CatalogResult<Option<JobProgress>>;
    /// Whether an image has an import job that has not completed.
    async fn job_exists(&self, image_id: i64) -> CatalogResult<bool>;
    /// Jobs waiting and running across every replica, for the metrics.
    async fn job_queue_stats(&self, now: i64) -> CatalogResult<JobQueueStats>;
    /// Wakes when a job may have been queued (a hint; claimers also poll).
    fn job_queued(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Forwards the job announcements of other processes to `job_queued` for as long as it is
    /// polled; the caller runs it as a background task and stops it by dropping it. A catalog
    /// that serves one process only (SQLite) has nothing to listen to and returns at once.
    async fn job_listen(&self) -> CatalogResult<()> {
        Ok(())
    }

    /// Adds this replica's new rate-limit counts to the shared ones and returns the shared
    /// totals of `keys` since `since_minute`. `None`: the catalog serves one process only
    /// (SQLite), so there is nothing to share.
    async fn rate_counts_sync(
        &self,
        _deltas: &[RateCount],
        _keys: &[String],
        _since_minute: i64,
    ) -> CatalogResult<Option<Vec<RateCount>>> {
        Ok(None)
    }

    /// A round trip to the database, for the readiness probe.
    async fn ping(&self) -> CatalogResult<()>;

    async fn meta_get(&self, key: &str) -> CatalogResult<Option<String>>;
    async fn meta_set(&self, key: &str, value: &str) -> CatalogResult<()>;
}

/// Opens the catalog a URL names: `sqlite://PATH` (the embedded default) or `postgres://…`
/// (the scale-out backend). Runs the embedded migrations.
pub async fn open(database_url: &str) -> CatalogResult<Arc<dyn Catalog>> {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let catalog = SqliteCatalog::open(Path::new(path)).await?;
        return Ok(Arc::new(catalog));
    }
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresCatalog::open(database_url).await?));
    }
    Err(CatalogError::Config(format!(
        "unsupported database URL {:?}: expected sqlite://PATH or postgres://USER@HOST/DB",
        redact_url(database_url)
    )))
}

const GIB: u64 = 1 << 30;

/// The stored size in GB with two decimals. DigitalOcean's "GB" are binary (a 25 GB Droplet
/// disk holds 25 GiB), so GiB is what makes the figures comparable with Droplet sizes.
pub fn size_gigabytes(stored_bytes: u64) -> f64 {
    (stored_bytes as f64 / GIB as f64 * 100.0).round() / 100.0
}

/// The smallest whole number of GB (GiB, as above) that holds the virtual disk.
pub fn min_disk_size(virtual_size: u64) -> u64 {
    virtual_size.div_ceil(GIB)
}

/// A database URL fit for a log line: any password is replaced.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => raw.split('@').next_back().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::CatalogError;
    use sqlx::Connection;

    /// A real "database or disk is full": SQLite refuses to grow past `max_page_count`.
    const FILL: &str = "PRAGMA max_page_count = 8; CREATE TABLE t (b BLOB);";
    const GROW: &str = "INSERT INTO t VALUES (zeroblob(1000000))";

    #[tokio::test]
    async fn a_full_sqlite_database_is_out_of_space() {
        let mut db = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::raw_sql(FILL).execute(&mut db).await.unwrap();
        let err: CatalogError = sqlx::query(GROW).execute(&mut db).await.unwrap_err().into();
        assert!(matches!(err, CatalogError::OutOfSpace(_)), "{err:?}");

        let other: CatalogError = sqlx::query("SELECT * FROM missing")
            .execute(&mut db)
            .await
            .unwrap_err()
            .into();
        assert!(matches!(other, CatalogError::Database(_)), "{other:?}");
    }

    #[test]
    fn a_full_database_read_through_rusqlite_is_out_of_space() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(FILL).unwrap();
        let err: CatalogError = db.execute(GROW, []).unwrap_err().into();
        assert!(matches!(err, CatalogError::OutOfSpace(_)), "{err:?}");
        let other: CatalogError = db.execute("SELECT * FROM missing", []).unwrap_err().into();
        assert!(matches!(other, CatalogError::Read(_)), "{other:?}");
    }

    #[tokio::test]
    async fn postgres_disk_full_is_out_of_space() {
        let test = "tests::postgres_disk_full_is_out_of_space";
        let Some(url) = crate::testing::postgres_admin_url(test) else {
            return;
        };
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        // The server raises the very SQLSTATE a full disk makes it send.
        let raise = "DO $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$";
        let err: CatalogError = sqlx::raw_sql(raise)
            .execute(&mut db)
            .await
            .unwrap_err()
            .into();
        assert!(matches!(err, CatalogError::OutOfSpace(_)), "{err:?}");
        let other: CatalogError = sqlx::raw_sql("SELECT * FROM missing_table_x")
            .execute(&mut db)
            .await
            .unwrap_err()
            .into();
        assert!(matches!(other, CatalogError::Database(_)), "{other:?}");
    }
}
