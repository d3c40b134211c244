//! The blob-store contract on a local directory, plus what only the local store does.

use std::time::Duration;

use tidepool_import::{testing::test_suite, Blobs};
use tidepool_testkit::{files_under, s3_bucket};

#[tokio::test]
async fn contract_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::from_url(&format!("file://{}", dir.path().display())).unwrap();
    test_suite(&blobs).await;
    // The rename-into-place left no staging files behind, and deletes removed the empty dirs.
    let leftovers: Vec<_> = walk(dir.path());
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[tokio::test]
async fn plain_paths_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not/yet/there");
    let blobs = Blobs::from_url(root.to_str().unwrap()).unwrap();
    assert!(root.is_dir());
    assert_eq!(blobs.head("images/1/x").await.unwrap(), None);
}

#[tokio::test]
async fn staging_files_are_hidden_until_commit_and_swept_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(dir.path()).unwrap();
    let mut w = blobs.writer("images/5/a", 1 << 20).await.unwrap();
    w.write(bytes::Bytes::from(vec![1u8; 9 << 20]))
        .await
        .unwrap();
    // The first full part is on disk, under a staging name only.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let files = walk(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("images/5/a#1"), "{files:?}");
    assert_eq!(blobs.head("images/5/a").await.unwrap(), None);

    // A crash would leave it there; the sweep removes it once it is old enough.
    std::mem::forget(w);
    assert_eq!(
        blobs
            .sweep_staging(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        blobs
            .sweep_staging(Duration::from_millis(10))
            .await
            .unwrap(),
        1
    );
    assert!(walk(dir.path()).is_empty());
}

#[tokio::test]
async fn a_large_local_write_is_stored_exactly() {
    // Past the writer's writeback window and lag, in chunks of odd sizes, small and large.
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(dir.path()).unwrap();
    let mut w = blobs.writer("images/6/a", 100 << 20).await.unwrap();
    let mut expected = Vec::new();
    let mut n = 0u32;
    for i in 0..200usize {
        let len = [1, 4095, 65_537, 300_000, 1 << 20][i % 5];
        let chunk: Vec<u8> = (0..len)
            .map(|_| {
                n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (n >> 16) as u8
            })
            .collect();
        expected.extend_from_slice(&chunk);
        w.write(bytes::Bytes::from(chunk)).await.unwrap();
    }
    assert_eq!(w.commit().await.unwrap(), expected.len() as u64);
    let stored = std::fs::read(dir.path().join("images/6/a")).unwrap();
    assert!(stored == expected, "the stored bytes differ");
    assert_eq!(walk(dir.path()).len(), 1, "{:?}", walk(dir.path()));
}

#[test]
fn other_schemes_are_refused_with_the_accepted_forms() {
    let err = Blobs::from_url("http://example.com/blobs")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("s3://bucket") && err.contains("file:///"),
        "{err}"
    );
}

/// Every file under `root`, as text to match the staging names in.
fn walk(root: &std::path::Path) -> Vec<String> {
    files_under(root)
        .iter()
        .map(|path| path.display().to_string())
        .collect()
}

#[tokio::test]
async fn contract_on_an_s3_bucket() {
    let Some(bucket) = s3_bucket("blobs::contract_on_an_s3_bucket") else {
        return;
    };
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let blobs = Blobs::from_url(&format!("s3://{bucket}/{prefix}")).unwrap();
    blobs.check().await.unwrap();
    test_suite(&blobs).await;
}

#[tokio::test]
async fn a_missing_bucket_is_found_by_the_check() {
    let Some(_) = s3_bucket("blobs::a_missing_bucket_is_found_by_the_check") else {
        return;
    };
    let blobs = Blobs::from_url("s3://no-such-bucket-tidepool/x").unwrap();
    let err = blobs.check().await.unwrap_err().to_string();
    assert!(
        err.to_lowercase().contains("bucket") || err.contains("404"),
        "{err}"
    );
}
