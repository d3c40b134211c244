//! The blob store: one `object_store` backend (a local directory or S3), chosen once at start-up.
//!
//! Writes are streamed so an image is never held in memory, and an object becomes visible under
//! its key only when its write is completed: on S3 as a multipart upload; in a local directory
//! as a staging file written with direct I/O where the filesystem allows it, then fsync, rename
//! and a directory fsync (`local.rs`), since `object_store`'s local multipart upload would buffer
//! whole parts.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

use local::LocalUpload;

mod local;
mod staging;

/// Why a blob-store operation failed. Messages never contain credentials (S3 keys come from the
/// environment and are not part of the store URL).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(
        "unsupported blob store location {0:?}: use an absolute directory path, \
         file:///absolute/dir or s3://bucket[/prefix]"
    )]
    UnsupportedLocation(String),
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    #[error("blob store directory {}: {source}", path.display())]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob store: {0}")]
    Store(#[from] object_store::Error),
    #[error("blob store: writing {key}: {source}")]
    Write { key: String, source: std::io::Error },
}

impl BlobError {
    /// Whether the store has no room left: a full disk or an exhausted quota under the local
    /// directory, found anywhere in the error's chain of causes.
    pub fn is_out_of_space(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = cause {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) {
                    return true;
                }
            }
            cause = err.source();
        }
        false
    }

    /// What went wrong, in words for the user whose import it was: the cause, without the blob
    /// keys and paths the `Display` form names (those are for the log).
    pub fn cause(&self) -> String {
        if self.is_out_of_space() {
            return "the image store is out of space".into();
        }
        match self {
            // An operating-system error's message names no file.
            Self::Write { source, .. } => format!("the image store could not write it: {source}"),
            Self::Directory { source, .. } => {
                format!("the image store could not prepare it: {source}")
            }
            Self::Store(_) | Self::UnsupportedLocation(_) | Self::InvalidKey(_) => {
                "the image store failed".into()
            }
        }
    }
}

/// The operations a [`BlobObserver`] hears of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOp {
    Check,
    Head,
    Delete,
    /// Starting an upload.
    Create,
    /// One chunk of an upload, waiting included while the store is busy.
    Write,
    Commit,
    Abort,
}

impl BlobOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Head => "head",
            Self::Delete => "delete",
            Self::Create => "create",
            Self::Write => "write",
            Self::Commit => "commit",
            Self::Abort => "abort",
        }
    }
}

/// Told of every operation's duration and outcome, for whoever measures the store (the
/// server's metrics); the store itself keeps no figures.
pub trait BlobObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, op: BlobOp, elapsed: Duration, ok: bool);
}

/// The observer of a store and its writers, if any.
#[derive(Clone, Debug, Default)]
struct Observer(Option<Arc<dyn BlobObserver>>);

impl Observer {
    fn record<T>(&self, op: BlobOp, start: Instant, result: &Result<T, BlobError>) {
        if let Some(observer) = &self.0 {
            observer.observe(op, start.elapsed(), result.is_ok());
        }
    }
}

/// What `list` reports about one stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

/// The blob store. Cheap to clone; every clone shares one backend.
#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// The local directory store, for what `object_store` does not do there: streaming writes
    /// without multipart buffering (`local::LocalUpload`) and the staging sweep (it hides staging
    /// files from `list`).
    local: Option<Local>,
    description: String,
    observer: Observer,
}

#[derive(Clone, Debug)]
struct Local {
    root: PathBuf,
    fs: Arc<LocalFileSystem>,
}

/// The key of one import attempt's blob. `attempt` is unique per attempt (a UUID), so a retried
/// import never writes over, or is confused with, what a previous attempt left half-finished.
pub fn image_key(image_id: u64, attempt: &str) -> String {
    format!("images/{image_id}/{attempt}")
}

/// A fresh attempt id for [`image_key`]: a UUID, so attempts never collide.
pub fn new_attempt_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The part size for multipart uploads of at most `max_size` bytes. S3 allows 10,000 parts of at
/// least 5 MiB each, so the part size grows with the largest blob we may write; the memory it
/// costs is bounded by a few parts in flight, whatever the blob's size.
fn part_size(max_size: u64) -> usize {
    const MIB: u64 = 1 << 20;
    const MIN: u64 = 8 * MIB;
    // 9,000 rather than 10,000 leaves headroom for the size limit being checked after a write.
    let needed = max_size.div_ceil(9_000).div_ceil(MIB) * MIB;
    usize::try_from(needed.max(MIN)).unwrap_or(usize::MAX)
}

/// Parts uploaded at once; with `part_size` this bounds a writer's memory.
const PARTS_IN_FLIGHT: usize = 2;

impl Blobs {
    /// Opens the store named by `location`:
    /// - `file:///abs/dir` or a plain path: a local directory (created if missing);
    /// - `s3://bucket[/prefix]`: S3 configured from the `AWS_*` environment (endpoint, region,
    ///   keys, `AWS_ALLOW_HTTP`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, …).
    pub fn from_url(location: &str) -> Result<Self, BlobError> {
        if !location.contains("://") {
            return Self::local(location);
        }
        let unsupported = || BlobError::UnsupportedLocation(location.to_owned());
        let url = url::Url::parse(location).map_err(|_| unsupported())?;
        match url.scheme() {
            "file" => {
                let dir = url.to_file_path().map_err(|()| unsupported())?;
                Self::local(dir)
            }
            "s3" => {
                let bucket = url
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(unsupported)?;
                let prefix = url.path().trim_matches('/');
                Self::s3(bucket, prefix)
            }
            _ => Err(unsupported()),
        }
    }

    /// A store rooted at a local directory, which is created if missing.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self, BlobError> {
        let dir = dir.as_ref();
        let dir_error = |source| BlobError::Directory {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_error)?;
        let root = std::fs::canonicalize(dir).map_err(dir_error)?;
        // fsync makes a completed upload durable (file, then its directory) before `commit`
        // returns; cleanup removes the per-image directories that deletes leave empty.
        let fs = Arc::new(
            LocalFileSystem::new_with_prefix(&root)?
                .with_fsync(true)
                .with_automatic_cleanup(true),
        );
        Ok(Self {
            store: fs.clone(),
            description: format!("file://{}", root.display()),
            local: Some(Local { root, fs }),
            observer: Observer::default(),
        })
    }

    fn s3(bucket: &str, prefix: &str) -> Result<Self, BlobError> {
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()?;
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self {
            store,
            local: None,
            description: format!("s3://{bucket}/{prefix}"),
            observer: Observer::default(),
        })
    }

    /// Wraps any other backend (e.g. `object_store::memory::InMemory` in tests).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        let description = store.to_string();
        Self {
            store,
            local: None,
            description,
            observer: Observer::default(),
        }
    }

    /// The same store, with every operation reported to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn BlobObserver>) -> Self {
        self.observer = Observer(Some(observer));
        self
    }

    /// The underlying store, for reads this type does not wrap.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Starts a streaming upload to `key`. Nothing is visible under `key` until
    /// [`BlobWriter::commit`] succeeds; `max_size` (an upper bound of the blob's size) picks a part
    /// size that the backend can accept.
    pub async fn writer(&self, key: &str, max_size: u64) -> Result<BlobWriter, BlobError> {
        let start = Instant::now();
        let writer = self.open_writer(key, max_size).await;
        self.observer.record(BlobOp::Create, start, &writer);
        writer
    }

    async fn open_writer(&self, key: &str, max_size: u64) -> Result<BlobWriter, BlobError> {
        let path = parse_key(key)?;
        let upload = match &self.local {
            Some(local) => {
                let dest = local.fs.path_to_filesystem(&path)?;
                let upload = LocalUpload::create(dest.clone())
                    .await
                    .map_err(|source| BlobError::Directory { path: dest, source })?;
                Upload::Local(upload)
            }
            None => Upload::Multipart {
                parts: WriteMultipart::new_with_chunk_size(
                    self.store.put_multipart(&path).await?,
                    part_size(max_size),
                ),
                store: self.store.clone(),
                path,
            },
        };
        Ok(BlobWriter {
            inner: Some(upload),
            key: key.to_owned(),
            written: 0,
            observer: self.observer.clone(),
        })
    }

    /// Deletes `key`; deleting a missing key succeeds, so a sweep can race an import's cleanup.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let start = Instant::now();
        let deleted = match self.store.delete(&parse_key(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        };
        self.observer.record(BlobOp::Delete, start, &deleted);
        deleted
    }

    /// Asks the store for a listing, so that a missing bucket, wrong credentials or an
    /// unreachable endpoint are found at start-up rather than at the first import. (A HEAD would
    /// not do: without a body, S3's "no such bucket" looks like "no such key".) The local
    /// directory must exist: the next write would recreate a missing one, but everything stored
    /// would be gone with it.
    pub async fn check(&self) -> Result<(), BlobError> {
        let start = Instant::now();
        let checked = self.check_reachable().await;
        self.observer.record(BlobOp::Check, start, &checked);
        checked
    }

    async fn check_reachable(&self) -> Result<(), BlobError> {
        if let Some(local) = &self.local {
            let dir_error = |source| BlobError::Directory {
                path: local.root.clone(),
                source,
            };
            let meta = tokio::fs::metadata(&local.root).await.map_err(dir_error)?;
            if !meta.is_dir() {
                return Err(dir_error(std::io::Error::from(
                    std::io::ErrorKind::NotADirectory,
                )));
            }
            return Ok(());
        }
        self.store.list_with_delimiter(None).await?;
        Ok(())
    }

    /// The size of `key`, or `None` if it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let start = Instant::now();
        let found = match self.store.head(&parse_key(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        };
        self.observer.record(BlobOp::Head, start, &found);
        found
    }

    /// Every committed blob whose key starts with the path prefix `prefix` (whole segments:
    /// `images/1` matches `images/1/x`, not `images/10/x`); `""` lists everything. In-progress
    /// uploads are not listed: see [`Blobs::sweep_staging`].
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<BlobMeta, BlobError>> {
        let prefix = match parse_prefix(prefix) {
            Ok(p) => p,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        self.store
            .list(prefix.as_ref())
            .map(|item| {
                let meta = item?;
                Ok(BlobMeta {
                    key: meta.location.to_string(),
                    size: meta.size,
                    last_modified: meta.last_modified.into(),
                })
            })
            .boxed()
    }

    /// Removes upload staging files older than `older_than` that a crashed process left behind,
    /// returning how many were removed. Only the local directory needs this: S3 keeps unfinished
    /// multipart uploads out of sight, and a bucket lifecycle rule
    /// (`AbortIncompleteMultipartUpload`) is the way to expire them there.
    pub async fn sweep_staging(&self, older_than: Duration) -> Result<usize, BlobError> {
        let Some(root) = self.local.as_ref().map(|l| l.root.clone()) else {
            return Ok(0);
        };
        tokio::task::spawn_blocking(move || staging::sweep(&root, older_than))
            .await
            .map_err(|e| BlobError::Directory {
                path: PathBuf::new(),
                source: std::io::Error::other(e),
            })?
    }
}

impl std::fmt::Display for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

fn parse_key(key: &str) -> Result<Path, BlobError> {
    // `Path::parse` rejects `..`, empty segments and the like, which keeps keys inside the store.
    let path = Path::parse(key).map_err(|_| BlobError::InvalidKey(key.to_owned()))?;
    if key.is_empty() || path.as_ref() != key {
        return Err(BlobError::InvalidKey(key.to_owned()));
    }
    Ok(path)
}

fn parse_prefix(prefix: &str) -> Result<Option<Path>, BlobError> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    parse_key(trimmed).map(Some)
}

/// A streaming upload. Dropping it without [`commit`](Self::commit) or [`abort`](Self::abort)
/// aborts it (in the background for S3), so an error path that forgets cleanup still leaves
/// nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    inner: Option<Upload>,
    key: String,
    written: u64,
    observer: Observer,
}

#[derive(Debug)]
enum Upload {
    /// The local directory: chunks go straight to the file (see `local`).
    Local(LocalUpload),
    /// Other stores: parts of `part_size`, a few in flight.
    Multipart {
        parts: WriteMultipart,
        store: Arc<dyn ObjectStore>,
        path: Path,
    },
}

impl BlobWriter {
    /// Appends `chunk`, waiting while the store is busy so memory stays bounded.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let start = Instant::now();
        let written = self.write_chunk(chunk).await;
        self.observer.record(BlobOp::Write, start, &written);
        written
    }

    async fn write_chunk(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let len = chunk.len() as u64;
        match self.inner.as_mut().expect("writer used after commit/abort") {
            Upload::Local(upload) => upload.write(chunk).await.map_err(|e| self.local_error(e))?,
            Upload::Multipart { parts, .. } => {
                parts.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                // Copied into the part being filled, not kept: a chunk carries its share of the
                // pipeline's download budget until it is dropped, and a part is larger than that
                // budget, so keeping chunks here would stall the download for good.
                parts.write(&chunk);
            }
        }
        self.written += len;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Completes the upload: only now does the blob appear under its key (durably, for the local
    /// directory). On failure the upload is aborted.
    pub async fn commit(mut self) -> Result<u64, BlobError> {
        let start = Instant::now();
        let committed = self.finish().await;
        self.observer.record(BlobOp::Commit, start, &committed);
        committed
    }

    async fn finish(&mut self) -> Result<u64, BlobError> {
        match self.inner.take().expect("writer used after commit/abort") {
            Upload::Local(upload) => upload.commit().await.map_err(|e| self.local_error(e))?,
            Upload::Multipart { parts, store, path } => {
                if self.written == 0 {
                    // S3 servers (Garage among them) refuse a multipart upload whose only part
                    // is empty; an empty blob is a plain PUT.
                    parts.abort().await?;
                    store
                        .put(&path, object_store::PutPayload::default())
                        .await?;
                    return Ok(0);
                }
                parts.finish().await?;
            }
        }
        Ok(self.written)
    }

    /// Discards the upload and everything written so far.
    pub async fn abort(mut self) -> Result<(), BlobError> {
        let start = Instant::now();
        let aborted = match self.inner.take().expect("writer used after commit/abort") {
            Upload::Local(upload) => upload.abort().await.map_err(|e| self.local_error(e)),
            Upload::Multipart { parts, .. } => parts.abort().await.map_err(BlobError::from),
        };
        self.observer.record(BlobOp::Abort, start, &aborted);
        aborted
    }

    fn local_error(&self, source: std::io::Error) -> BlobError {
        BlobError::Write {
            key: self.key.clone(),
            source,
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        let Some(Upload::Multipart { parts, .. }) = self.inner.take() else {
            // A local upload removes its staging file when dropped.
            return;
        };
        tracing::debug!(key = %self.key, "aborting an upload dropped without commit");
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = parts.abort().await {
                        tracing::warn!(error = %e, "could not abort a dropped upload");
                    }
                });
            }
            // Without a runtime the backend's own drop is the best we can do (S3 leaves it to
            // the lifecycle rule).
            Err(_) => drop(parts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_fits_s3_part_count() {
        assert_eq!(part_size(0), 8 << 20);
        let hundred_gib = 100u64 << 30;
        let size = part_size(hundred_gib) as u64;
        assert!(hundred_gib.div_ceil(size) < 10_000);
        assert!(size >= 5 << 20);
    }

    #[test]
    fn keys_are_validated() {
        assert!(parse_key("images/1/abc").is_ok());
        for bad in ["", "/images/1", "images//1", "images/../x", "images/1/"] {
            assert!(parse_key(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(image_key(7, "abc"), "images/7/abc");
    }

    #[test]
    fn a_full_store_is_named_as_the_cause_without_the_key() {
        let key = "images/20/0123abcd";
        let full = BlobError::Write {
            key: key.into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert!(full.is_out_of_space());
        assert_eq!(full.cause(), "the image store is out of space");
        assert!(full.to_string().contains(key), "the log keeps the key");
        let wrapped = BlobError::Store(object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::QuotaExceeded)),
        });
        assert!(wrapped.is_out_of_space());

        let denied = BlobError::Directory {
            path: "/srv/tidepool/blobs/images/20/0123abcd#1".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(!denied.is_out_of_space());
        assert!(!denied.cause().contains("images/"), "{}", denied.cause());
    }

    #[test]
    fn unknown_schemes_are_explained() {
        let err = Blobs::from_url("gs://bucket/x").unwrap_err().to_string();
        assert!(err.contains("s3://bucket"), "{err}");
        assert!(err.contains("file:///"), "{err}");
    }
}
