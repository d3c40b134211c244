//! Import jobs on the server's side: workers that claim jobs from the catalog and run the
//! importer, the registry of imports running in this process, and the orphan sweep. They work
//! on the storage layers (`JobStorage`) and know nothing of the application above them.

mod registry;
mod sweep;
mod worker;

pub use registry::RunningImports;
pub use sweep::{run_sweeper, sweep_once, SweepReport};
pub use worker::{Worker, WorkerConfig};

use crate::metrics::Metrics;
use std::sync::Arc;
use tidepool_catalog::Catalog;
use tidepool_import::Blobs;

/// What jobs work on: the catalog, the blob store, and this process's running imports (which
/// the application also reads, for progress and to cancel an import when its image goes).
#[derive(Clone)]
pub struct JobStorage {
    pub catalog: Arc<dyn Catalog>,
    pub blobs: Blobs,
    pub running: Arc<RunningImports>,
    pub metrics: Arc<Metrics>,
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
