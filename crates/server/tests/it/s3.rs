//! Imports into an S3 bucket: the same code path as the local directory, against a real
//! S3-protocol server (`scripts/test` brings one up; `scripts/garage start` starts one and prints
//! the environment).

use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tidepool_import::Blobs;
use tidepool_server::testing::{Backend, TestServer};
use tidepool_testkit::s3_bucket;

async fn settle(s: &TestServer, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let image = s.get_json(&format!("/v2/images/{id}")).await["image"].clone();
        if !matches!(image["status"].as_str(), Some("NEW" | "pending")) {
            return image;
        }
        assert!(Instant::now() < deadline, "{image}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn imports_stream_into_the_bucket_and_deletes_and_sweeps_clean_it() {
    let Some(bucket) =
        s3_bucket("s3::imports_stream_into_the_bucket_and_deletes_and_sweeps_clean_it")
    else {
        return;
    };
    let location = format!("s3://{bucket}/api-{}", uuid_like());
    let s = TestServer::start_on(Backend::Sqlite, |a| {
        a.storage.blob_store = Some(location.clone());
        a.import.import_workers = Some(2);
        a.import.import_allow_private_networks = true;
    })
    .await;
    let blobs = Blobs::from_url(&location).unwrap();
    let base = crate::images::serve().await;
    let mut ids = vec![];
    for file in ["disk.qcow2.gz", "disk.vmdk.bz2", "disk.raw"] {
        let body = json!({"name": file, "url": format!("{base}/files/{file}"), "region": "ams3"});
        let r = s
            .req(Method::POST, "/v2/images")
            .json(&body)
            .send()
            .await
            .unwrap();
        ids.push(
            r.json::<Value>().await.unwrap()["image"]["id"]
                .as_u64()
                .unwrap(),
        );
    }
    for &id in &ids {
        assert_eq!(settle(&s, id).await["status"], "available");
        let record = s
            .server
            .app
            .catalog()
            .image_get(id as i64)
            .await
            .unwrap()
            .unwrap();
        let size = blobs
            .head(record.blob_key.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(
            size, record.stored_bytes,
            "the bucket holds the stored bytes"
        );
    }
    let doomed = s
        .server
        .app
        .catalog()
        .image_get(ids[0] as i64)
        .await
        .unwrap()
        .unwrap();
    let r = s
        .req(Method::DELETE, &format!("/v2/images/{}", ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        blobs
            .head(doomed.blob_key.as_deref().unwrap())
            .await
            .unwrap(),
        None
    );

    let mut orphan = blobs
        .writer("images/999999/leftover", 1 << 20)
        .await
        .unwrap();
    orphan
        .write(bytes::Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    orphan.commit().await.unwrap();
    let report = s.server.app.orphans_sweep(Duration::ZERO).await.unwrap();
    assert_eq!(report.blobs_removed, 1);
    use futures::StreamExt;
    let left: Vec<_> = blobs.list("images").collect().await;
    assert_eq!(left.len(), 2, "the two remaining images' blobs: {left:?}");
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
