//! The application layer: one method per operation (`image_list`, `image_get`, …). It knows
//! nothing of HTTP; it checks who may do what and speaks to the catalog and the jobs.

mod accounts;
pub mod error;
mod health;
mod images;
mod public_images;
pub mod rate_limit;
mod validate;

pub use accounts::{Caller, RequestId};
pub use error::{AppResult, Error};
pub use health::{Check, Readiness};
pub use images::{ImagePage, ListParams};
pub use public_images::{PublicImageChanges, PublicImageEntry, PublicImageNew};

use crate::jobs::{JobStorage, RunningImports, SweepReport};
use crate::metrics::{MeteredCatalog, Metrics};
use std::sync::Arc;
use std::time::Duration;
use tidepool_catalog::Catalog;
use tidepool_import::Blobs;

pub use crate::jobs::unix_now;

/// What the operations need, shared by every request.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    storage: JobStorage,
    tokens: accounts::TokenCache,
    readiness: health::ReadinessCache,
}

impl App {
    /// The application over `catalog` and `blobs`, both measured by the metrics it keeps.
    pub fn new(catalog: Arc<dyn Catalog>, blobs: Blobs) -> Self {
        let metrics = Metrics::new();
        let storage = JobStorage {
            catalog: MeteredCatalog::wrap(catalog, metrics.clone()),
            blobs: blobs.with_observer(metrics.clone()),
            running: Arc::new(RunningImports::default()),
            metrics,
        };
        let inner = Inner {
            storage,
            tokens: accounts::TokenCache::default(),
            readiness: health::ReadinessCache::default(),
        };
        App {
            inner: Arc::new(inner),
        }
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.inner.storage.catalog
    }

    pub fn blobs(&self) -> &Blobs {
        &self.inner.storage.blobs
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.storage.metrics
    }

    pub fn running_imports(&self) -> &RunningImports {
        &self.inner.storage.running
    }

    /// The storage the background jobs work on, the same this application uses.
    pub fn job_storage(&self) -> &JobStorage {
        &self.inner.storage
    }

    /// One pass of the orphan sweep: blobs no image points at, older than `grace`, go.
    pub async fn orphans_sweep(&self, grace: Duration) -> anyhow::Result<SweepReport> {
        crate::jobs::sweep_once(self.job_storage(), grace).await
    }
}
