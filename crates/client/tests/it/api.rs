//! Every typed call against a real tidepool server over HTTP: results, filters, pages, errors.

use crate::support;
use futures::TryStreamExt;
use std::collections::HashSet;
use tidepool_client::{
    Distribution, ImageCreate, ImageListQuery, ImageStatus, ImageType, ImageUpdate, ListType,
    Region,
};
use tidepool_server::testing::TestServer;

fn create(name: &str, tags: &[&str]) -> ImageCreate {
    ImageCreate {
        name: name.into(),
        url: format!("http://127.0.0.1:9/{name}.img"),
        region: Region::Nyc3,
        distribution: Some(Distribution::Debian),
        description: Some(format!("{name} for tests")),
        tags: Some(tags.iter().map(|t| t.to_string()).collect()),
    }
}

#[tokio::test]
async fn every_typed_call_round_trips() {
    let s = TestServer::start_with(|_| {}).await;
    let c = support::client(&s);

    let created = c
        .image_create(&create("one", &["base", "ci"]))
        .await
        .unwrap();
    assert_eq!(created.status, ImageStatus::New);
    assert_eq!(created.kind, ImageType::Custom);
    assert_eq!(created.distribution, Distribution::Debian);
    assert_eq!(created.tags, ["base", "ci"]);
    assert_eq!(created.description, "one for tests");

    let got = c.image_get(created.id).await.unwrap();
    assert_eq!(got, created);
    let by_string = c.image_get(created.id.to_string()).await.unwrap();
    assert_eq!(by_string, created);

    let public = c.image_get("ubuntu-24-04-x64").await.unwrap();
    assert!(public.public);
    assert_eq!(public.slug.as_deref(), Some("ubuntu-24-04-x64"));

    let renamed = c
        .image_update(
            created.id,
            &ImageUpdate {
                name: Some("renamed".into()),
                distribution: Some(Distribution::Fedora),
                description: Some("new words".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.distribution, Distribution::Fedora);
    assert_eq!(renamed.description, "new words");
    assert_eq!(c.image_get(created.id).await.unwrap(), renamed);

    c.image_create(&create("two", &["other"])).await.unwrap();
    let tagged = c
        .images_list(&ImageListQuery {
            tag_name: Some("ci".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tagged.images, vec![renamed.clone()]);
    assert_eq!(tagged.meta.total, 1);

    let private = c
        .images_list(&ImageListQuery {
            private: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(private.meta.total, 2);
    assert!(private.images.iter().all(|i| !i.public));

    let distributions = c
        .images_list(&ImageListQuery {
            kind: Some(ListType::Distribution),
            per_page: Some(200),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!distributions.images.is_empty());
    assert!(distributions.images.iter().all(|i| i.public));

    let progress = c.image_import_progress(created.id).await.unwrap().unwrap();
    assert_eq!(progress.image_id, created.id);
    assert_eq!(progress.status, ImageStatus::New);

    c.image_delete(created.id).await.unwrap();
    let gone = c.image_get(created.id).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");

    let rl = c.last_rate_limit().expect("rate-limit headers were read");
    assert_eq!(rl.limit, 5000);
    assert!(rl.remaining < 5000 && rl.reset > 0, "{rl:?}");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_stream_walks_every_page_once() {
    let s = TestServer::start_with(|_| {}).await;
    let c = support::client(&s);
    let mut created = HashSet::new();
    for i in 0..25 {
        created.insert(
            c.image_create(&create(&format!("img-{i:02}"), &[]))
                .await
                .unwrap()
                .id,
        );
    }
    let query = ImageListQuery {
        private: Some(true),
        per_page: Some(4),
        ..Default::default()
    };
    let first = c.images_list(&query).await.unwrap();
    assert_eq!(first.images.len(), 4);
    assert_eq!(first.meta.total, 25);
    assert!(first.links.pages.next.is_some());

    let walked: Vec<u64> = c
        .images_stream(&query)
        .map_ok(|i| i.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(walked.len(), 25, "7 pages of 4, each image once");
    assert_eq!(walked.iter().copied().collect::<HashSet<_>>(), created);

    // From page 3 on: the rest only.
    let rest = c
        .images_all(&ImageListQuery {
            page: Some(3),
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 25 - 8);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn errors_carry_status_id_message_and_request_id() {
    let s = TestServer::start_with(|_| {}).await;

    let wrong = support::client_for(&s.base, "dop_v1_not_a_token");
    let err = wrong.image_get(1).await.unwrap_err();
    let api = err.api().expect("an API error");
    assert_eq!((api.status, api.id.as_str()), (401, "unauthorized"));
    assert!(!api.message.is_empty());
    assert!(api.request_id.as_deref().is_some_and(|r| !r.is_empty()));
    assert!(err.is_auth());

    let c = support::client(&s);
    let err = c.image_get(987_654).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!((api.status, api.id.as_str()), (404, "not_found"));
    assert!(api.request_id.is_some());
    assert!(
        err.to_string().contains("404 not_found"),
        "Display names status and id: {err}"
    );

    let mut bad = create("bad", &[]);
    bad.url = "not a url".into();
    let err = c.image_create(&bad).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!((api.status, api.id.as_str()), (422, "unprocessable_entity"));
    assert!(api.message.contains("url"), "{}", api.message);

    let reader = s.token("reader", "image:read").await;
    let reader = support::client_for(&s.base, &reader);
    let err = reader.image_create(&create("x", &[])).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.is_auth());
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dead_server_is_a_transport_error() {
    // A port that was just free: nothing listens there.
    let port = tidepool_testkit::free_port();
    let c = support::client_for(&format!("http://127.0.0.1:{port}"), "t");
    let started = std::time::Instant::now();
    let err = c.image_get(1).await.unwrap_err();
    assert!(
        matches!(err, tidepool_client::Error::Transport { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
