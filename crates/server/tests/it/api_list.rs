//! GET /v2/images: visibility, filters, pagination, links and meta.

use serde_json::Value;
use tidepool_server::testing::{ids, Backend, TestServer};

async fn list_holds_own_images_and_every_public_one_by_id(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let other = s.token("bob", "image:read,image:create,tag:create").await;
    let mine = s.create("mine", &[]).await;
    let theirs = s.create_as(&other, "theirs", &[]).await;
    let list = s.get_json("/v2/images?per_page=200").await;
    let listed = ids(&list);
    assert!(listed.contains(&mine["id"].as_u64().unwrap()));
    assert!(
        !listed.contains(&theirs["id"].as_u64().unwrap()),
        "another account's private image leaked"
    );
    let public = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["public"] == true)
        .count();
    assert!(public >= 10, "a fresh catalog lists public images");
    assert_eq!(
        list["meta"]["total"].as_u64().unwrap() as usize,
        listed.len()
    );
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "stable order by id");
}

async fn filters_select_and_combine(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let a = s.create("a", &["web", "prod"]).await["id"]
        .as_u64()
        .unwrap();
    let b = s.create("b", &["web"]).await["id"].as_u64().unwrap();
    let other = s.token("bob", "image:read,image:create,tag:create").await;
    s.create_as(&other, "c", &["web"]).await;

    assert_eq!(
        ids(&s.get_json("/v2/images?private=true").await),
        vec![a, b]
    );
    assert_eq!(
        ids(&s.get_json("/v2/images?tag_name=web").await),
        vec![a, b]
    );
    assert_eq!(
        ids(&s.get_json("/v2/images?tag_name=prod&private=true").await),
        vec![a]
    );
    assert!(ids(&s
        .get_json("/v2/images?tag_name=prod&type=distribution")
        .await)
    .is_empty());

    let dist = s
        .get_json("/v2/images?type=distribution&per_page=200")
        .await;
    let dist = dist["images"].as_array().unwrap();
    assert!(dist.iter().all(|i| i["public"] == true));
    assert!(dist.iter().any(|i| i["slug"] == "ubuntu-24-04-x64"));
    assert!(dist.iter().any(|i| i["slug"] == "debian-12-x64"));
    let apps = s.get_json("/v2/images?type=application&per_page=200").await;
    let apps = apps["images"].as_array().unwrap();
    assert!(!apps.is_empty() && apps.iter().all(|i| i["public"] == true));
    let app_slugs: Vec<_> = apps.iter().map(|i| i["slug"].clone()).collect();
    assert!(
        dist.iter().all(|i| !app_slugs.contains(&i["slug"])),
        "the two listings are disjoint"
    );
}

async fn pages_carry_links_that_make_sense_and_the_full_total(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    for n in 0..5 {
        s.create(&format!("img{n}"), &["paged"]).await;
    }
    let q = "/v2/images?tag_name=paged&per_page=2";
    let p1 = s.get_json(q).await;
    assert_eq!(p1["meta"]["total"], 5);
    assert_eq!(p1["images"].as_array().unwrap().len(), 2);
    let pages = &p1["links"]["pages"];
    assert!(pages.get("first").is_none() && pages.get("prev").is_none());
    let next = pages["next"].as_str().unwrap();
    assert!(next.starts_with(&s.base), "links are absolute: {next}");
    assert!(pages["last"].as_str().unwrap().contains("page=3"));

    // Following `next` walks every image exactly once.
    let mut seen = ids(&p1);
    let mut url = next.to_owned();
    loop {
        let page: Value = s
            .http
            .get(&url)
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(ids(&page));
        assert_eq!(page["meta"]["total"], 5);
        assert!(page["links"]["pages"]["first"]
            .as_str()
            .unwrap()
            .contains("page=1"));
        match page["links"]["pages"].get("next") {
            Some(n) => url = n.as_str().unwrap().to_owned(),
            None => {
                assert!(page["links"]["pages"].get("last").is_none());
                break;
            }
        }
    }
    assert_eq!(seen.len(), 5);
    seen.dedup();
    assert_eq!(seen.len(), 5);

    let all = s.get_json("/v2/images?tag_name=paged").await;
    assert_eq!(
        all["links"],
        serde_json::json!({"pages": {}}),
        "one page holds all"
    );
    let beyond = s
        .get_json("/v2/images?tag_name=paged&per_page=2&page=9")
        .await;
    assert!(ids(&beyond).is_empty());
    assert_eq!(beyond["meta"]["total"], 5);
}

async fn public_url_sets_the_base_of_links(backend: Backend) {
    let s = TestServer::start_on(backend, |a| {
        a.public_url = Some("https://images.example.com/".into())
    })
    .await;
    let list = s.get_json("/v2/images?per_page=1").await;
    let next = list["links"]["pages"]["next"].as_str().unwrap();
    assert!(
        next.starts_with("https://images.example.com/v2/images?"),
        "{next}"
    );
}

async fn bad_list_parameters_are_named_and_empty_ones_ignored(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    for (query, field) in [
        ("per_page=0", "per_page"),
        ("per_page=201", "per_page"),
        ("per_page=abc", "per_page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("type=custom", "type"),
        ("private=yes", "private"),
    ] {
        let r = s.get(&format!("/v2/images?{query}")).await;
        let message = tidepool_server::testing::error_body(r, 400, "bad_request").await;
        assert!(message.starts_with(field), "{query}: {message}");
    }
    for n in 0..5 {
        s.create(&format!("img{n}"), &[]).await;
    }
    let list = s.get_json("/v2/images?page=&per_page=&unknown=1").await;
    assert!(list["meta"]["total"].as_u64().unwrap() > 20);
    assert_eq!(
        list["images"].as_array().unwrap().len(),
        20,
        "defaults to 20 per page"
    );
}

tidepool_server::on_every_backend!(
    list_holds_own_images_and_every_public_one_by_id,
    filters_select_and_combine,
    pages_carry_links_that_make_sense_and_the_full_total,
    public_url_sets_the_base_of_links,
    bad_list_parameters_are_named_and_empty_ones_ignored,
);
