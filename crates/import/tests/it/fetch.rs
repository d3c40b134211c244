//! What the fetcher refuses, retries and reports, through `import_image`.

use std::time::{Duration, Instant};

use tidepool_import::{
    image_key, import_image, Failure, FailureKind, ImportError, ImportLimits, Progress,
};
use tidepool_testkit::{files_under, free_port};
use tokio_util::sync::CancellationToken;

use crate::common::{serve, temp_blobs, test_limits};

async fn import(url: &str, limits: &ImportLimits) -> Result<(), ImportError> {
    let (dir, blobs) = temp_blobs();
    let res = import_image(
        url,
        &image_key(1, "attempt"),
        &blobs,
        limits,
        &Progress::new(),
        CancellationToken::new(),
    )
    .await;
    if res.is_err() {
        assert!(
            files_under(dir.path()).is_empty(),
            "a failed import left files"
        );
    }
    res.map(|_| ())
}

fn default_limits() -> ImportLimits {
    ImportLimits {
        allow_private_networks: false,
        ..test_limits()
    }
}

#[tokio::test]
async fn private_addresses_are_refused_by_default() {
    let addr = serve().await;
    let port = addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/files/disk.raw"),
        "http://2130706433/".to_owned(),
        "http://0177.0.0.1/".to_owned(),
        "http://0x7f.0.0.1/".to_owned(),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "http://[::1]/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/x".to_owned(),
        "http://192.168.0.1/x".to_owned(),
    ] {
        let start = Instant::now();
        let err = import(&url, &default_limits()).await.unwrap_err();
        let ImportError::Abort(Failure {
            kind: FailureKind::Fetch,
            message: msg,
        }) = &err
        else {
            panic!("{url}: {err:?}")
        };
        assert!(msg.contains("which is not allowed"), "{url}: {msg}");
        // Refused before any connection attempt, so before any retry or timeout.
        assert!(start.elapsed() < Duration::from_millis(500), "{url}");
    }
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused() {
    let addr = serve().await;
    let url = format!("http://localhost:{}/files/disk.raw", addr.port());
    let err = import(&url, &default_limits()).await.unwrap_err();
    assert_eq!(
        err,
        ImportError::abort(
            FailureKind::Fetch,
            "the image URL's host resolves only to non-public addresses, which are not allowed"
        )
    );
    // The same URL is fine where private networks are allowed.
    import(&url, &test_limits()).await.unwrap();
}

#[tokio::test]
async fn only_http_and_https() {
    for (url, scheme) in [
        ("file:///etc/passwd", "file"),
        ("ftp://example.com/disk.img", "ftp"),
        ("gopher://example.com/", "gopher"),
    ] {
        let err = import(url, &test_limits()).await.unwrap_err();
        assert_eq!(
            err,
            ImportError::abort(
                FailureKind::Fetch,
                format!("only http and https image URLs are accepted, not {scheme}:")
            )
        );
    }
    let err = import("not a url", &test_limits()).await.unwrap_err();
    assert_eq!(
        err,
        ImportError::abort(FailureKind::Fetch, "the image URL is not a valid URL")
    );
}

#[tokio::test]
async fn five_redirects_are_followed_six_are_not() {
    let addr = serve().await;
    import(
        &format!("http://{addr}/redirect/5/disk.raw"),
        &test_limits(),
    )
    .await
    .unwrap();
    let err = import(
        &format!("http://{addr}/redirect/6/disk.raw"),
        &test_limits(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        ImportError::abort(
            FailureKind::Fetch,
            "the image URL redirected more than 5 times"
        )
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let addr = serve().await;
    import(&format!("http://{addr}/flaky/a/2/disk.raw"), &test_limits())
        .await
        .unwrap();
    // Three failures outlast two retries.
    let err = import(&format!("http://{addr}/flaky/b/3/disk.raw"), &test_limits())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ImportError::retry(FailureKind::Fetch, "HTTP 503 from the image URL")
    );
}

#[tokio::test]
async fn client_errors_abort_at_once() {
    let addr = serve().await;
    let start = Instant::now();
    let err = import(&format!("http://{addr}/files/missing.img"), &test_limits())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ImportError::abort(FailureKind::Fetch, "HTTP 404 from the image URL")
    );
    let err = import(&format!("http://{addr}/status/403"), &test_limits())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ImportError::abort(FailureKind::Fetch, "HTTP 403 from the image URL")
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn unreachable_after_retries() {
    // A port that refuses connections.
    let port = free_port();
    let err = import(&format!("http://127.0.0.1:{port}/disk.raw"), &test_limits())
        .await
        .unwrap_err();
    let ImportError::Retry(Failure {
        kind: FailureKind::Fetch,
        message: msg,
    }) = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        msg.starts_with("could not connect to the image URL: "),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[tokio::test]
async fn credentials_and_queries_stay_out_of_messages() {
    let addr = serve().await;
    let port = free_port();
    for url in [
        format!("http://user:hunter2@{addr}/status/404?token=s3cr3t"),
        format!("http://user:hunter2@127.0.0.1:{port}/x?token=s3cr3t"),
        format!("http://user:hunter2@{addr}/status/500?token=s3cr3t"),
    ] {
        let err = import(&url, &test_limits()).await.unwrap_err();
        let msg = err.message();
        assert!(!msg.contains("hunter2") && !msg.contains("s3cr3t"), "{msg}");
    }
}
