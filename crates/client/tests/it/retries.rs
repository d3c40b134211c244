//! Retries through a proxy in front of a real server: the proxy answers 429 or 5xx itself for
//! chosen requests and forwards the rest.

use crate::support::{self, Canned, Proxy};
use axum::http::Method;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tidepool_client::{ImageCreate, ImageListQuery, Region};
use tidepool_server::testing::TestServer;

fn create() -> ImageCreate {
    ImageCreate {
        name: "r".into(),
        url: "http://127.0.0.1:9/r.img".into(),
        region: Region::Fra1,
        distribution: None,
        description: None,
        tags: None,
    }
}

#[tokio::test]
async fn a_429_waits_retry_after_then_succeeds() {
    let s = TestServer::start_with(|_| {}).await;
    let proxy = Proxy::start(&s.base, |_, _, n| {
        (n == 0).then(|| {
            Canned::error(
                429,
                "too_many_requests",
                &[
                    ("retry-after", "1"),
                    ("ratelimit-limit", "250"),
                    ("ratelimit-remaining", "0"),
                    ("ratelimit-reset", "1"),
                ],
            )
        })
    })
    .await;
    let c = support::client_for(&proxy.base, &s.token);
    let started = Instant::now();
    let list = c.images_list(&ImageListQuery::default()).await.unwrap();
    assert!(!list.images.is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry-after: 1 was honoured ({:?})",
        started.elapsed()
    );
    assert_eq!(proxy.seen().len(), 2);
    assert_eq!(
        c.last_rate_limit().unwrap().limit,
        5000,
        "the headers of the last answer, the server's"
    );
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_429_is_retried_for_a_create_too() {
    let s = TestServer::start_with(|_| {}).await;
    let proxy = Proxy::start(&s.base, |_, _, n| {
        (n == 0).then(|| Canned::error(429, "too_many_requests", &[("retry-after", "0")]))
    })
    .await;
    let c = support::client_for(&proxy.base, &s.token);
    c.image_create(&create()).await.unwrap();
    assert_eq!(proxy.seen().len(), 2);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_5xx_is_retried_for_get_put_delete_but_not_for_create() {
    let s = TestServer::start_with(|_| {}).await;
    // POST always fails; the other calls fail on every other request, so each first try.
    let fail_next = AtomicBool::new(true);
    let proxy = Proxy::start(&s.base, move |method, _, _| {
        if *method == Method::POST {
            return Some(Canned::error(500, "server_error", &[]));
        }
        fail_next
            .fetch_xor(true, Ordering::SeqCst)
            .then(|| Canned::error(503, "service_unavailable", &[]))
    })
    .await;
    let c = support::client_for(&proxy.base, &s.token);
    let image = c.image_get("debian-12-x64").await.unwrap();
    assert_eq!(image.slug.as_deref(), Some("debian-12-x64"));
    assert_eq!(proxy.seen().len(), 2, "GET: 503 then 200");

    let err = c.image_create(&create()).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!((api.status, api.id.as_str()), (500, "server_error"));
    assert_eq!(api.request_id.as_deref(), Some("proxy-500"));
    let posts = proxy
        .seen()
        .iter()
        .filter(|(m, _)| *m == Method::POST)
        .count();
    assert_eq!(
        posts, 1,
        "a create that failed with a 5xx is not sent again"
    );

    // PUT and DELETE go straight to the server's 404 after their 503.
    let seen = proxy.seen().len();
    let err = c.image_update(999, &Default::default()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(c.image_delete(999).await.unwrap_err().is_not_found());
    assert_eq!(proxy.seen().len(), seen + 4);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_past_max_backoff() {
    let s = TestServer::start_with(|_| {}).await;
    let proxy = Proxy::start(&s.base, |_, path, _| {
        if path.ends_with("/1") {
            Some(Canned::error(503, "service_unavailable", &[]))
        } else {
            Some(Canned::error(
                429,
                "too_many_requests",
                &[("retry-after", "3600")],
            ))
        }
    })
    .await;
    let c = support::client_for(&proxy.base, &s.token);
    let err = c.image_get(1).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(proxy.seen().len(), 4, "1 try and 3 retries");

    let started = Instant::now();
    let err = c.image_get(2).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.status, 429);
    assert_eq!(api.retry_after, Some(Duration::from_secs(3600)));
    assert_eq!(proxy.seen().len(), 5, "an hour's wait is not retried");
    assert!(started.elapsed() < Duration::from_secs(1));

    let no_retries = tidepool_client::Client::builder()
        .base_url(&proxy.base)
        .token(&s.token)
        .max_retries(0)
        .build()
        .unwrap();
    assert_eq!(
        no_retries.image_get(1).await.unwrap_err().status(),
        Some(503)
    );
    assert_eq!(proxy.seen().len(), 6);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn pages_are_followed_through_a_proxy_that_names_the_server_differently() {
    let s = TestServer::start_with(|_| {}).await;
    let proxy = Proxy::start(&s.base, |_, _, _| None).await;
    let c = support::client_for(&proxy.base, &s.token);
    let all = c
        .images_all(&ImageListQuery {
            per_page: Some(5),
            ..Default::default()
        })
        .await
        .unwrap();
    let total = c
        .images_list(&ImageListQuery::default())
        .await
        .unwrap()
        .meta
        .total;
    assert_eq!(all.len() as u64, total);
    // The server's links name the server itself; the client kept to the proxy it was given.
    let pages = total.div_ceil(5) as usize;
    assert_eq!(proxy.seen().len(), pages + 1);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_real_servers_429_carries_its_wait_and_headers() {
    // One request a minute. Retries off: the server's retry-after may be anything up to 60 s.
    let s = TestServer::start_with(|a| a.rate_limit_per_minute = 1).await;
    let c = tidepool_client::Client::builder()
        .base_url(&s.base)
        .token(&s.token)
        .max_retries(0)
        .build()
        .unwrap();
    // Two requests may straddle a minute boundary; a third cannot also do so.
    let mut refused = None;
    for _ in 0..3 {
        if let Err(e) = c.image_get("debian-12-x64").await {
            refused = Some(e);
            break;
        }
    }
    let err = refused.expect("a second request in the same minute is refused");
    let api = err.api().unwrap();
    assert_eq!((api.status, api.id.as_str()), (429, "too_many_requests"));
    assert!(api.retry_after.is_some_and(|w| w >= Duration::from_secs(1)));
    assert!(api.request_id.is_some());
    let rl = c.last_rate_limit().unwrap();
    assert_eq!(
        rl.limit, 5000,
        "the hourly limit, as DigitalOcean reports it"
    );
    s.server.shutdown().await.unwrap();
}
