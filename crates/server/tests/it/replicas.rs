//! Two replicas on one PostgreSQL catalog: they share rate limits and the job queue.

use tidepool_catalog::testing;
use tidepool_server::config::ServeArgs;
use tidepool_server::server;
use tidepool_server::testing::TestServer;

async fn two_replicas(
    configure: impl Fn(&mut ServeArgs),
) -> Option<(TestServer, server::RunningServer)> {
    let admin = testing::postgres_admin_url("replicas")?;
    let url = testing::fresh_postgres_database(&admin).await;
    let first = TestServer::start_on(tidepool_server::testing::Backend::Sqlite, |a| {
        a.storage.database_url = Some(url.clone());
        configure(a);
    })
    .await;
    let dir = first.dir.path().join("second");
    let mut args = ServeArgs::with_data_dir(dir);
    args.storage.database_url = Some(url);
    // Both replicas share one blob store, as they would share one bucket.
    args.storage.blob_store = Some(first.dir.path().join("blobs").display().to_string());
    configure(&mut args);
    let second = server::start(args).await.unwrap();
    Some((first, second))
}

#[tokio::test]
async fn rate_limits_hold_across_replicas() {
    let Some((a, b)) = two_replicas(|args| {
        args.rate_limit_per_hour = 6;
        args.rate_limit_per_minute = 0;
        args.import.import_workers = Some(0);
    })
    .await
    else {
        return;
    };
    let b_url = format!("http://{}/v2/images", b.addr);
    for _ in 0..3 {
        assert_eq!(a.get("/v2/images").await.status(), 200);
        let r = a
            .http
            .get(&b_url)
            .bearer_auth(&a.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Within one sync interval each replica has heard of the other's requests.
    tokio::time::sleep(tidepool_server::background::RATE_COUNT_SYNC_INTERVAL * 3).await;
    assert_eq!(
        a.get("/v2/images").await.status(),
        429,
        "six requests across both used the limit"
    );
    let r = a
        .http
        .get(&b_url)
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn both_replicas_answer_the_same_lists_and_share_the_queue() {
    let Some((a, b)) = two_replicas(|args| {
        args.rate_limit_per_minute = 0;
        args.import.import_workers = Some(1);
        args.import.import_allow_private_networks = true;
    })
    .await
    else {
        return;
    };
    let base = crate::images::serve().await;
    let b_base = format!("http://{}", b.addr);
    let mut ids = vec![];
    for n in 0..6 {
        let target = if n % 2 == 0 { &a.base } else { &b_base };
        let body = serde_json::json!({"name": format!("r{n}"), "url": format!("{base}/files/disk.qcow2.gz"), "region": "nyc3"});
        let r = a
            .http
            .post(format!("{target}/v2/images"))
            .bearer_auth(&a.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["image"]["id"]
                .as_u64()
                .unwrap(),
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = a.get_json("/v2/images?private=true").await;
        let done = list["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "available");
        if done && list["meta"]["total"] == 6 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "imports did not finish: {list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let from_a = a.get_json("/v2/images?private=true").await;
    let from_b: serde_json::Value = a
        .http
        .get(format!("{b_base}/v2/images?private=true"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(from_a, from_b, "both replicas answer the same list");
    let blobs = std::fs::read_dir(a.dir.path().join("blobs/images"))
        .unwrap()
        .count();
    assert_eq!(blobs, 6, "one blob per image, each import done once");
    b.shutdown().await.unwrap();
}
