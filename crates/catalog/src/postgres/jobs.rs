//! PostgreSQL's import queue: claims with `FOR UPDATE SKIP LOCKED`, so that replicas claiming at
//! once never wait on each other, and `LISTEN/NOTIFY`, so that an idle worker of any replica
//! wakes when a job is queued or released.

use super::super::row::parse;
use super::super::shared::Shared;
use super::super::{CatalogResult, ImportJob};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::Row;
use std::time::Duration;
use tidepool_api::Region;
use tokio::sync::Notify;

/// The channel on which a queued or released job is announced to every replica.
const JOBS_CHANNEL: &str = "tidepool_jobs";

/// Announces, in the writing transaction, that a job may be claimable; PostgreSQL delivers it
/// on commit.
pub(super) async fn announce(executor: impl sqlx::PgExecutor<'_>) -> CatalogResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(JOBS_CHANNEL)
        .execute(executor)
        .await?;
    Ok(())
}

pub(super) async fn claim(
    pool: &PgPool,
    worker: &str,
    lease_secs: i64,
    now: i64,
) -> CatalogResult<Option<ImportJob>> {
    let mut tx = pool.begin().await?;
    // SKIP LOCKED: replicas claiming at once each get a different job, without waiting.
    let row = sqlx::query(
        "UPDATE import_jobs j SET lease_owner = $1, lease_expires_at = $2, attempts = j.attempts + 1, \
             taken_over_from = j.lease_owner \
         FROM (SELECT image_id FROM import_jobs \
               WHERE lease_expires_at IS NULL OR lease_expires_at <= $3 \
               ORDER BY image_id LIMIT 1 FOR UPDATE SKIP LOCKED) next \
         WHERE j.image_id = next.image_id \
         RETURNING j.image_id, j.url, j.region, j.attempts, j.request_id, j.taken_over_from",
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
        request_id: row.try_get("request_id")?,
        taken_over_from: row.try_get("taken_over_from")?,
    };
    sqlx::query("UPDATE images SET status = 'pending' WHERE id = $1")
        .bind(job.image_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(job))
}

/// Gives the job back and announces it in the same transaction, so that no replica hears of a
/// job it cannot claim yet.
pub(super) async fn release(
    pool: &PgPool,
    image_id: i64,
    worker: &str,
    not_before: i64,
    last_error: &str,
) -> CatalogResult<bool> {
    let mut tx = pool.begin().await?;
    let released = Shared::job_release(&mut *tx, image_id, worker, not_before, last_error).await?;
    if released {
        announce(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(released)
}

pub(super) async fn listen(pool: &PgPool, queued: &Notify) -> CatalogResult<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(JOBS_CHANNEL).await?;
    loop {
        match listener.recv().await {
            Ok(_) => queued.notify_one(),
            Err(err) => {
                // PgListener reconnects by itself on the next recv; workers poll meanwhile.
                tracing::warn!("job notifications interrupted: {err}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
