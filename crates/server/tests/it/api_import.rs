//! Imports through the API: POST an URL, watch the image become available (or fail), as a
//! client would.

use crate::images::{samples, serve, RAW_LEN};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tidepool_server::testing::{Backend, TestServer};
use tidepool_testkit::{files_under, qemu_info, serve_images, sha256_hex, temp_dir};

async fn importing_server(
    backend: Backend,
    configure: impl FnOnce(&mut tidepool_server::config::ServeArgs),
) -> TestServer {
    TestServer::start_on(backend, |a| {
        a.import.import_workers = Some(2);
        a.import.import_allow_private_networks = true;
        configure(a);
    })
    .await
}

pub(crate) async fn create(s: &TestServer, url: &str) -> u64 {
    let body = json!({"name": "imported", "url": url, "region": "fra1", "distribution": "Debian"});
    let r = s
        .req(Method::POST, "/v2/images")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["image"]["id"]
        .as_u64()
        .unwrap()
}

/// Polls GET until the status leaves NEW/pending, as Terraform's provider does.
async fn settle(s: &TestServer, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let image = s.get_json(&format!("/v2/images/{id}")).await["image"].clone();
        if !matches!(image["status"].as_str(), Some("NEW" | "pending")) {
            return image;
        }
        assert!(
            Instant::now() < deadline,
            "import of {id} did not finish: {image}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every file of the server's local blob store, staging included.
fn stored_blobs(s: &TestServer) -> Vec<std::path::PathBuf> {
    files_under(&s.dir.path().join("blobs"))
}

async fn every_format_imports_plain_gzip_and_bzip2(backend: Backend) {
    let s = importing_server(backend, |_| {}).await;
    let dir = samples();
    let base = serve().await;
    for fmt in ["raw", "qcow2", "vhdx", "vdi", "vmdk"] {
        let plain = dir.join(format!("disk.{fmt}"));
        let info = qemu_info(&plain);
        let (qemu_format, virtual_size) = (info.format, info.virtual_size);
        let plain_bytes = std::fs::read(&plain).unwrap();
        let sha = sha256_hex(&plain_bytes);
        for suffix in ["", ".gz", ".bz2"] {
            let id = create(&s, &format!("{base}/files/disk.{fmt}{suffix}")).await;
            let image = settle(&s, id).await;
            assert_eq!(image["status"], "available", "{fmt}{suffix}: {image}");
            assert_eq!(image["error_message"], "");
            assert_eq!(image["regions"], json!(["fra1"]));
            assert_eq!(image["distribution"], "Debian");
            let min_disk = virtual_size.div_ceil(1 << 30);
            assert_eq!(image["min_disk_size"], min_disk, "{fmt}{suffix}");
            let expected_gb =
                (plain_bytes.len() as f64 / (1u64 << 30) as f64 * 100.0).round() / 100.0;
            assert_eq!(image["size_gigabytes"].as_f64().unwrap(), expected_gb);
            let record = s
                .server
                .app
                .catalog()
                .image_get(id as i64)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                record.format.as_deref(),
                Some(qemu_format.as_str()),
                "{fmt}{suffix}"
            );
            assert_eq!(record.virtual_size, Some(virtual_size));
            assert_eq!(record.stored_bytes, Some(plain_bytes.len() as u64));
            assert_eq!(
                record.sha256.as_deref(),
                Some(sha.as_str()),
                "the hash of the decompressed bytes"
            );
            let blob = s.dir.path().join("blobs").join(record.blob_key.unwrap());
            assert_eq!(
                std::fs::read(blob).unwrap(),
                plain_bytes,
                "the stored bytes are the image"
            );
        }
    }
}

async fn refused_images_end_deleted_with_a_message_and_leave_no_bytes(backend: Backend) {
    let base = serve().await;
    let cases = [
        (
            None,
            format!("{base}/files/backing.qcow2"),
            "qcow2 image refers to a backing file",
        ),
        (
            None,
            format!("{base}/files/missing.img"),
            "HTTP 404 from the image URL",
        ),
        (
            None,
            format!("{base}/files/huge.qcow2"),
            "virtual size 200 GiB exceeds the limit of 100 GB",
        ),
        (
            Some(4 << 20),
            format!("{base}/files/disk.raw.gz"),
            "exceeds",
        ),
        (
            Some(4 << 20),
            format!("{base}/files/disk.qcow2.bz2"),
            "exceeds the limit",
        ),
    ];
    for (limit, url, expected) in cases {
        let s = importing_server(backend, |a| {
            a.import.import_max_bytes = limit.unwrap_or(100_000_000_000)
        })
        .await;
        let id = create(&s, &url).await;
        let image = settle(&s, id).await;
        assert_eq!(image["status"], "deleted", "{url}");
        let message = image["error_message"].as_str().unwrap();
        assert!(message.contains(expected), "{url}: {message}");
        let listed = tidepool_server::testing::ids(&s.get_json("/v2/images?private=true").await);
        assert!(!listed.contains(&id), "a failed image is no longer listed");
        assert!(
            stored_blobs(&s).is_empty(),
            "no partial bytes remain: {:?}",
            stored_blobs(&s)
        );
    }
}

async fn private_addresses_are_refused_unless_the_operator_allows_them(backend: Backend) {
    let s = TestServer::start_on(backend, |a| a.import.import_workers = Some(1)).await;
    let base = serve().await;
    let id = create(&s, &format!("{base}/files/disk.raw")).await;
    let image = settle(&s, id).await;
    assert_eq!(image["status"], "deleted");
    let message = image["error_message"].as_str().unwrap();
    assert!(
        message.contains("127.0.0.1")
            || message.contains("private")
            || message.contains("loopback"),
        "{message}"
    );
    let id = create(&s, "http://169.254.169.254/latest/meta-data/").await;
    assert_eq!(settle(&s, id).await["status"], "deleted");
}

async fn progress_is_visible_while_pending_and_delete_cancels_the_import(backend: Backend) {
    let s = importing_server(backend, |_| {}).await;
    let base = serve().await;
    let id = create(&s, &format!("{base}/slow/disk.raw")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let progress = loop {
        let p = s.get_json(&format!("/v2/images/{id}/import")).await;
        if p["bytes_read"].as_u64().unwrap() > 0 {
            break p;
        }
        assert!(Instant::now() < deadline, "no progress: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(progress["status"], "pending");
    assert_eq!(progress["bytes_total"], 8 << 20);
    assert_eq!(
        s.get_json(&format!("/v2/images/{id}")).await["image"]["status"],
        "pending"
    );

    let r = s
        .req(Method::DELETE, &format!("/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s.get(&format!("/v2/images/{id}/import")).await;
    assert_eq!(r.status(), 404);
    // The cancelled upload leaves nothing behind, staging included.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stored_blobs(&s).is_empty() {
        assert!(
            Instant::now() < deadline,
            "partial bytes remain: {:?}",
            stored_blobs(&s)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deleting_an_available_image_removes_its_bytes(backend: Backend) {
    let s = importing_server(backend, |_| {}).await;
    let base = serve().await;
    let id = create(&s, &format!("{base}/files/disk.qcow2")).await;
    assert_eq!(settle(&s, id).await["status"], "available");
    assert_eq!(stored_blobs(&s).len(), 1);
    let progress = s.get_json(&format!("/v2/images/{id}/import")).await;
    assert_eq!(progress["status"], "available");
    assert_eq!(progress["bytes_read"], progress["bytes_total"]);
    s.req(Method::DELETE, &format!("/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    assert!(stored_blobs(&s).is_empty());
}

#[tokio::test]
async fn shutdown_returns_running_imports_to_the_queue_and_a_restart_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve().await;
    let mut args = tidepool_server::config::ServeArgs::with_data_dir(dir.path().to_path_buf());
    args.import.import_allow_private_networks = true;
    args.import.import_workers = Some(1);
    let first = tidepool_server::server::start(args.clone()).await.unwrap();
    let token = first.bootstrap_token.clone().unwrap();
    let id = first
        .app
        .catalog()
        .account_ensure("default", tidepool_catalog::testing::T0)
        .await
        .unwrap();
    let mut new = tidepool_catalog::testing::new_custom(id, "slow", &[]);
    new.job.as_mut().unwrap().url = format!("{base}/slow/disk.raw");
    let image = first.app.catalog().image_insert(new).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while first
        .app
        .running_imports()
        .progress(image.id)
        .is_none_or(|(read, _)| read == 0)
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.shutdown().await.unwrap();
    let record = |app: &tidepool_server::app::App| {
        let app = app.clone();
        async move { app.catalog().image_get(image.id).await.unwrap().unwrap() }
    };
    let second = tidepool_server::server::start(args).await.unwrap();
    assert!(
        second.app.catalog().job_exists(image.id).await.unwrap(),
        "the job went back to the queue"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = record(&second.app).await;
        if r.status == tidepool_api::ImageStatus::Available {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not finished after restart: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = token;
    second.shutdown().await.unwrap();
}

async fn the_sweep_removes_blobs_no_image_points_at(backend: Backend) {
    let s = importing_server(backend, |_| {}).await;
    let base = serve().await;
    let id = create(&s, &format!("{base}/files/disk.raw")).await;
    assert_eq!(settle(&s, id).await["status"], "available");
    let orphan_dir = s.dir.path().join("blobs/images/424242");
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join("leftover"), b"x").unwrap();
    let stray = s.dir.path().join(format!("blobs/images/{id}/old-attempt"));
    std::fs::write(&stray, b"y").unwrap();
    let report = s.server.app.orphans_sweep(Duration::ZERO).await.unwrap();
    assert_eq!(report.blobs_removed, 2);
    assert!(!stray.exists() && !orphan_dir.join("leftover").exists());
    assert_eq!(stored_blobs(&s).len(), 1, "the image's own blob stays");
}

async fn stalled_truncated_and_overlong_downloads_fail_with_a_message(backend: Backend) {
    let base = serve().await;
    let cases = [
        // Half the file, then nothing.
        (
            format!("{base}/stall/disk.raw?bytes={}", RAW_LEN / 2),
            "stopped sending data",
        ),
        (
            format!("{base}/truncated/disk.raw"),
            "the download from the image URL failed",
        ),
        (
            format!("{base}/slow/disk.vdi"),
            "took longer than 1 seconds",
        ),
    ];
    for (url, expected) in cases {
        let s = importing_server(backend, |a| {
            a.import.import_stall_timeout_secs = 1;
            a.import.import_max_attempts = 1;
            if url.contains("/slow/") {
                a.import.import_timeout_secs = 1;
            }
        })
        .await;
        let started = Instant::now();
        let id = create(&s, &url).await;
        let image = settle(&s, id).await;
        assert_eq!(image["status"], "deleted", "{url}: {image}");
        let message = image["error_message"].as_str().unwrap();
        assert!(
            !message.is_empty() && message.contains(expected),
            "{url}: {message}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{url} took {:?}",
            started.elapsed()
        );
        assert!(stored_blobs(&s).is_empty(), "{url}: {:?}", stored_blobs(&s));
    }
}

// Images refused for what they are rather than for damage: a raw image without the partition
// table DigitalOcean requires (unless the operator allows bare raw images), and a polyglot that
// a probing consumer would read as a partitioned disk.

const BARE_REFUSAL: &str =
    "a raw image must start with an MBR or GPT partition table, as DigitalOcean requires; ";

/// Serves `bare.raw` (3 MiB of noise: what a user who tries random bytes uploads) and
/// `polyglot.qcow2` (the sample qcow2 with an MBR boot signature in its header cluster) from
/// `dir`. Returns the base URL.
async fn serve_refusables(dir: &std::path::Path) -> String {
    let noise: Vec<u8> = (0u32..3 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("bare.raw"), &noise).unwrap();
    let mut qcow2 = std::fs::read(samples().join("disk.qcow2")).unwrap();
    assert_eq!(
        &qcow2[510..512],
        &[0, 0],
        "the sample's header cluster is clean"
    );
    qcow2[510..512].copy_from_slice(&[0x55, 0xaa]);
    std::fs::write(dir.join("polyglot.qcow2"), &qcow2).unwrap();
    format!("http://{}/files", serve_images(dir).await)
}

async fn bare_raw_images_are_refused_unless_the_operator_allows_them(backend: Backend) {
    let dir = temp_dir("bare-raw");
    let base = serve_refusables(dir.path()).await;

    let s = importing_server(backend, |_| {}).await;
    let id = create(&s, &format!("{base}/bare.raw")).await;
    let image = settle(&s, id).await;
    assert_eq!(image["status"], "deleted", "{image}");
    let message = image["error_message"].as_str().unwrap();
    assert!(message.starts_with(BARE_REFUSAL), "{message}");
    assert!(stored_blobs(&s).is_empty(), "{:?}", stored_blobs(&s));

    let s = importing_server(backend, |a| a.import.import_allow_bare_raw = true).await;
    let id = create(&s, &format!("{base}/bare.raw")).await;
    let image = settle(&s, id).await;
    assert_eq!(image["status"], "available", "{image}");
    assert_eq!(image["error_message"], "");
    let record = s
        .server
        .app
        .catalog()
        .image_get(id as i64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.format.as_deref(), Some("raw"));
    assert_eq!(record.stored_bytes, Some(3 << 20));
}

async fn a_qcow2_that_also_carries_an_mbr_signature_is_refused(backend: Backend) {
    let dir = temp_dir("polyglot");
    let base = serve_refusables(dir.path()).await;
    // Allowing bare raw images changes nothing: the file is no raw image.
    let s = importing_server(backend, |a| a.import.import_allow_bare_raw = true).await;
    let id = create(&s, &format!("{base}/polyglot.qcow2")).await;
    let image = settle(&s, id).await;
    assert_eq!(image["status"], "deleted", "{image}");
    assert_eq!(
        image["error_message"],
        "image matches more than one format (qcow2 and mbr); upload a plain image"
    );
    assert!(stored_blobs(&s).is_empty(), "{:?}", stored_blobs(&s));
}

/// A server that sends no length and no chunked encoding, and closes the connection halfway,
/// delivers what looks like a whole file: the image's own tables must tell it is not.
async fn half_a_qcow2_sent_without_a_length_ends_deleted_as_truncated(backend: Backend) {
    // 16 MiB with data every third MiB: the header, refcount and L1/L2 tables fill the first
    // clusters and the data the rest, so half the file holds every table (the cut the header
    // alone cannot see, as in the 3,309,568 of 6,619,136 bytes).
    let dir = tidepool_testkit::temp_dir("unframed-qcow2");
    tidepool_testkit::Samples::new(16 << 20, tidepool_testkit::Pattern::EveryThirdMib)
        .convert("qcow2", &[])
        .build_in(dir.path());
    let whole = std::fs::metadata(dir.path().join("disk.qcow2"))
        .unwrap()
        .len();
    let server = tidepool_testkit::serve_images(dir.path()).await;
    let base = format!("http://{server}");
    let s = importing_server(backend, |_| {}).await;
    let id = create(&s, &format!("{base}/unframed/disk.qcow2")).await;
    let image = settle(&s, id).await;
    assert_eq!(image["status"], "deleted", "{image}");
    let message = image["error_message"].as_str().unwrap();
    assert!(
        message.starts_with("the qcow2 image is truncated: its tables point at data up to byte "),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            " but only {} bytes arrived; upload the complete file",
            whole / 2
        )),
        "{message}"
    );
    assert!(stored_blobs(&s).is_empty(), "{:?}", stored_blobs(&s));
}

tidepool_server::on_every_backend!(
    every_format_imports_plain_gzip_and_bzip2,
    refused_images_end_deleted_with_a_message_and_leave_no_bytes,
    private_addresses_are_refused_unless_the_operator_allows_them,
    progress_is_visible_while_pending_and_delete_cancels_the_import,
    deleting_an_available_image_removes_its_bytes,
    the_sweep_removes_blobs_no_image_points_at,
    stalled_truncated_and_overlong_downloads_fail_with_a_message,
    half_a_qcow2_sent_without_a_length_ends_deleted_as_truncated,
    bare_raw_images_are_refused_unless_the_operator_allows_them,
    a_qcow2_that_also_carries_an_mbr_signature_is_refused,
);
