//! The application layer: one method per operation (`image_list`, `image_view`, …). It knows
//! nothing of HTTP; it checks who may do what and speaks to the catalog.

mod accounts;
pub mod error;
mod images;
mod validate;

pub use accounts::Caller;
pub use error::{AppResult, Error};
pub use images::{ImagePage, ImageRef, ListParams};

use crate::catalog::Catalog;
use crate::import::RunningImports;
use std::sync::Arc;
use tidepool_import::Blobs;

/// What the operations need, shared by every request.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Arc<dyn Catalog>,
    blobs: Blobs,
    tokens: accounts::TokenCache,
    running: RunningImports,
}

impl App {
    pub fn new(catalog: Arc<dyn Catalog>, blobs: Blobs) -> Self {
        let inner = Inner {
            catalog,
            blobs,
            tokens: accounts::TokenCache::default(),
            running: RunningImports::default(),
        };
        App {
            inner: Arc::new(inner),
        }
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.inner.catalog
    }

    pub fn blobs(&self) -> &Blobs {
        &self.inner.blobs
    }

    pub fn running_imports(&self) -> &RunningImports {
        &self.inner.running
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
