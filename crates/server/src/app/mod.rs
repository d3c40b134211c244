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
use std::sync::Arc;

/// What the operations need, shared by every request.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Arc<dyn Catalog>,
    tokens: accounts::TokenCache,
}

impl App {
    pub fn new(catalog: Arc<dyn Catalog>) -> Self {
        App {
            inner: Arc::new(Inner {
                catalog,
                tokens: accounts::TokenCache::default(),
            }),
        }
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.inner.catalog
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
