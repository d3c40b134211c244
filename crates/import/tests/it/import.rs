//! End-to-end imports from a local HTTP server into a temporary local blob store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidepool_import::{
    image_key, import_image, Compression, DiskFormat, Failure, FailureKind, ImportError,
    ImportLimits, Progress,
};
use tidepool_testkit::{files_under, qemu_info, sha256_hex};
use tokio_util::sync::CancellationToken;

use crate::common::{fixtures, serve, temp_blobs, test_limits};

async fn import(
    url: &str,
    limits: &ImportLimits,
) -> (
    tempfile::TempDir,
    Result<tidepool_import::ImportOutcome, ImportError>,
) {
    let (dir, blobs) = temp_blobs();
    let key = image_key(1, &uuid());
    let res = import_image(
        url,
        &key,
        &blobs,
        limits,
        &Progress::new(),
        CancellationToken::new(),
    )
    .await;
    match &res {
        Ok(o) => assert_eq!(blobs.head(&key).await.unwrap(), Some(o.stored_bytes)),
        Err(_) => assert_nothing_stored(dir.path()),
    }
    (dir, res)
}

fn uuid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn assert_nothing_stored(dir: &std::path::Path) {
    let left = files_under(dir);
    assert!(left.is_empty(), "a failed import left {left:?}");
}

async fn check_format(format: &str, expected: DiskFormat) {
    let addr = serve().await;
    let plain_path = fixtures().join(format!("disk.{format}"));
    let plain = std::fs::read(&plain_path).unwrap();
    let qemu = qemu_info(&plain_path);
    assert_eq!(qemu.format, format);
    for (suffix, compression) in [
        ("", Compression::None),
        (".gz", Compression::Gzip),
        (".multi.gz", Compression::Gzip),
        (".bz2", Compression::Bzip2),
        (".multi.bz2", Compression::Bzip2),
    ] {
        let name = format!("disk.{format}{suffix}");
        let served = std::fs::read(fixtures().join(&name)).unwrap();
        let (dir, blobs) = temp_blobs();
        let key = image_key(7, &uuid());
        let progress = Progress::new();
        let outcome = import_image(
            &format!("http://{addr}/files/{name}"),
            &key,
            &blobs,
            &test_limits(),
            &progress,
            CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(outcome.format, expected, "{name}");
        assert_eq!(outcome.virtual_size, qemu.virtual_size, "{name}");
        assert_eq!(outcome.stored_bytes, plain.len() as u64, "{name}");
        assert_eq!(outcome.sha256, sha256_hex(&plain), "{name}");
        assert_eq!(outcome.compression, compression, "{name}");
        assert_eq!(outcome.blob_key, key);
        assert_eq!(progress.bytes_read(), served.len() as u64, "{name}");
        assert_eq!(progress.bytes_total(), Some(served.len() as u64), "{name}");
        let stored = std::fs::read(dir.path().join(&key)).unwrap();
        assert!(stored == plain, "{name}: the stored bytes differ");
    }
}

#[tokio::test]
async fn raw_in_every_compression() {
    check_format("raw", DiskFormat::Raw).await;
}

#[tokio::test]
async fn qcow2_in_every_compression() {
    check_format("qcow2", DiskFormat::Qcow2).await;
}

#[tokio::test]
async fn vhdx_in_every_compression() {
    check_format("vhdx", DiskFormat::Vhdx).await;
}

#[tokio::test]
async fn vdi_in_every_compression() {
    check_format("vdi", DiskFormat::Vdi).await;
}

#[tokio::test]
async fn vmdk_in_every_compression() {
    check_format("vmdk", DiskFormat::Vmdk).await;
}

#[tokio::test]
async fn size_limit_on_the_decompressed_stream() {
    let addr = serve().await;
    let limits = ImportLimits {
        max_bytes: 1 << 20,
        ..test_limits()
    };
    for name in ["disk.raw", "disk.raw.gz", "disk.raw.bz2"] {
        let (_dir, res) = import(&format!("http://{addr}/files/{name}"), &limits).await;
        assert_eq!(
            res.unwrap_err(),
            ImportError::abort(FailureKind::TooLarge, "decompressed size exceeds 1 MiB"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn inspector_refusal_aborts() {
    // A 64 GiB virtual disk in a small file: within the byte limit, refused by the inspector.
    let addr = serve().await;
    let limits = ImportLimits {
        max_bytes: 1 << 30,
        ..test_limits()
    };
    let (_dir, res) = import(&format!("http://{addr}/files/huge.qcow2"), &limits).await;
    let Err(ImportError::Abort(Failure {
        kind: FailureKind::TooLarge,
        message: msg,
    })) = &res
    else {
        panic!("{res:?}")
    };
    assert!(msg.starts_with("virtual size 64 GiB exceeds"), "{msg}");
}

#[tokio::test]
async fn truncated_gzip_file_is_reported_as_truncated() {
    let addr = serve().await;
    let (_dir, res) = import(&format!("http://{addr}/files/cut.raw.gz"), &test_limits()).await;
    assert_eq!(
        res.unwrap_err(),
        ImportError::abort(
            FailureKind::Refused,
            "gzip stream ends early: the download was truncated"
        )
    );
}

#[tokio::test]
async fn body_cut_short_of_its_content_length_fails() {
    let addr = serve().await;
    for name in ["disk.raw", "disk.raw.gz"] {
        let (_dir, res) = import(&format!("http://{addr}/truncated/{name}"), &test_limits()).await;
        let err = res.unwrap_err();
        assert!(err.is_retryable(), "{name}: {err:?}");
        assert!(
            err.message()
                .starts_with("the download from the image URL failed"),
            "{name}: {err:?}"
        );
    }
}

#[tokio::test]
async fn stall_ends_with_a_clear_error() {
    let addr = serve().await;
    let limits = ImportLimits {
        stall_timeout: Duration::from_millis(500),
        ..test_limits()
    };
    let start = Instant::now();
    let (_dir, res) = import(&format!("http://{addr}/stall/disk.raw"), &limits).await;
    assert_eq!(
        res.unwrap_err(),
        ImportError::retry(
            FailureKind::Fetch,
            "the image URL stopped sending data for 0.5 seconds"
        )
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn cancellation_mid_download_leaves_nothing() {
    let addr = serve().await;
    let (dir, blobs) = temp_blobs();
    let blobs = Arc::new(blobs);
    let progress = Arc::new(Progress::new());
    let cancel = CancellationToken::new();
    let key = image_key(3, &uuid());
    let task = tokio::spawn({
        let (blobs, progress, cancel, key) =
            (blobs.clone(), progress.clone(), cancel.clone(), key.clone());
        let url = format!("http://{addr}/stall/disk.raw");
        async move {
            let limits = ImportLimits {
                stall_timeout: Duration::from_secs(60),
                ..test_limits()
            };
            import_image(&url, &key, &blobs, &limits, &progress, cancel).await
        }
    });
    let start = Instant::now();
    while progress.bytes_read() < 64 << 10 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the download never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let res = task.await.unwrap();
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled_at.elapsed()
    );
    assert_eq!(
        res.unwrap_err(),
        ImportError::retry(FailureKind::Cancelled, "the import was cancelled")
    );
    assert_eq!(blobs.head(&key).await.unwrap(), None);
    assert_nothing_stored(dir.path());
}

#[tokio::test]
async fn retried_import_uses_a_fresh_key() {
    let addr = serve().await;
    let (_dir, blobs) = temp_blobs();
    let url = format!("http://{addr}/files/disk.qcow2");
    let first = image_key(9, &uuid());
    let second = image_key(9, &uuid());
    assert_ne!(first, second);
    for key in [&first, &second] {
        import_image(
            &url,
            key,
            &blobs,
            &test_limits(),
            &Progress::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    }
    assert!(blobs.head(&first).await.unwrap().is_some());
    assert!(blobs.head(&second).await.unwrap().is_some());
}

#[tokio::test]
async fn a_full_blob_store_names_the_cause_and_no_key() {
    let test = "import::a_full_blob_store_names_the_cause_and_no_key";
    let Some(disk) = tidepool_testkit::SmallDisk::mount(test, 1 << 20) else {
        return;
    };
    let blobs = tidepool_import::Blobs::local(disk.path()).unwrap();
    let addr = serve().await;
    let key = image_key(20, &uuid());
    // The qcow2 sample (over 2 MiB) does not fit in 1 MiB.
    let res = import_image(
        &format!("http://{addr}/files/disk.qcow2"),
        &key,
        &blobs,
        &test_limits(),
        &Progress::new(),
        CancellationToken::new(),
    )
    .await;
    let err = res.unwrap_err();
    assert!(
        err.is_retryable(),
        "a full disk may have room later: {err:?}"
    );
    assert_eq!(
        err.message(),
        "could not store the image: the image store is out of space"
    );
    assert!(!err.message().contains("images/"), "{err:?}");
    assert_nothing_stored(disk.path());
}

#[tokio::test]
async fn permanent_answers_fail_at_once_and_transient_ones_are_retried() {
    let addr = serve().await;
    // Retrying would take seconds: a permanent failure must come back well before.
    let slow_retries = ImportLimits {
        retry_base_delay: Duration::from_secs(4),
        ..test_limits()
    };
    for path in [
        "status/404",
        "status/403",
        "status/410",
        "files/missing.img",
    ] {
        let started = Instant::now();
        let (_dir, res) = import(&format!("http://{addr}/{path}"), &slow_retries).await;
        let err = res.unwrap_err();
        assert!(!err.is_retryable(), "{path}: {err:?}");
        assert!(err.message().starts_with("HTTP 4"), "{path}: {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path} was retried: {:?}",
            started.elapsed()
        );
    }
    for path in ["status/503", "status/500", "status/429"] {
        let (_dir, res) = import(&format!("http://{addr}/{path}"), &test_limits()).await;
        let err = res.unwrap_err();
        assert!(err.is_retryable(), "{path}: {err:?}");
    }
    // Two failures, then the file: within `test_limits`'s two retries.
    let (_dir, res) = import(
        &format!("http://{addr}/flaky/fetch-retry/2/disk.qcow2"),
        &test_limits(),
    )
    .await;
    assert_eq!(res.unwrap().format, DiskFormat::Qcow2);
}
