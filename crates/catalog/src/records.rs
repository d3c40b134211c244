//! What the catalog stores and answers, independent of any database.

use tidepool_api::{Distribution, ImageStatus, ImageType, ListType, Region, Scopes};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_id: i64,
    pub account: AccountId,
    /// The account's name, for request logs (which never carry the token).
    pub account_name: String,
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
    pub format: Option<String>,
    pub virtual_size: Option<u64>,
    pub stored_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub blob_key: Option<String>,
}

/// An import to queue with a new image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub url: String,
    pub region: Region,
    /// The request that created the image, so that the import's log lines, on whichever replica
    /// runs it, can be found from the create's.
    pub request_id: Option<String>,
}

/// A claimed import job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJob {
    pub image_id: i64,
    pub url: String,
    pub region: Region,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// The request that created the image.
    pub request_id: Option<String>,
    /// The worker whose lease had run out when this claim took the job over (it crashed or
    /// lost the catalog); `None` for a job that was queued or given back.
    pub taken_over_from: Option<String>,
}

/// How many import jobs wait and run, across every replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobQueueStats {
    /// Not held by any worker (new, or waiting out a retry's backoff).
    pub queued: u64,
    /// Held by a worker whose lease has not run out.
    pub running: u64,
}

/// What an import produced, recorded on the image by `job_complete`.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Available {
        region: Region,
        format: String,
        virtual_size: u64,
        stored_bytes: u64,
        sha256: String,
        blob_key: String,
    },
    Failed {
        message: String,
    },
}

/// What the catalog knows of an import in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobProgress {
    pub bytes_read: u64,
    pub bytes_total: Option<u64>,
}

/// An image to insert. `job` queues its import in the same transaction.
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
    pub job: Option<NewJob>,
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

/// Rate-limit requests of one key in one minute: what a replica adds to the counts that
/// replicas share, or reads back from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCount {
    pub key: String,
    pub minute: i64,
    pub count: i64,
}
