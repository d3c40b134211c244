//! The contract every catalog backend keeps. Each backend's tests call `test_suite` on a fresh,
//! empty catalog; a failing assertion names the behaviour that broke.

use super::*;
use tidepool_api::{Distribution, ImageStatus, ImageType, ListType, Region, Scope, Scopes};

/// The time of the suite's writes, unix seconds.
pub const T0: i64 = 1_700_000_000;

pub fn new_custom(owner: AccountId, name: &str, tags: &[&str]) -> NewImage {
    NewImage {
        owner: Some(owner),
        name: name.into(),
        distribution: Distribution::Ubuntu,
        slug: None,
        public: false,
        listing: None,
        regions: vec![],
        created_at: 1_700_000_000,
        kind: ImageType::Custom,
        min_disk_size: None,
        size_gigabytes: None,
        description: String::new(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        status: ImageStatus::New,
        job: Some(NewJob {
            url: format!("http://images.example/{name}.qcow2"),
            region: Region::Nyc3,
            request_id: Some(format!("request-{name}")),
        }),
    }
}

pub fn new_public(slug: &str, listing: ListType) -> NewImage {
    NewImage {
        owner: None,
        slug: Some(slug.into()),
        public: true,
        listing: Some(listing),
        regions: vec![Region::Nyc3, Region::Ams3],
        kind: ImageType::Snapshot,
        status: ImageStatus::Available,
        job: None,
        min_disk_size: Some(7),
        size_gigabytes: Some(0.5),
        ..new_custom(AccountId(0), slug, &[])
    }
}

fn filter(viewer: AccountId) -> ImageFilter {
    ImageFilter {
        viewer,
        private_only: false,
        listing: None,
        tag: None,
        offset: 0,
        limit: 100,
    }
}

fn ids(images: &[ImageRecord]) -> Vec<i64> {
    images.iter().map(|i| i.id).collect()
}

pub async fn test_suite(catalog: Arc<dyn Catalog>) {
    job_suite(catalog.clone()).await;
    accounts_and_tokens(&*catalog).await;
    images_and_lists(&*catalog).await;
    meta_values(&*catalog).await;
    slugs_are_unique(&*catalog).await;
}

async fn accounts_and_tokens(c: &dyn Catalog) {
    let a = c.account_ensure("alice", T0).await.unwrap();
    assert_eq!(
        c.account_ensure("alice", T0).await.unwrap(),
        a,
        "account_ensure is idempotent"
    );
    let b = c.account_ensure("bob", T0).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(c.token_count().await.unwrap(), 0);
    let scopes: Scopes = "image:read".parse().unwrap();
    c.token_insert(a, "hash-a", scopes, T0).await.unwrap();
    let t = c
        .token_lookup("hash-a")
        .await
        .unwrap()
        .expect("token found by its hash");
    assert_eq!(t.account, a);
    assert_eq!(
        t.account_name, "alice",
        "a token names its account, for request logs"
    );
    assert!(t.scopes.contains(Scope::ImageRead) && !t.scopes.contains(Scope::ImageCreate));
    assert!(c.token_lookup("hash-x").await.unwrap().is_none());
    assert_eq!(c.token_count().await.unwrap(), 1);
}

async fn images_and_lists(c: &dyn Catalog) {
    let alice = c.account_ensure("alice", T0).await.unwrap();
    let bob = c.account_ensure("bob", T0).await.unwrap();
    let dist = c
        .image_insert(new_public("debian-12-x64", ListType::Distribution))
        .await
        .unwrap();
    let app = c
        .image_insert(new_public("docker-20-04", ListType::Application))
        .await
        .unwrap();
    let a1 = c
        .image_insert(new_custom(alice, "a1", &["prod", "web"]))
        .await
        .unwrap();
    let a2 = c
        .image_insert(new_custom(alice, "a2", &["web"]))
        .await
        .unwrap();
    let b1 = c
        .image_insert(new_custom(bob, "b1", &["prod"]))
        .await
        .unwrap();

    assert_eq!(a1.tags, vec!["prod", "web"]);
    assert_eq!(a1.owner, Some(alice));
    assert_eq!(
        c.image_get(a1.id).await.unwrap().unwrap(),
        a1,
        "get returns what insert did"
    );
    let by_slug = c.image_get_by_slug("debian-12-x64").await.unwrap().unwrap();
    assert_eq!(by_slug.id, dist.id);
    assert_eq!(by_slug.regions, vec![Region::Nyc3, Region::Ams3]);
    assert!(c.image_get(i64::MAX).await.unwrap().is_none());

    let (all, total) = c.image_list(&filter(alice)).await.unwrap();
    assert_eq!(
        ids(&all),
        vec![dist.id, app.id, a1.id, a2.id],
        "own plus public, by id"
    );
    assert_eq!(total, 4);
    let (own, _) = c
        .image_list(&ImageFilter {
            private_only: true,
            ..filter(alice)
        })
        .await
        .unwrap();
    assert_eq!(ids(&own), vec![a1.id, a2.id]);
    let (d, _) = c
        .image_list(&ImageFilter {
            listing: Some(ListType::Distribution),
            ..filter(alice)
        })
        .await
        .unwrap();
    assert_eq!(ids(&d), vec![dist.id]);
    let (tagged, n) = c
        .image_list(&ImageFilter {
            tag: Some("prod".into()),
            ..filter(alice)
        })
        .await
        .unwrap();
    assert_eq!(
        (ids(&tagged), n),
        (vec![a1.id], 1),
        "bob's prod image is not alice's"
    );
    let (page, total) = c
        .image_list(&ImageFilter {
            offset: 1,
            limit: 2,
            ..filter(alice)
        })
        .await
        .unwrap();
    assert_eq!(
        (ids(&page), total),
        (vec![app.id, a1.id], 4),
        "total counts every page"
    );
    let (combined, _) = c
        .image_list(&ImageFilter {
            private_only: true,
            tag: Some("web".into()),
            ..filter(bob)
        })
        .await
        .unwrap();
    assert!(combined.is_empty(), "filters combine");

    let changed = c
        .image_update(
            a2.id,
            &ImageChanges {
                name: Some("renamed".into()),
                status: Some(ImageStatus::Deleted),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (changed.name.as_str(), changed.status),
        ("renamed", ImageStatus::Deleted)
    );
    let (after, total) = c
        .image_list(&ImageFilter {
            private_only: true,
            ..filter(alice)
        })
        .await
        .unwrap();
    assert_eq!(
        (ids(&after), total),
        (vec![a1.id], 1),
        "deleted images are not listed"
    );
    assert!(c
        .image_update(i64::MAX, &ImageChanges::default())
        .await
        .unwrap()
        .is_none());

    let retired = ImageChanges {
        status: Some(ImageStatus::Retired),
        ..Default::default()
    };
    c.image_update(app.id, &retired).await.unwrap();
    let (listed, _) = c.image_list(&filter(bob)).await.unwrap();
    assert_eq!(
        ids(&listed),
        vec![dist.id, b1.id],
        "retired images are not listed"
    );
    let public = c.image_list_public().await.unwrap();
    assert_eq!(
        ids(&public),
        vec![dist.id, app.id],
        "the operator sees retired public images"
    );

    let removed = c.image_delete(b1.id).await.unwrap().unwrap();
    assert_eq!(removed.id, b1.id);
    assert!(c.image_get(b1.id).await.unwrap().is_none());
    assert!(
        c.image_delete(b1.id).await.unwrap().is_none(),
        "second delete finds nothing"
    );
    let (prod, _) = c
        .image_list(&ImageFilter {
            tag: Some("prod".into()),
            ..filter(bob)
        })
        .await
        .unwrap();
    assert!(prod.is_empty(), "a deleted image's tags go with it");
}

async fn meta_values(c: &dyn Catalog) {
    c.ping().await.expect("a working catalog answers a ping");
    assert_eq!(c.meta_get("k").await.unwrap(), None);
    c.meta_set("k", "1").await.unwrap();
    c.meta_set("k", "2").await.unwrap();
    assert_eq!(c.meta_get("k").await.unwrap().as_deref(), Some("2"));
}

async fn slugs_are_unique(c: &dyn Catalog) {
    let taken = "ubuntu-24-04-x64";
    let first = c
        .image_insert(new_public(taken, ListType::Distribution))
        .await
        .unwrap();
    let public = c.image_list_public().await.unwrap();
    let clash = NewImage {
        name: "another".into(),
        tags: vec!["clash".into()],
        ..new_public(taken, ListType::Application)
    };
    let err = c.image_insert(clash).await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::SlugTaken(s) if s == taken),
        "a second image of a slug is refused as SlugTaken: {err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("the slug {taken:?} is already taken")
    );
    assert_eq!(
        c.image_list_public().await.unwrap(),
        public,
        "a refused insert stores nothing"
    );
    let (tagged, _) = c
        .image_list(&ImageFilter {
            tag: Some("clash".into()),
            ..filter(AccountId(0))
        })
        .await
        .unwrap();
    assert!(tagged.is_empty(), "nor the refused image's tags");

    let other = c
        .image_insert(new_public("fedora-40-x64", ListType::Distribution))
        .await
        .unwrap();
    let onto_taken = ImageChanges {
        name: Some("renamed".into()),
        slug: Some(Some(taken.into())),
        ..Default::default()
    };
    let err = c.image_update(other.id, &onto_taken).await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::SlugTaken(s) if s == taken),
        "an update to a taken slug is refused as SlugTaken: {err:?}"
    );
    assert_eq!(
        c.image_get(other.id).await.unwrap().unwrap(),
        other,
        "a refused update changes nothing, not even its other fields"
    );
    assert_eq!(
        c.image_get_by_slug(taken).await.unwrap().unwrap(),
        first,
        "the slug stays with the image that had it"
    );
}

pub async fn job_suite(c: Arc<dyn Catalog>) {
    let owner = c.account_ensure("jobs", T0).await.unwrap();
    let a = c.image_insert(new_custom(owner, "ja", &[])).await.unwrap();
    let b = c.image_insert(new_custom(owner, "jb", &[])).await.unwrap();
    let t = 1_800_000_000;

    let first = c
        .job_claim("w1", 30, t)
        .await
        .unwrap()
        .expect("a queued job is claimed");
    assert_eq!(
        (first.image_id, first.attempts, first.region),
        (a.id, 1, Region::Nyc3)
    );
    assert_eq!(
        (
            first.request_id.as_deref(),
            first.taken_over_from.as_deref()
        ),
        (Some("request-ja"), None),
        "a claim carries the create's request id; a queued job is no takeover"
    );
    assert_eq!(
        c.job_queue_stats(t).await.unwrap(),
        JobQueueStats {
            queued: 1,
            running: 1
        }
    );
    assert_eq!(
        c.image_get(a.id).await.unwrap().unwrap().status,
        ImageStatus::Pending
    );
    let second = c.job_claim("w2", 30, t).await.unwrap().unwrap();
    assert_eq!(second.image_id, b.id, "a held job is not handed out twice");
    assert!(c.job_claim("w3", 30, t).await.unwrap().is_none());

    let progress = JobProgress {
        bytes_read: 10,
        bytes_total: Some(100),
    };
    assert!(c
        .job_heartbeat(a.id, "w1", 30, t + 20, progress)
        .await
        .unwrap());
    assert_eq!(c.job_progress(a.id).await.unwrap(), Some(progress));
    assert!(
        !c.job_heartbeat(a.id, "w2", 30, t + 20, progress)
            .await
            .unwrap(),
        "only the holder renews"
    );

    // w2 dies: its lease runs out and w3 takes the job over.
    let taken = c
        .job_claim("w3", 30, t + 31)
        .await
        .unwrap()
        .expect("expired lease is taken over");
    assert_eq!((taken.image_id, taken.attempts), (b.id, 2));
    assert_eq!(
        taken.taken_over_from.as_deref(),
        Some("w2"),
        "a claim of an expired lease names the worker it took over from"
    );
    assert_eq!(
        c.job_queue_stats(t + 31).await.unwrap(),
        JobQueueStats {
            queued: 0,
            running: 2
        },
        "w1 renewed at t+20, w3 holds b"
    );
    let failed = JobResult::Failed {
        message: "late".into(),
    };
    assert!(
        !c.job_complete(b.id, "w2", &failed).await.unwrap(),
        "a lost lease cannot complete"
    );
    let done = JobResult::Available {
        region: Region::Sfo3,
        format: "qcow2".into(),
        virtual_size: 3 * (1 << 30) + 1,
        stored_bytes: 1_610_612_736,
        sha256: "ab".repeat(32),
        blob_key: "images/2/x".into(),
    };
    assert!(c.job_complete(b.id, "w3", &done).await.unwrap());
    let image = c.image_get(b.id).await.unwrap().unwrap();
    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(image.regions, vec![Region::Sfo3]);
    assert_eq!(image.min_disk_size, Some(4));
    assert_eq!(image.size_gigabytes, Some(1.5));
    assert_eq!(image.blob_key.as_deref(), Some("images/2/x"));
    assert!(!c.job_exists(b.id).await.unwrap());
    assert!(
        !c.job_complete(b.id, "w3", &done).await.unwrap(),
        "completes once"
    );

    // Released with a backoff: not claimable before it.
    assert!(c
        .job_release(a.id, "w1", t + 100, "network down")
        .await
        .unwrap());
    assert!(c.job_claim("w4", 30, t + 50).await.unwrap().is_none());
    assert_eq!(
        c.job_queue_stats(t + 50).await.unwrap(),
        JobQueueStats {
            queued: 1,
            running: 0
        },
        "a job waiting out its backoff is queued"
    );
    let again = c.job_claim("w4", 30, t + 100).await.unwrap().unwrap();
    assert_eq!((again.image_id, again.attempts), (a.id, 2));
    assert_eq!(
        again.taken_over_from, None,
        "a job given back is no takeover"
    );

    // The image is deleted mid-import: heartbeat and completion both see it gone.
    c.image_delete(a.id).await.unwrap();
    assert!(!c
        .job_heartbeat(a.id, "w4", 30, t + 110, progress)
        .await
        .unwrap());
    assert!(!c.job_complete(a.id, "w4", &failed).await.unwrap());

    let f = c.image_insert(new_custom(owner, "jf", &[])).await.unwrap();
    c.job_claim("w5", 30, t).await.unwrap().unwrap();
    let bad = JobResult::Failed {
        message: "qcow2 image refers to a backing file".into(),
    };
    assert!(c.job_complete(f.id, "w5", &bad).await.unwrap());
    let image = c.image_get(f.id).await.unwrap().unwrap();
    assert_eq!(
        (image.status, image.error_message.as_str()),
        (ImageStatus::Deleted, "qcow2 image refers to a backing file")
    );
}

/// The PostgreSQL server tests may use, from `TIDEPOOL_TEST_DATABASE_URL`
/// (e.g. `postgres://postgres@127.0.0.1:5432/test`). None, with a visible notice, when unset.
pub fn postgres_admin_url(test: &str) -> Option<String> {
    match std::env::var("TIDEPOOL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            tidepool_testkit::skip(
                test,
                "set TIDEPOOL_TEST_DATABASE_URL=postgres://… (scripts/test does) to run it against PostgreSQL",
            );
            None
        }
    }
}

/// A new, empty database on the test server, so that tests running at once never meet.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let pid = std::process::id();
    let name = format!("tidepool_test_{pid}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    // Databases of test processes that are gone are dropped, so runs do not pile them up.
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'tidepool_test_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    for db in existing {
        let owner = db.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if owner.is_some_and(|p| p != pid && !std::path::Path::new(&format!("/proc/{p}")).exists())
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    }
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&name);
    url.to_string()
}
