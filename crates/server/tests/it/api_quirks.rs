//! What real clients send that DigitalOcean accepts: trailing slashes (pydo), `POST` as an update
//! (DigitalOcean's TypeScript client), page numbers far past the end.

use reqwest::Method;
use serde_json::{json, Value};
use tidepool_server::testing::{error_body, ids, Backend, TestServer};

async fn a_trailing_slash_names_the_same_route(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let id = s.create("slashed", &["web"]).await["id"].as_u64().unwrap();
    let listed = s.get_json("/v2/images/?per_page=200&private=true").await;
    assert_eq!(ids(&listed), [id], "{listed}");
    let one = s.get_json(&format!("/v2/images/{id}/")).await;
    assert_eq!(one["image"]["name"], "slashed");
    // The pagination links are the API's own, without the slash the client sent.
    let paged = s.get_json("/v2/images/?per_page=1&page=2").await;
    let first = paged["links"]["pages"]["first"]
        .as_str()
        .unwrap_or_default();
    assert!(first.contains("/v2/images?"), "{paged}");
    let r = s
        .req(Method::DELETE, &format!("/v2/images/{id}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    error_body(s.get(&format!("/v2/images/{id}")).await, 404, "not_found").await;
    // The metrics know one template per route, whatever the client wrote.
    let metrics = s
        .http
        .get(format!("{}/metrics/", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("route=\"/v2/images/{image_id}\",status=\"2xx\""),
        "{metrics}"
    );
    assert!(!metrics.contains("route=\"/v2/images/\""), "{metrics}");
}

async fn post_to_an_image_updates_it_as_put_does(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let id = s.create("before", &[]).await["id"].as_u64().unwrap();
    let r = s
        .req(Method::POST, &format!("/v2/images/{id}"))
        .json(&json!({"name": "after", "description": "by POST"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let image = r.json::<Value>().await.unwrap()["image"].clone();
    assert_eq!(
        (image["name"].clone(), image["description"].clone()),
        (json!("after"), json!("by POST"))
    );
    assert_eq!(
        s.get_json(&format!("/v2/images/{id}")).await["image"]["name"],
        "after"
    );
    // As with PUT, a bad body changes nothing.
    let r = s
        .req(Method::POST, &format!("/v2/images/{id}"))
        .json(&json!({"name": 5}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(
        s.get_json(&format!("/v2/images/{id}")).await["image"]["name"],
        "after"
    );
}

async fn a_page_far_past_the_end_is_empty_with_links_back(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    for n in 0..3 {
        s.create(&format!("i{n}"), &[]).await;
    }
    for page in [
        "7963246984",
        "18446744073709551615",
        "99999999999999999999999999",
    ] {
        let r = s
            .get(&format!("/v2/images?private=true&per_page=2&page={page}"))
            .await;
        assert_eq!(r.status(), 200, "page {page}");
        let list = r.json::<Value>().await.unwrap();
        assert_eq!(list["images"], json!([]), "page {page}");
        assert_eq!(list["meta"]["total"], 3);
        let pages = &list["links"]["pages"];
        assert!(
            pages["prev"]
                .as_str()
                .unwrap()
                .ends_with("page=2&per_page=2"),
            "prev leads to the last page: {list}"
        );
        assert!(
            pages["first"].as_str().unwrap().contains("page=1&"),
            "{list}"
        );
        assert!(pages.get("next").is_none(), "{list}");
    }
    let r = s.get("/v2/images?page=0").await;
    assert!(error_body(r, 400, "bad_request")
        .await
        .starts_with("page: "));
}

tidepool_server::on_every_backend!(
    a_trailing_slash_names_the_same_route,
    post_to_an_image_updates_it_as_put_does,
    a_page_far_past_the_end_is_empty_with_links_back,
);
