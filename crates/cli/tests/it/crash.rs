//! A server killed in the middle of an import (SIGKILL: no chance to clean up) is restarted;
//! the import is taken over once the dead worker's lease runs out and finishes cleanly.

use crate::support::{slow_image_server, wait_ready};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tidepool_testkit::{free_port, sha256_hex, KillOnDrop, Samples};

const IMAGE_LEN: usize = 4 << 20;

fn image_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..IMAGE_LEN)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect();
    // The partition table a raw image must have to be imported.
    Samples::partition(&mut bytes, IMAGE_LEN as u64);
    bytes
}

/// Serves the image slowly (64 KiB every 40 ms, about 2.5 s in all) on 127.0.0.1; the
/// directory is to be kept while the URL is used.
async fn slow_server() -> (tempfile::TempDir, String) {
    slow_image_server(&image_bytes(), Duration::from_millis(40)).await
}

fn serve(dir: &Path, port: u16) -> KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--import-allow-private-networks",
        ])
        .args(["--import-lease-secs", "2", "--import-workers", "1"])
        .current_dir(dir)
        .env("TIDEPOOL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// The token the very first start prints.
fn bootstrap_token(server: &mut KillOnDrop) -> String {
    let lines = BufReader::new(server.0.stdout.as_mut().unwrap()).lines();
    for line in lines {
        if let Some(t) = line
            .unwrap()
            .split_whitespace()
            .find(|w| w.starts_with("dop_v1_"))
        {
            return t.to_owned();
        }
    }
    panic!("no token printed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_interrupted_by_sigkill_finishes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_image_dir, url) = slow_server().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut first = serve(dir.path(), port);
    let token = bootstrap_token(&mut first);
    wait_ready(&http, &base, None).await;
    let created: Value = http
        .post(format!("{base}/v2/images"))
        .bearer_auth(&token)
        .json(&json!({"name": "crash", "url": url, "region": "nyc3"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["image"]["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p: Value = http
            .get(format!("{base}/v2/images/{id}/import"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if p["bytes_read"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "import did not start: {p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first); // SIGKILL: no chance to clean up

    let second = serve(dir.path(), port);
    wait_ready(&http, &base, None).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let image = loop {
        let r: Value = http
            .get(format!("{base}/v2/images/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let image = r["image"].clone();
        if !matches!(image["status"].as_str(), Some("NEW" | "pending")) {
            break image;
        }
        assert!(
            Instant::now() < deadline,
            "import never finished after restart: {image}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The restarted server took the job over from the killed one's expired lease, and says so.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "tidepool_job_lease_takeovers_total{kind=\"import\"} 1"),
        "one lease takeover counted:\n{metrics}"
    );
    drop(second);
    assert_eq!(image["status"], "available", "{image}");

    // Exactly one complete blob, holding the image's bytes; the killed attempt left at most
    // a staging file, which is not a blob and which the sweep removes later.
    let blob_dir = dir.path().join(format!("tidepool-data/blobs/images/{id}"));
    let blobs: Vec<_> = std::fs::read_dir(&blob_dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().contains('#'))
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let stored = std::fs::read(blobs[0].path()).unwrap();
    assert_eq!(sha256_hex(&stored), sha256_hex(&image_bytes()));
}
