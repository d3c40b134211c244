//! The import pipeline:
//!
//! ```text
//! socket ─(async)─▶ [raw chunks] ─▶ decompress → size limit → inspect ─▶ [chunks] ─(async)─▶ blob upload
//!                                        (blocking thread)          └──▶ [chunks] ─▶ SHA-256 (blocking thread)
//! ```
//!
//! Memory does not grow with the image: the downloaded bytes held anywhere in the pipeline are
//! bounded in bytes ([`DOWNLOAD_BUDGET`]), decoded chunks (≤ 1 MiB, in reused buffers) in number
//! ([`OUT_CHUNKS`] per channel), and the blob store takes a chunk only when it has room. An
//! uncompressed download's chunks go through as they are, without a copy. Decompression and
//! hashing run on two threads so both cores are busy. The upload is committed only after every
//! stage, including the inspector's verdict on the whole image, succeeded; on any failure it is
//! aborted, so nothing is left under the key.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tidepool_formats::{Inspection, Inspector, Refusal};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::decompress::{self, ChannelReader, Compression, DecompressError};
use crate::fetch::{redact, Download, FetchError, Fetcher};
use crate::{
    size, BlobError, BlobWriter, Blobs, FailureKind, ImportError, ImportLimits, ImportOutcome,
    Progress,
};

/// Decompressed chunk size: large enough that per-chunk costs vanish, small enough to bound memory.
const CHUNK: usize = 1 << 20;
/// Downloaded chunks smaller than this are gathered into one before they are passed on.
const SMALL_CHUNK: usize = 256 << 10;
const _: () = assert!(2 * SMALL_CHUNK <= CHUNK);
/// Downloaded bytes held anywhere in the pipeline at once (queued, being decompressed, hashed or
/// written, whatever the size of the chunks the connection delivers): the download waits for
/// room.
const DOWNLOAD_BUDGET: usize = 2 << 20;
/// Chunks queued on each channel: downloaded ones (bounded in bytes by the budget above), then
/// the chunks of the image (at most [`CHUNK`] bytes each) to the uploader and the hasher.
const RAW_CHUNKS: usize = 64;
const OUT_CHUNKS: usize = 4;

/// Why the decompress-and-inspect stage stopped.
#[derive(Debug, thiserror::Error)]
enum CpuError {
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    #[error("decompressed size exceeds {}", size::in_words(*.0))]
    TooLarge(u64),
    #[error("{0}")]
    Refused(Refusal),
    #[error("internal error while inspecting the image")]
    Panicked,
    /// The uploader stopped taking chunks; its own error says why.
    #[error("the upload stopped")]
    OutputGone,
}

impl CpuError {
    fn kind(&self) -> FailureKind {
        match self {
            Self::Decompress(DecompressError::InputGone) => FailureKind::Fetch,
            // The file as served is cut short or corrupt: it is the image that is refused.
            Self::Refused(refusal) if refusal.is_too_large() => FailureKind::TooLarge,
            Self::Decompress(_) | Self::Refused(_) => FailureKind::Refused,
            Self::TooLarge(_) => FailureKind::TooLarge,
            Self::Panicked | Self::OutputGone => FailureKind::Internal,
        }
    }
}

struct CpuOutput {
    compression: Compression,
    inspection: Inspection,
    bytes: u64,
}

/// Downloads `url`, decompresses and inspects it, and stores it under `blob_key`.
///
/// On success the blob is committed; on any error (including cancellation, reported as
/// [`ImportError::Retry`]) the upload is aborted and nothing remains under `blob_key`.
pub async fn import_image(
    url: &str,
    blob_key: &str,
    blobs: &Blobs,
    limits: &ImportLimits,
    progress: &Progress,
    cancel: CancellationToken,
) -> Result<ImportOutcome, ImportError> {
    let shown_url = url::Url::parse(url).map(|u| redact(&u)).unwrap_or_default();
    tracing::info!(url = %shown_url, key = %blob_key, "importing an image");
    let result = run(url, blob_key, blobs, limits, progress, &cancel).await;
    match &result {
        Ok(o) => tracing::info!(
            url = %shown_url, key = %blob_key, format = %o.format, virtual_size = o.virtual_size,
            stored_bytes = o.stored_bytes, compression = %o.compression, "image imported"
        ),
        Err(e) => {
            tracing::warn!(url = %shown_url, key = %blob_key, error = %e, "image import failed")
        }
    }
    result
}

async fn run(
    url: &str,
    blob_key: &str,
    blobs: &Blobs,
    limits: &ImportLimits,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<ImportOutcome, ImportError> {
    let fetcher = Fetcher::new(limits.fetch_options()).map_err(fetch_error)?;
    let mut download = fetcher.open(url, cancel).await.map_err(fetch_error)?;
    progress
        .bytes_total
        .store(download.content_length().unwrap_or(0), Ordering::Relaxed);
    let mut writer = blobs
        .writer(blob_key, limits.max_bytes)
        .await
        .map_err(store_error)?;

    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(RAW_CHUNKS);
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(OUT_CHUNKS);
    let (hash_tx, hash_rx) = std::sync::mpsc::sync_channel::<Bytes>(OUT_CHUNKS);

    let hasher = tokio::task::spawn_blocking(move || {
        let mut sha = Sha256::new();
        for chunk in hash_rx {
            sha.update(&chunk);
        }
        hex(&sha.finalize())
    });
    let max_bytes = limits.max_bytes;
    let inspector = Inspector::new(max_bytes).require_partition_table(!limits.allow_bare_raw);
    let cpu = tokio::task::spawn_blocking(move || {
        decompress_and_inspect(raw_rx, out_tx, hash_tx, max_bytes, inspector)
    });

    let (downloaded, uploaded) = tokio::join!(
        pump_download(&mut download, raw_tx, progress, cancel),
        pump_upload(&mut writer, out_rx, cancel),
    );
    // Both ends are closed now, so the threads finish promptly.
    // A panic there means a bug met this image: retrying would only meet it again.
    let processed = cpu.await.unwrap_or(Err(CpuError::Panicked));
    let sha256 = hasher.await;
    drop(download);

    let failure = if cancel.is_cancelled() {
        Some(ImportError::retry(
            FailureKind::Cancelled,
            FetchError::Cancelled.to_string(),
        ))
    } else if let Err(e) = downloaded {
        // First: a broken download also shows up downstream, as a truncated stream.
        Some(fetch_error(e))
    } else if let Err(e) = &processed {
        match e {
            CpuError::OutputGone => None,
            _ => Some(ImportError::abort(e.kind(), e.to_string())),
        }
    } else {
        None
    };
    let failure = failure
        .or_else(|| uploaded.err().map(store_error))
        .or_else(|| {
            let internal = |what: &str| {
                ImportError::retry(FailureKind::Internal, format!("internal error: {what}"))
            };
            match (&processed, &sha256) {
                (Err(e), _) => Some(internal(&e.to_string())),
                (_, Err(_)) => Some(internal("the hash thread failed")),
                _ => None,
            }
        });
    if let Some(err) = failure {
        if let Err(e) = writer.abort().await {
            tracing::warn!(key = %blob_key, error = %e, "could not abort the upload");
        }
        return Err(err);
    }
    let (Ok(out), Ok(sha256)) = (processed, sha256) else {
        unreachable!("failures were handled above");
    };
    let stored_bytes = writer.commit().await.map_err(store_error)?;
    debug_assert_eq!(stored_bytes, out.bytes);
    Ok(ImportOutcome {
        format: out.inspection.format,
        virtual_size: out.inspection.virtual_size,
        stored_bytes,
        sha256,
        compression: out.compression,
        blob_key: blob_key.to_owned(),
    })
}

/// Moves the body into the raw channel until it ends, fails, is cancelled, or the consumer stops
/// (in which case the consumer's error is the one to report).
async fn pump_download(
    download: &mut Download,
    raw_tx: mpsc::Sender<Bytes>,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(), FetchError> {
    let budget = Arc::new(Semaphore::new(DOWNLOAD_BUDGET));
    let pump = async {
        while let Some(chunk) = download.next_chunk().await? {
            progress
                .bytes_read
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            // The permit goes back when the last stage drops the chunk.
            let share = chunk.len().clamp(1, DOWNLOAD_BUDGET) as u32;
            let Ok(permit) = budget.clone().acquire_many_owned(share).await else {
                break;
            };
            let chunk = Bytes::from_owner(Budgeted {
                chunk,
                _permit: permit,
            });
            if raw_tx.send(chunk).await.is_err() {
                break;
            }
        }
        Ok(())
    };
    tokio::select! {
        r = pump => r,
        () = cancel.cancelled() => Err(FetchError::Cancelled),
        // Without this a refusal would wait for the next chunk, or the stall timeout, to be seen.
        () = raw_tx.closed() => Ok(()),
    }
}

/// A downloaded chunk and its share of the [`DOWNLOAD_BUDGET`].
struct Budgeted {
    chunk: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Budgeted {
    fn as_ref(&self) -> &[u8] {
        &self.chunk
    }
}

async fn pump_upload(
    writer: &mut BlobWriter,
    mut out_rx: mpsc::Receiver<Bytes>,
    cancel: &CancellationToken,
) -> Result<(), BlobError> {
    let pump = async {
        while let Some(chunk) = out_rx.recv().await {
            writer.write(chunk).await?;
        }
        Ok(())
    };
    tokio::select! {
        r = pump => r,
        // The caller sees the cancellation itself and aborts the upload.
        () = cancel.cancelled() => Ok(()),
    }
}

/// The blocking stage: decompress, enforce the size limit, inspect, and fan out to the hasher and
/// the uploader.
fn decompress_and_inspect(
    raw_rx: mpsc::Receiver<Bytes>,
    out_tx: mpsc::Sender<Bytes>,
    hash_tx: std::sync::mpsc::SyncSender<Bytes>,
    max_bytes: u64,
    inspector: Inspector,
) -> Result<CpuOutput, CpuError> {
    let mut input = ChannelReader::new(raw_rx);
    let compression = input.detect();
    let pool = BufferPool::default();
    let mut stage = Stage {
        inspector,
        total: 0,
        max_bytes,
        out_tx,
        hash_tx,
    };
    if compression == Compression::None {
        // The downloaded chunks go on as they are; only small ones are gathered, so that each
        // chunk passed on carries enough bytes to make its trip through the channels worth it.
        let mut small: Option<(Vec<u8>, usize)> = None;
        while let Some(chunk) = input.next_chunk() {
            if chunk.len() >= SMALL_CHUNK {
                if let Some((buf, len)) = small.take() {
                    stage.pass(pool.share(buf, len))?;
                }
                stage.pass(chunk)?;
                continue;
            }
            // Fits: what is gathered stays under SMALL_CHUNK, and 2 × SMALL_CHUNK <= CHUNK.
            let (buf, len) = small.get_or_insert_with(|| (pool.take(), 0));
            buf[*len..*len + chunk.len()].copy_from_slice(&chunk);
            *len += chunk.len();
            if *len >= SMALL_CHUNK {
                let (buf, len) = small.take().expect("gathering");
                stage.pass(pool.share(buf, len))?;
            }
        }
        if let Some((buf, len)) = small.take() {
            stage.pass(pool.share(buf, len))?;
        }
    } else {
        let mut reader = decompress::decoder_for(compression, input);
        loop {
            let mut buf = pool.take();
            let n = read_full(&mut reader, &mut buf)
                .map_err(|e| DecompressError::from_io(compression, e))?;
            if n == 0 {
                break;
            }
            stage.pass(pool.share(buf, n))?;
        }
    }
    let inspection = stage.inspector.finish().map_err(CpuError::Refused)?;
    Ok(CpuOutput {
        compression,
        inspection,
        bytes: stage.total,
    })
}

/// The checks every chunk of the image passes, and its way on to the hasher and the uploader.
struct Stage {
    inspector: Inspector,
    total: u64,
    max_bytes: u64,
    out_tx: mpsc::Sender<Bytes>,
    hash_tx: std::sync::mpsc::SyncSender<Bytes>,
}

impl Stage {
    fn pass(&mut self, chunk: Bytes) -> Result<(), CpuError> {
        self.total += chunk.len() as u64;
        if self.total > self.max_bytes {
            return Err(CpuError::TooLarge(self.max_bytes));
        }
        self.inspector.push(&chunk).map_err(CpuError::Refused)?;
        self.hash_tx
            .send(chunk.clone())
            .map_err(|_| CpuError::OutputGone)?;
        self.out_tx
            .blocking_send(chunk)
            .map_err(|_| CpuError::OutputGone)
    }
}

/// Buffers of [`CHUNK`] bytes, reused for the length of an import: a fresh buffer costs page
/// faults and zeroing for every mebibyte. A chunk's buffer comes back when the hasher and the
/// uploader have both dropped it; at most [`POOLED`] wait here, so the pool never holds more than
/// the stages had in flight at once.
#[derive(Clone, Default)]
struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

const POOLED: usize = 16;

impl BufferPool {
    /// A buffer of `CHUNK` bytes (of unspecified content).
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        reused.unwrap_or_else(|| vec![0; CHUNK])
    }

    /// The first `len` bytes of `buf`, as a chunk that returns `buf` here when dropped.
    fn share(&self, buf: Vec<u8>, len: usize) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
        .slice(..len)
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut pooled = self.pool.0.lock().unwrap_or_else(|p| p.into_inner());
        if pooled.len() < POOLED {
            pooled.push(std::mem::take(&mut self.buf));
        }
    }
}

/// Fills `buf` unless the input ends first; returns how much was read.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn fetch_error(e: FetchError) -> ImportError {
    let kind = match e {
        FetchError::Cancelled => FailureKind::Cancelled,
        _ => FailureKind::Fetch,
    };
    if e.is_permanent() {
        ImportError::abort(kind, e.to_string())
    } else {
        ImportError::retry(kind, e.to_string())
    }
}

fn store_error(e: BlobError) -> ImportError {
    // The user is told the cause; the blob key and paths stay in the log.
    tracing::warn!(error = %e, "the blob store failed");
    ImportError::retry(
        FailureKind::Internal,
        format!("could not store the image: {}", e.cause()),
    )
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
