//! The server's side of imports: workers that claim jobs from the catalog and run the
//! importer, the registry of imports running in this process, and the orphan sweep.

mod registry;
mod sweep;
mod worker;

pub use registry::RunningImports;
pub use sweep::{spawn_sweeper, sweep_once, SweepReport};
pub use worker::{spawn_workers, WorkerConfig};
