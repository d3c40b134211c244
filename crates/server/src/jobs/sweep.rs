//! The orphan sweep: removes blobs that no image points at (left by a crash between storing and
//! recording, or by a delete that could not reach the store) and stale upload staging files.

use super::JobStorage;
use futures::StreamExt;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub blobs_removed: usize,
    pub staging_removed: usize,
}

/// One pass. Blobs younger than `grace` are left alone: their import may be about to record them.
pub async fn sweep_once(storage: &JobStorage, grace: Duration) -> anyhow::Result<SweepReport> {
    let mut report = SweepReport {
        staging_removed: storage.blobs.sweep_staging(grace).await?,
        ..Default::default()
    };
    let cutoff = SystemTime::now() - grace;
    let mut listing = storage.blobs.list("images");
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        if meta.last_modified > cutoff {
            continue;
        }
        let image_id = meta
            .key
            .split('/')
            .nth(1)
            .and_then(|id| id.parse::<i64>().ok());
        let wanted = match image_id {
            Some(id) => storage
                .catalog
                .image_get(id)
                .await?
                .is_some_and(|image| image.blob_key.as_deref() == Some(meta.key.as_str())),
            None => false,
        };
        if !wanted {
            storage.blobs.delete(&meta.key).await?;
            report.blobs_removed += 1;
            tracing::info!(key = %meta.key, "removed an orphaned blob");
        }
    }
    Ok(report)
}

/// Sweeps every `every` until `shutdown`.
pub async fn run_sweeper(
    storage: JobStorage,
    every: Duration,
    grace: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        match sweep_once(&storage, grace).await {
            Ok(r) if r != SweepReport::default() => tracing::info!(?r, "orphan sweep done"),
            Ok(_) => {}
            Err(err) => tracing::warn!("orphan sweep failed: {err:#}"),
        }
    }
}
