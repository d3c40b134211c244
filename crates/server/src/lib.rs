//! The tidepool server: DigitalOcean's Images API (`/v2/images`) over a catalog (SQLite or
//! PostgreSQL, `tidepool-catalog`) and a blob store (`tidepool-import`).
//!
//! Dependencies run one way: `http` → `app` → (`jobs`, the catalog) → storage. `metrics` sits
//! beside the storage layers (it times them and counts jobs) and knows nothing above them.
//! `server` and `background` sit above them all and wire them together at start-up.

pub mod app;
pub mod auth;
pub mod background;
pub mod config;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;
