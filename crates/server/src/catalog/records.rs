//! What the catalog stores and answers, independent of any database.

use crate::auth::Scopes;
use tidepool_api::{Distribution, ImageStatus, ImageType, ListType, Region};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_id: i64,
    pub account: AccountId,
    pub scopes: Scopes,
}

/// An image as the catalog holds it: the API's fields plus ownership and import facts.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub id: i64,
    /// None for public images, which belong to the operator.
    pub owner: Option<AccountId>,
    pub name: String,
    pub distribution: Distribution,
    pub slug: Option<String>,
    pub public: bool,
    pub listing: Option<ListType>,
    pub regions: Vec<Region>,
    /// Unix seconds.
    pub created_at: i64,
    pub kind: ImageType,
    pub min_disk_size: Option<u64>,
    pub size_gigabytes: Option<f64>,
    pub description: String,
    pub tags: Vec<String>,
    pub status: ImageStatus,
    pub error_message: String,
    pub source_url: Option<String>,
    pub sha256: Option<String>,
    pub blob_key: Option<String>,
}

/// An image to insert. `job_url` queues an import of that URL in the same transaction.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub owner: Option<AccountId>,
    pub name: String,
    pub distribution: Distribution,
    pub slug: Option<String>,
    pub public: bool,
    pub listing: Option<ListType>,
    pub regions: Vec<Region>,
    pub created_at: i64,
    pub kind: ImageType,
    pub min_disk_size: Option<u64>,
    pub size_gigabytes: Option<f64>,
    pub description: String,
    pub tags: Vec<String>,
    pub status: ImageStatus,
    pub job_url: Option<String>,
}

/// Which images a list shows. Images with status `deleted` or `retired` are never listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFilter {
    /// The caller: sees its own images and every public one.
    pub viewer: AccountId,
    /// Only the viewer's own images.
    pub private_only: bool,
    /// Only public images of this listing.
    pub listing: Option<ListType>,
    pub tag: Option<String>,
    pub offset: u64,
    pub limit: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageChanges {
    pub name: Option<String>,
    pub distribution: Option<Distribution>,
    pub description: Option<String>,
    pub status: Option<ImageStatus>,
    pub regions: Option<Vec<Region>>,
    pub slug: Option<Option<String>>,
    pub listing: Option<Option<ListType>>,
    pub min_disk_size: Option<Option<u64>>,
    pub size_gigabytes: Option<Option<f64>>,
}
