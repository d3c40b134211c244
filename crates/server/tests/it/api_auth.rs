//! Tokens, scopes, rate limits, request ids and the error envelope.

use reqwest::Method;
use serde_json::json;
use tidepool_server::testing::{error_body, Backend, TestServer};

async fn requests_without_a_valid_token_are_401(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let url = format!("{}/v2/images", s.base);
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(
        error_body(r, 401, "unauthorized").await,
        "Unable to authenticate you."
    );
    let r = s
        .http
        .get(&url)
        .bearer_auth("dop_v1_nope")
        .send()
        .await
        .unwrap();
    error_body(r, 401, "unauthorized").await;
    let r = s
        .http
        .get(&url)
        .header("authorization", format!("Basic {}", s.token))
        .send()
        .await
        .unwrap();
    error_body(r, 401, "unauthorized").await;
    let r = s
        .http
        .get(&url)
        .header("authorization", format!("bearer {}", s.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the scheme is case-insensitive");
}

async fn each_operation_needs_its_scope(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let id = s.create("x", &[]).await["id"].as_u64().unwrap();
    let read_only = s.token("default", "image:read").await;
    assert_eq!(
        s.req_as(&read_only, Method::GET, "/v2/images")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.req_as(&read_only, Method::GET, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let create = json!({"name": "n", "url": "http://127.0.0.1:9/n.img", "region": "nyc3"});
    let attempts = [
        (
            Method::POST,
            "/v2/images".to_owned(),
            Some(create.clone()),
            "image:create",
        ),
        (
            Method::PUT,
            format!("/v2/images/{id}"),
            Some(json!({"name": "y"})),
            "image:update",
        ),
        (
            Method::DELETE,
            format!("/v2/images/{id}"),
            None,
            "image:delete",
        ),
    ];
    for (method, path, body, scope) in attempts {
        let mut req = s.req_as(&read_only, method, &path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let message = error_body(req.send().await.unwrap(), 403, "forbidden").await;
        assert!(message.contains(scope), "{message}");
    }
    let write_only = s.token("default", "image:create").await;
    let r = s
        .req_as(&write_only, Method::GET, "/v2/images")
        .send()
        .await
        .unwrap();
    assert!(error_body(r, 403, "forbidden").await.contains("image:read"));
    assert_eq!(
        s.get_json(&format!("/v2/images/{id}")).await["image"]["name"],
        "x",
        "nothing changed"
    );
}

async fn tags_need_the_tag_create_scope(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let no_tags = s.token("default", "image:read,image:create").await;
    let body =
        json!({"name": "n", "url": "http://127.0.0.1:9/n.img", "region": "nyc3", "tags": ["web"]});
    let r = s
        .req_as(&no_tags, Method::POST, "/v2/images")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(error_body(r, 403, "forbidden").await.contains("tag:create"));
    let body =
        json!({"name": "n", "url": "http://127.0.0.1:9/n.img", "region": "nyc3", "tags": []});
    let r = s
        .req_as(&no_tags, Method::POST, "/v2/images")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

async fn every_answer_carries_rate_limit_headers_and_a_request_id(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let answers = [
        s.get("/v2/images").await,
        s.get("/v2/images/999999").await,
        s.http
            .get(format!("{}/v2/images", s.base))
            .send()
            .await
            .unwrap(),
        s.get("/v2/nothing-here").await,
        s.req(Method::PATCH, "/v2/images").send().await.unwrap(),
    ];
    for r in answers {
        for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            let v = r
                .headers()
                .get(h)
                .unwrap_or_else(|| panic!("{h} missing on {}", r.status()));
            v.to_str().unwrap().parse::<u64>().expect("integer header");
        }
        assert!(r.headers().contains_key("x-request-id"));
        // Errors and answers alike: the list's body is serialised by hand (sized buffer).
        assert_eq!(r.headers()["content-type"], "application/json");
    }
    let r = s.get("/v2/images").await;
    assert_eq!(r.headers()["ratelimit-limit"], "5000");
}

async fn a_token_over_its_limit_gets_429_with_retry_after(backend: Backend) {
    let s = TestServer::start_on(backend, |a| a.rate_limit_per_hour = 3).await;
    let mut remaining = vec![];
    for _ in 0..3 {
        let r = s.get("/v2/images").await;
        assert_eq!(r.status(), 200);
        remaining.push(
            r.headers()["ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = s.get("/v2/images").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 3600);
    assert_eq!(
        error_body(r, 429, "too_many_requests").await,
        "API rate limit exceeded."
    );
    let other = s.token("bob", "image:read").await;
    assert_eq!(
        s.req_as(&other, Method::GET, "/v2/images")
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "per token"
    );
}

#[tokio::test]
async fn the_bootstrap_token_is_created_once_and_stored_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let args = tidepool_server::config::ServeArgs::with_data_dir(dir.path().to_path_buf());
    let first = tidepool_server::server::start(args.clone()).await.unwrap();
    let token = first.bootstrap_token.clone().unwrap();
    first.shutdown().await.unwrap();
    let second = tidepool_server::server::start(args).await.unwrap();
    assert!(
        second.bootstrap_token.is_none(),
        "only the very first start creates a token"
    );
    let r = reqwest::Client::new()
        .get(format!("http://{}/v2/images", second.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the token survives a restart");
    second.shutdown().await.unwrap();
    let db = std::fs::read(dir.path().join("catalog.db")).unwrap();
    let wal = std::fs::read(dir.path().join("catalog.db-wal")).unwrap_or_default();
    let secret = token.as_bytes();
    for file in [&db, &wal] {
        assert!(
            !file.windows(secret.len()).any(|w| w == secret),
            "the secret is not stored in clear"
        );
    }
}

async fn unknown_paths_and_methods_get_json_errors(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    error_body(s.get("/v2/droplets").await, 404, "not_found").await;
    // Methods no route takes (POST on an image is an update, as DigitalOcean has it).
    for (method, path) in [
        (Method::PATCH, "/v2/images/1"),
        (Method::DELETE, "/v2/images"),
        (Method::PUT, "/v2/images"),
        (Method::PATCH, "/v2/images/1/"),
    ] {
        let r = s.req(method.clone(), path).send().await.unwrap();
        error_body(r, 405, "method_not_allowed").await;
    }
}

tidepool_server::on_every_backend!(
    requests_without_a_valid_token_are_401,
    each_operation_needs_its_scope,
    tags_need_the_tag_create_scope,
    every_answer_carries_rate_limit_headers_and_a_request_id,
    a_token_over_its_limit_gets_429_with_retry_after,
    unknown_paths_and_methods_get_json_errors,
);
