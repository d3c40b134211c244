//! GET, POST, PUT and DELETE of single images: shapes, ownership, validation.

use reqwest::Method;
use serde_json::{json, Value};
use tidepool_api::{Distribution, ImageStatus, ImageType};
use tidepool_catalog::testing::new_custom;
use tidepool_catalog::AccountId;
use tidepool_server::testing::{error_body, Backend, TestServer};

fn is_rfc3339_utc_seconds(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && s.chars()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit())
}

async fn create_answers_202_with_a_new_custom_image(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let body = json!({"name": "ubuntu-18.04-minimal", "url": "http://127.0.0.1:9/u.img", "region": "nyc3",
        "distribution": "Ubuntu", "description": "Cloud-optimized", "tags": ["base-image", "prod"]});
    let r = s
        .req(Method::POST, "/v2/images")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let image = r.json::<Value>().await.unwrap()["image"].clone();
    let fields = [
        "id",
        "name",
        "distribution",
        "slug",
        "public",
        "regions",
        "created_at",
        "type",
        "min_disk_size",
        "size_gigabytes",
        "description",
        "tags",
        "status",
        "error_message",
    ];
    assert_eq!(image.as_object().unwrap().len(), 14);
    for f in fields {
        assert!(image.get(f).is_some(), "field {f} missing");
    }
    assert!(image["id"].is_u64());
    assert_eq!(image["type"], "custom");
    assert_eq!(image["status"], "NEW");
    assert_eq!(image["public"], false);
    assert_eq!(image["slug"], Value::Null);
    assert_eq!(image["regions"], json!([]));
    assert_eq!(image["distribution"], "Ubuntu");
    assert_eq!(image["tags"], json!(["base-image", "prod"]));
    assert_eq!(image["error_message"], "");
    assert!(image["min_disk_size"].is_null() && image["size_gigabytes"].is_null());
    assert!(
        is_rfc3339_utc_seconds(image["created_at"].as_str().unwrap()),
        "{}",
        image["created_at"]
    );

    let id = image["id"].as_u64().unwrap();
    let fetched = s.get_json(&format!("/v2/images/{id}")).await;
    assert_eq!(fetched["image"], image, "GET returns what POST did");
}

async fn unknown_distribution_is_stored_as_unknown(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let body = json!({"name": "x", "url": "https://127.0.0.1:9/x.img", "region": "ams3", "distribution": "Plan 9"});
    let r = s
        .req(Method::POST, "/v2/images")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<Value>().await.unwrap()["image"]["distribution"],
        "Unknown"
    );
}

async fn bad_create_bodies_get_a_clear_4xx_and_store_nothing(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let before = s.get_json("/v2/images?private=true").await["meta"]["total"].clone();
    let ok = json!({"name": "n", "url": "http://127.0.0.1:9/n.img", "region": "nyc3"});
    let without = |field: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(field);
        b
    };
    let with = |field: &str, value: Value| {
        let mut b = ok.clone();
        b[field] = value;
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (without("name"), 422, "name"),
        (without("url"), 422, "url"),
        (without("region"), 422, "region"),
        (with("region", json!("mars1")), 422, "region"),
        (with("region", json!(3)), 422, "region"),
        (with("name", json!(5)), 422, "name"),
        (with("name", json!("   ")), 422, "name"),
        (with("tags", json!("web")), 422, "tags"),
        (with("tags", json!(["bad tag"])), 422, "tags"),
        (with("url", json!("ftp://127.0.0.1/x.img")), 422, "url"),
        (with("url", json!("file:///etc/passwd")), 422, "url"),
        (with("url", json!("not a url")), 422, "url"),
        (with("description", json!(["a"])), 422, "description"),
    ];
    for (body, status, field) in cases {
        let r = s
            .req(Method::POST, "/v2/images")
            .json(&body)
            .send()
            .await
            .unwrap();
        let id = if status == 422 {
            "unprocessable_entity"
        } else {
            "bad_request"
        };
        let message = error_body(r, status, id).await;
        assert!(message.contains(field), "{body}: {message}");
    }
    for raw in ["{not json", "", "[]", "null", "{\"name\": \"a\""] {
        let r = s
            .req(Method::POST, "/v2/images")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 422),
            "{raw:?}: {}",
            r.status()
        );
        let body: Value = r.json().await.unwrap();
        assert!(body["message"].is_string() && body["id"].is_string());
    }
    let huge = json!({"name": "n", "url": "http://127.0.0.1:9/n.img", "region": "nyc3", "description": "x".repeat(100_000)});
    let r = s
        .req(Method::POST, "/v2/images")
        .json(&huge)
        .send()
        .await
        .unwrap();
    let message = error_body(r, 413, "request_entity_too_large").await;
    assert!(message.contains("bytes"), "{message}");
    let after = s.get_json("/v2/images?private=true").await["meta"]["total"].clone();
    assert_eq!(before, after, "nothing was stored");
}

async fn create_tolerates_what_clients_send(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    // No content type (curl -d), null tags, description and distribution (a Python client sends
    // every field), unknown fields.
    let raw = r#"{"name":"n","url":"http://127.0.0.1:9/n.img","region":"sfo3","tags":null,"description":null,"distribution":null,"extra":1}"#;
    let r = s
        .req(Method::POST, "/v2/images")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let image = r.json::<Value>().await.unwrap()["image"].clone();
    assert_eq!(
        (image["tags"].clone(), image["description"].clone()),
        (json!([]), json!(""))
    );
}

async fn another_accounts_private_image_is_indistinguishable_from_a_missing_one(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let bob = s
        .token("bob", "image:read,image:create,image:update,image:delete")
        .await;
    let id = s.create("alice-only", &[]).await["id"].as_u64().unwrap();
    let missing = 999_999_999u64;
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"name": "x"}))),
        (Method::DELETE, None),
    ] {
        let mut answers = vec![];
        for target in [id, missing] {
            let mut req = s.req_as(&bob, method.clone(), &format!("/v2/images/{target}"));
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            let mut v: Value = r.json().await.unwrap();
            v.as_object_mut().unwrap().remove("request_id");
            answers.push((status, v));
        }
        assert_eq!(answers[0].0, 404, "{method}");
        assert_eq!(
            answers[0], answers[1],
            "{method}: same answer as a missing image"
        );
    }
    assert_eq!(
        s.get(&format!("/v2/images/{id}")).await.status(),
        200,
        "still there for its owner"
    );
}

async fn get_by_slug_finds_public_images_only(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let by_slug = s.get_json("/v2/images/ubuntu-24-04-x64").await["image"].clone();
    assert_eq!(by_slug["slug"], "ubuntu-24-04-x64");
    assert_eq!(by_slug["public"], true);
    assert_eq!(by_slug["status"], "available");
    let id = by_slug["id"].as_u64().unwrap();
    assert_eq!(
        s.get_json(&format!("/v2/images/{id}")).await["image"],
        by_slug
    );
    let r = s.get("/v2/images/no-such-slug").await;
    error_body(r, 404, "not_found").await;
    let r = s.get("/v2/images/99999999999999999999999999").await;
    error_body(r, 404, "not_found").await;
}

async fn update_changes_name_and_custom_fields(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let id = s.create("before", &[]).await["id"].as_u64().unwrap();
    let r = s
        .req(Method::PUT, &format!("/v2/images/{id}"))
        .json(&json!({"name": "after", "description": "d", "distribution": "Debian"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let image = r.json::<Value>().await.unwrap()["image"].clone();
    assert_eq!(
        (
            image["name"].as_str(),
            image["description"].as_str(),
            image["distribution"].as_str()
        ),
        (Some("after"), Some("d"), Some("Debian"))
    );
    assert_eq!(
        s.get_json(&format!("/v2/images/{id}")).await["image"],
        image
    );

    let r = s
        .req(Method::PUT, &format!("/v2/images/{id}"))
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert!(error_body(r, 422, "unprocessable_entity")
        .await
        .starts_with("name"));
    let r = s
        .req(Method::PUT, "/v2/images/abc")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert!(error_body(r, 400, "bad_request").await.contains("image_id"));
    let r = s
        .req(Method::PUT, &format!("/v2/images/{id}"))
        .body("{")
        .send()
        .await
        .unwrap();
    error_body(r, 400, "bad_request").await;
}

async fn description_and_distribution_change_on_custom_images_only(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    // An account's own snapshot (tidepool makes none itself; an operator could import one).
    let account = s
        .server
        .app
        .catalog()
        .account_ensure("default", tidepool_catalog::testing::T0)
        .await
        .unwrap();
    assert_eq!(account, AccountId(1));
    let mut snapshot = new_custom(account, "snap", &[]);
    snapshot.kind = ImageType::Snapshot;
    snapshot.status = ImageStatus::Available;
    snapshot.distribution = Distribution::Debian;
    snapshot.job = None;
    let id = s
        .server
        .app
        .catalog()
        .image_insert(snapshot)
        .await
        .unwrap()
        .id;
    let put = |body: Value| {
        s.req(Method::PUT, &format!("/v2/images/{id}"))
            .json(&body)
            .send()
    };
    let r = put(json!({"name": "renamed"})).await.unwrap();
    assert_eq!(r.status(), 200, "any own image can be renamed");
    for field in ["description", "distribution"] {
        let r = put(json!({ field: "Ubuntu" })).await.unwrap();
        let message = error_body(r, 422, "unprocessable_entity").await;
        assert!(
            message.starts_with(field) && message.contains("custom"),
            "{message}"
        );
    }
    assert_eq!(
        s.get_json(&format!("/v2/images/{id}")).await["image"]["distribution"],
        "Debian"
    );
}

async fn public_images_cannot_be_changed_or_deleted_by_an_account(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let id = s.get_json("/v2/images/debian-12-x64").await["image"]["id"]
        .as_u64()
        .unwrap();
    let r = s
        .req(Method::PUT, &format!("/v2/images/{id}"))
        .json(&json!({"name": "mine"}))
        .send()
        .await
        .unwrap();
    error_body(r, 403, "forbidden").await;
    let r = s
        .req(Method::DELETE, &format!("/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    error_body(r, 403, "forbidden").await;
    assert_eq!(
        s.get_json("/v2/images/debian-12-x64").await["image"]["name"],
        "12 x64"
    );
}

async fn delete_answers_204_and_the_image_is_gone(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let id = s.create("doomed", &["t1"]).await["id"].as_u64().unwrap();
    let r = s
        .req(Method::DELETE, &format!("/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().contains_key("ratelimit-remaining"));
    assert!(r.bytes().await.unwrap().is_empty());
    error_body(s.get(&format!("/v2/images/{id}")).await, 404, "not_found").await;
    assert!(tidepool_server::testing::ids(&s.get_json("/v2/images?tag_name=t1").await).is_empty());
    let r = s
        .req(Method::DELETE, &format!("/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    error_body(r, 404, "not_found").await;
    let r = s
        .req(Method::DELETE, "/v2/images/ubuntu-24-04-x64")
        .send()
        .await
        .unwrap();
    assert!(error_body(r, 400, "bad_request").await.contains("image_id"));
}

tidepool_server::on_every_backend!(
    create_answers_202_with_a_new_custom_image,
    unknown_distribution_is_stored_as_unknown,
    bad_create_bodies_get_a_clear_4xx_and_store_nothing,
    create_tolerates_what_clients_send,
    another_accounts_private_image_is_indistinguishable_from_a_missing_one,
    get_by_slug_finds_public_images_only,
    update_changes_name_and_custom_fields,
    description_and_distribution_change_on_custom_images_only,
    public_images_cannot_be_changed_or_deleted_by_an_account,
    delete_answers_204_and_the_image_is_gone,
);
