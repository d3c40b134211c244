//! Importing an image from a URL into the blob store: a safe HTTP fetch, transparent
//! decompression, format inspection and SHA-256, all streamed with bounded memory.
//!
//! The server's worker calls [`import_image`] for a claimed job and records the outcome; the
//! server also uses [`Blobs`] for everything else it stores and for the orphan sweep.

pub mod blobs;
pub mod decompress;
pub mod fetch;
mod pipeline;
mod size;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use blobs::{
    image_key, new_attempt_id, BlobError, BlobMeta, BlobObserver, BlobOp, BlobWriter, Blobs,
};
pub use decompress::Compression;
pub use pipeline::import_image;
pub use tidepool_formats::DiskFormat;

/// DigitalOcean's limit for custom images, 100 GB (decimal: 100·10⁹ bytes, the way disk sizes
/// are quoted to users), and the default `ImportLimits::max_bytes`.
pub const DEFAULT_MAX_BYTES: u64 = 100_000_000_000;
/// The default `ImportLimits::stall_timeout`, in seconds.
pub const DEFAULT_STALL_TIMEOUT_SECS: u64 = 60;

/// The bounds of one import.
#[derive(Debug, Clone)]
pub struct ImportLimits {
    /// The largest image accepted, in bytes: both the decompressed size (checked while
    /// streaming) and the virtual disk size the format declares (checked by the inspector).
    /// [`DEFAULT_MAX_BYTES`] by default.
    pub max_bytes: u64,
    /// Lifts the address filter, for tests and air-gapped sites that serve images from their own
    /// network. Schemes and redirect limits still apply.
    pub allow_private_networks: bool,
    /// Per request attempt: connecting and receiving the response headers.
    pub timeout: Duration,
    /// How long the image URL may send nothing mid-body before the import fails.
    pub stall_timeout: Duration,
    /// Extra attempts for connection failures, timeouts and 5xx answers.
    pub retries: u32,
    /// The first retry's delay; later ones double, with jitter.
    pub retry_base_delay: Duration,
    /// Accepts raw images without an MBR or GPT partition table (a root file system for VMs
    /// booted with a kernel of their own). Off by default: DigitalOcean requires the table.
    pub allow_bare_raw: bool,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            allow_private_networks: false,
            timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(DEFAULT_STALL_TIMEOUT_SECS),
            retries: 3,
            retry_base_delay: Duration::from_secs(1),
            allow_bare_raw: false,
        }
    }
}

impl ImportLimits {
    fn fetch_options(&self) -> fetch::FetchOptions {
        fetch::FetchOptions {
            allow_private_networks: self.allow_private_networks,
            timeout: self.timeout,
            stall_timeout: self.stall_timeout,
            retries: self.retries,
            retry_base_delay: self.retry_base_delay,
        }
    }
}

/// How far a running import is, shared with the server's progress endpoint.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes received from the socket (compressed, when the image is).
    pub bytes_read: AtomicU64,
    /// The body's announced length; 0 when the server did not say.
    pub bytes_total: AtomicU64,
}

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// `None` while the total is unknown.
    pub fn bytes_total(&self) -> Option<u64> {
        Some(self.bytes_total.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }
}

/// What a successful import stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub format: DiskFormat,
    pub virtual_size: u64,
    /// The stored (decompressed) blob's size.
    pub stored_bytes: u64,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub sha256: String,
    pub compression: Compression,
    pub blob_key: String,
}

/// Why an import failed. Either way nothing is left under the blob key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Trying again cannot help: the URL is refused, answered 4xx, or the image is bad, too big or
    /// truncated. The message is for the user, as is.
    #[error("{0}")]
    Abort(Failure),
    /// Might work later: the network failed after the retries, the body broke off, the blob
    /// store failed, or the import was cancelled. The message is for the user too, should the
    /// server give up.
    #[error("{0}")]
    Retry(Failure),
}

/// What went wrong: a message for the user and its kind, for the operator's metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

/// The kinds of import failure an operator tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The image URL: refused, unreachable, an error status, a stall, a broken-off body.
    Fetch,
    /// The bytes are not an image tidepool stores: an unknown or unsafe format, corrupt or
    /// truncated data.
    Refused,
    /// Larger than the limit, decompressed or as the format declares.
    TooLarge,
    /// Longer than the import timeout.
    Timeout,
    /// Stopped by a shutdown or by the image's deletion: no fault of the image's.
    Cancelled,
    /// The blob store or tidepool itself.
    Internal,
}

impl ImportError {
    pub fn abort(kind: FailureKind, message: impl Into<String>) -> Self {
        Self::Abort(Failure {
            kind,
            message: message.into(),
        })
    }

    pub fn retry(kind: FailureKind, message: impl Into<String>) -> Self {
        Self::Retry(Failure {
            kind,
            message: message.into(),
        })
    }

    pub fn message(&self) -> &str {
        &self.failure().message
    }

    pub fn kind(&self) -> FailureKind {
        self.failure().kind
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry(_))
    }

    fn failure(&self) -> &Failure {
        match self {
            Self::Abort(f) | Self::Retry(f) => f,
        }
    }
}
