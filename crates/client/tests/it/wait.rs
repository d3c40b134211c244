//! Waiting for real imports: a server with one worker fetches an image from a file server of
//! the test's own on 127.0.0.1.

use crate::support::{self, Canned, Proxy};
use std::time::Duration;
use tidepool_client::{Error, ImageCreate, ImageStatus, Region, WaitOptions, WaitProgress};
use tidepool_server::testing::TestServer;

fn create(url: String) -> ImageCreate {
    ImageCreate {
        name: "imported".into(),
        url,
        region: Region::Nyc3,
        distribution: None,
        description: None,
        tags: None,
    }
}

fn quick() -> WaitOptions {
    WaitOptions {
        poll_interval: Duration::from_millis(50),
        timeout: Some(Duration::from_secs(30)),
    }
}

#[tokio::test]
async fn an_import_becomes_available_with_progress() {
    let s = TestServer::importing().await;
    let files = support::file_server().await;
    let c = support::client(&s);
    let image = c
        .image_create(&create(format!("{files}/disk.raw")))
        .await
        .unwrap();
    let mut seen: Vec<WaitProgress> = vec![];
    let done = c
        .wait_until_available_with(image.id, &quick(), |p| seen.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(done.status, ImageStatus::Available);
    assert_eq!(done.regions, [Region::Nyc3]);
    assert_eq!(done.min_disk_size, Some(1));
    let last = seen.last().unwrap();
    assert_eq!(last.status, ImageStatus::Available);
    assert_eq!(
        last.bytes_read,
        Some(1 << 20),
        "the progress extension counts the bytes"
    );
    // Already available: one look.
    assert_eq!(c.wait_until_available(image.id).await.unwrap(), done);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_import_is_an_error_with_its_message() {
    let s = TestServer::importing().await;
    let files = support::file_server().await;
    let c = support::client(&s);
    let image = c
        .image_create(&create(format!("{files}/missing.img")))
        .await
        .unwrap();
    let err = c
        .wait_until_available_with(image.id, &quick(), |_| {})
        .await
        .unwrap_err();
    match &err {
        Error::ImportFailed { id, message } => {
            assert_eq!(*id, image.id);
            assert_eq!(message, "HTTP 404 from the image URL");
        }
        other => panic!("expected ImportFailed, got {other}"),
    }
    assert_eq!(
        c.image_get(image.id).await.unwrap().status,
        ImageStatus::Deleted
    );
    assert!(c
        .wait_until_available(424_242)
        .await
        .unwrap_err()
        .is_not_found());
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_the_extension_the_image_is_polled() {
    let s = TestServer::importing().await;
    let files = support::file_server().await;
    // As DigitalOcean: no `/import` route, so 404 there.
    let proxy = Proxy::start(&s.base, |_, path, _| {
        path.ends_with("/import")
            .then(|| Canned::error(404, "not_found", &[]))
    })
    .await;
    let c = support::client_for(&proxy.base, &s.token);
    let image = c
        .image_create(&create(format!("{files}/disk.raw")))
        .await
        .unwrap();
    let mut seen = vec![];
    let done = c
        .wait_until_available_with(image.id, &quick(), |p| seen.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(done.status, ImageStatus::Available);
    assert!(seen.iter().all(|p| p.bytes_read.is_none()), "{seen:?}");
    let imports = proxy
        .seen()
        .iter()
        .filter(|(_, p)| p.ends_with("/import"))
        .count();
    assert_eq!(imports, 1, "asked once, then polled GET");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_wait_gives_up_at_its_timeout() {
    // No workers: the image stays NEW.
    let s = TestServer::start_with(|_| {}).await;
    let c = support::client(&s);
    let image = c
        .image_create(&create("http://127.0.0.1:9/x.img".into()))
        .await
        .unwrap();
    let options = WaitOptions {
        poll_interval: Duration::from_millis(50),
        timeout: Some(Duration::from_millis(300)),
    };
    let err = c
        .wait_until_available_with(image.id, &options, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WaitTimedOut {
                status: ImageStatus::New,
                ..
            }
        ),
        "{err}"
    );
    s.server.shutdown().await.unwrap();
}
