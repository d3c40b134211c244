//! The scale-out shape as operators run it: `tidepool serve` processes sharing one PostgreSQL
//! catalog and one S3 bucket. Needs TIDEPOOL_TEST_DATABASE_URL and TIDEPOOL_TEST_S3_BUCKET
//! (with the AWS_* variables `scripts/garage start` prints; `scripts/test` provides both);
//! skips otherwise (testkit's skip protocol).

use crate::support::{slow_image_server, wait_ready};
use futures::StreamExt;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tidepool_catalog::{self as catalog, testing};
use tidepool_testkit::{free_port, s3_bucket, sha256_hex, KillOnDrop, Samples};

const IMAGE_LEN: usize = 1 << 20;

fn image_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..IMAGE_LEN)
        .map(|i| (i % 253) as u8 ^ (i >> 12) as u8)
        .collect();
    // The partition table a raw image must have to be imported.
    Samples::partition(&mut bytes, IMAGE_LEN as u64);
    bytes
}

fn environment(test: &str) -> Option<(String, String)> {
    let bucket = s3_bucket(test)?;
    Some((testing::postgres_admin_url(test)?, bucket))
}

/// The image, 64 KiB every 30 ms: each import takes about half a second. The directory is to
/// be kept while the URL is used.
async fn image_server() -> (tempfile::TempDir, String) {
    slow_image_server(&image_bytes(), Duration::from_millis(30)).await
}

fn replica(dir: &std::path::Path, port: u16, database: &str, blobs: &str) -> KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database,
            "--blob-store",
            blobs,
        ])
        .args([
            "--import-allow-private-networks",
            "--import-lease-secs",
            "2",
            "--import-workers",
            "2",
        ])
        .args(["--rate-limit-per-hour", "0", "--rate-limit-per-minute", "0"])
        .current_dir(dir)
        .env("TIDEPOOL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_imports_through_two_replicas_survive_a_sigkill() {
    let Some((admin, bucket)) =
        environment("replicas::twenty_imports_through_two_replicas_survive_a_sigkill")
    else {
        return;
    };
    let database = testing::fresh_postgres_database(&admin).await;
    let prefix = format!("replicas-{}", std::process::id());
    let blobs_url = format!(
        "s3://{bucket}/{prefix}-{}",
        Instant::now().elapsed().as_nanos()
    );
    let dir = tempfile::tempdir().unwrap();
    // The storage both replicas are started on (as flags); the test opens the app on it too.
    let storage = tidepool_server::config::StorageArgs {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database.clone()),
        blob_store: Some(blobs_url.clone()),
    };
    let token = {
        let app = tidepool_server::server::open_app(&storage).await.unwrap();
        app.token_create(
            "ops",
            "image:read,image:create,image:delete".parse().unwrap(),
        )
        .await
        .unwrap()
    };
    let (_image_dir, url) = image_server().await;
    let http = reqwest::Client::new();
    let ports = [free_port(), free_port()];
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let a = replica(dir.path(), ports[0], &database, &blobs_url);
    let b = replica(dir.path(), ports[1], &database, &blobs_url);
    for base in &bases {
        wait_ready(&http, base, Some(&token)).await;
    }

    let mut ids = vec![];
    for n in 0..20 {
        let body = json!({"name": format!("img{n}"), "url": url, "region": "nyc3"});
        let r = http
            .post(format!("{}/v2/images", bases[n % 2]))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<Value>().await.unwrap()["image"]["id"]
                .as_u64()
                .unwrap(),
        );
    }
    // Kill A while imports are in flight on both.
    tokio::time::sleep(Duration::from_millis(700)).await;
    drop(a); // SIGKILL

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list: Value = http
            .get(format!("{}/v2/images?private=true&per_page=200", bases[1]))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let statuses: Vec<&str> = list["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["status"].as_str().unwrap())
            .collect();
        if statuses.len() == 20 && statuses.iter().all(|s| *s == "available") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "imports did not all finish after the kill: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A killed replica may have stored a blob and died before recording it; B then imported
    // that image again. Such a blob is what the orphan sweep is for: with every import done, a
    // sweep without grace must remove it (at most one per worker of A, so two),
    // and then exactly one blob per image remains.
    let app = tidepool_server::server::open_app(&storage).await.unwrap();
    let swept = app.orphans_sweep(Duration::ZERO).await.unwrap();
    assert!(swept.blobs_removed <= 2, "{swept:?}");

    // Exactly one blob per image, each the image's bytes, nothing orphaned.
    let catalog = catalog::open(&database).await.unwrap();
    let blobs = tidepool_import::Blobs::from_url(&blobs_url).unwrap();
    let listed: Vec<String> = blobs.list("images").map(|m| m.unwrap().key).collect().await;
    assert_eq!(listed.len(), 20, "{listed:?}");
    let expected_sha = sha256_hex(&image_bytes());
    for id in &ids {
        let record = catalog.image_get(*id as i64).await.unwrap().unwrap();
        assert!(
            listed.contains(record.blob_key.as_ref().unwrap()),
            "image {id}'s blob is stored"
        );
        assert_eq!(record.sha256.as_deref(), Some(expected_sha.as_str()));
    }

    // A restarted A answers the same lists as B.
    let a = replica(dir.path(), ports[0], &database, &blobs_url);
    wait_ready(&http, &bases[0], Some(&token)).await;
    let mut lists = vec![];
    for base in &bases {
        let list: Value = http
            .get(format!("{base}/v2/images?private=true&per_page=200"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        lists.push(list);
    }
    drop((a, b));
    assert_eq!(lists[0], lists[1]);
}

fn start_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .env("TIDEPOOL_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success(), "start-up should fail");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn bad_configuration_stops_start_up_with_one_clear_line() {
    let err = start_error(
        &["--database-url", "postgres://u:secret@127.0.0.1:1/db"],
        &[],
    );
    assert!(
        err.starts_with("tidepool: cannot connect to PostgreSQL") && !err.contains("secret"),
        "{err}"
    );
    let Some(bucket) = s3_bucket(
        "replicas::bad_configuration_stops_start_up_with_one_clear_line (its bucket checks)",
    ) else {
        return;
    };
    let err = start_error(&["--blob-store", "s3://no-such-bucket-tidepool/x"], &[]);
    assert!(
        err.contains("cannot use the blob store") && err.to_lowercase().contains("bucket"),
        "{err}"
    );
    let err = start_error(
        &["--blob-store", &format!("s3://{bucket}/x")],
        &[("AWS_SECRET_ACCESS_KEY", "wrong")],
    );
    assert!(err.contains("cannot use the blob store"), "{err}");
}
