//! The blob-store contract, runnable against any backend: the server's tests and the S3 tests run
//! it on theirs, this crate's tests on a temporary directory. Panics on the first violation.
//!
//! Keys live under a fresh `contract-{uuid}/` prefix, so a shared bucket can run it concurrently.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;

use crate::{BlobMeta, Blobs};

pub async fn test_suite(blobs: &Blobs) {
    let base = format!("contract-{}", uuid::Uuid::new_v4());
    let key = format!("{base}/images/1/attempt-a");

    assert_eq!(blobs.head(&key).await.unwrap(), None, "a new key exists");

    // A committed multi-part write is visible with its exact size and contents; not before.
    let part = Bytes::from(vec![7u8; 3 << 20]);
    let mut w = blobs.writer(&key, 16 << 20).await.unwrap();
    for _ in 0..4 {
        w.write(part.clone()).await.unwrap();
    }
    w.write(Bytes::from_static(b"tail")).await.unwrap();
    assert_eq!(w.written(), (12 << 20) + 4);
    assert_eq!(
        blobs.head(&key).await.unwrap(),
        None,
        "visible before commit"
    );
    assert!(list(blobs, &base).await.is_empty(), "listed before commit");
    assert_eq!(w.commit().await.unwrap(), (12 << 20) + 4);
    assert_eq!(blobs.head(&key).await.unwrap(), Some((12 << 20) + 4));
    let stored = read(blobs, &key).await;
    assert_eq!(stored.len(), (12 << 20) + 4);
    assert!(stored[..12 << 20].iter().all(|&b| b == 7));
    assert_eq!(&stored[12 << 20..], b"tail");

    // An aborted write leaves nothing, and neither does a dropped one.
    let aborted = format!("{base}/images/2/attempt-b");
    let mut w = blobs.writer(&aborted, 16 << 20).await.unwrap();
    w.write(part.clone()).await.unwrap();
    w.abort().await.unwrap();
    let dropped = format!("{base}/images/3/attempt-c");
    let mut w = blobs.writer(&dropped, 16 << 20).await.unwrap();
    w.write(part.clone()).await.unwrap();
    drop(w);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(blobs.head(&aborted).await.unwrap(), None);
    assert_eq!(blobs.head(&dropped).await.unwrap(), None);

    // An empty blob is a blob.
    let empty = format!("{base}/images/4/attempt-d");
    blobs
        .writer(&empty, 0)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(blobs.head(&empty).await.unwrap(), Some(0));

    // Listing is by whole path segments and reports a plausible modification time.
    let other = format!("{base}/images/10/attempt-e");
    let mut w = blobs.writer(&other, 0).await.unwrap();
    w.write(Bytes::from_static(b"x")).await.unwrap();
    w.commit().await.unwrap();
    let all = list(blobs, &base).await;
    let keys: Vec<&str> = all.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, [key.as_str(), other.as_str(), empty.as_str()]);
    let one = list(blobs, &format!("{base}/images/1")).await;
    assert_eq!(one.len(), 1, "prefix matched a longer segment: {one:?}");
    assert_eq!(one[0].size, (12 << 20) + 4);
    let age = SystemTime::now()
        .duration_since(one[0].last_modified)
        .unwrap_or_default();
    assert!(
        age < Duration::from_secs(3600),
        "last_modified is off by {age:?}"
    );

    // Deleting is idempotent.
    for k in [&key, &empty, &other] {
        blobs.delete(k).await.unwrap();
        blobs.delete(k).await.unwrap();
        assert_eq!(blobs.head(k).await.unwrap(), None);
    }
    assert!(list(blobs, &base).await.is_empty());

    // Keys that could escape the store are refused.
    assert!(blobs.writer("../escape", 0).await.is_err());
    assert!(blobs.delete("a//b").await.is_err());
}

async fn list(blobs: &Blobs, prefix: &str) -> Vec<BlobMeta> {
    let mut all: Vec<BlobMeta> = blobs.list(prefix).try_collect().await.unwrap();
    all.sort_by(|a, b| a.key.cmp(&b.key));
    all
}

async fn read(blobs: &Blobs, key: &str) -> Bytes {
    use object_store::ObjectStoreExt;
    let path = object_store::path::Path::parse(key).unwrap();
    let got = blobs.object_store().get(&path).await.unwrap();
    got.bytes().await.unwrap()
}
