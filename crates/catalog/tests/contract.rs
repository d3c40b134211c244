//! The catalog contract, run against every backend: SQLite always, PostgreSQL when
//! `TIDEPOOL_TEST_DATABASE_URL` names a server (CI sets it).

use tidepool_catalog::{self as catalog, testing};

#[tokio::test]
async fn sqlite_catalog_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    testing::test_suite(catalog::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_catalog_keeps_the_contract() {
    let Some(admin) = testing::postgres_admin_url("postgres_catalog_keeps_the_contract") else {
        return;
    };
    let url = testing::fresh_postgres_database(&admin).await;
    testing::test_suite(catalog::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_migrations_are_safe_when_replicas_start_together() {
    let Some(admin) =
        testing::postgres_admin_url("postgres_migrations_are_safe_when_replicas_start_together")
    else {
        return;
    };
    let url = testing::fresh_postgres_database(&admin).await;
    let opens = (0..4).map(|_| catalog::open(&url));
    for opened in futures::future::join_all(opens).await {
        opened.expect("every replica opens the catalog");
    }
}

#[tokio::test]
async fn postgres_claims_hand_each_job_to_one_worker() {
    let Some(admin) = testing::postgres_admin_url("postgres_claims_hand_each_job_to_one_worker")
    else {
        return;
    };
    let url = testing::fresh_postgres_database(&admin).await;
    let c = catalog::open(&url).await.unwrap();
    let owner = c.account_ensure("race", testing::T0).await.unwrap();
    for n in 0..20 {
        c.image_insert(testing::new_custom(owner, &format!("r{n}"), &[]))
            .await
            .unwrap();
    }
    // Eight claimers at once, as eight replicas' workers would.
    let claims = (0..8).map(|w| {
        let c = c.clone();
        async move {
            let mut mine = vec![];
            while let Some(job) = c
                .job_claim(&format!("w{w}"), 60, 1_800_000_000)
                .await
                .unwrap()
            {
                mine.push(job.image_id);
            }
            mine
        }
    });
    let mut all: Vec<i64> = futures::future::join_all(claims)
        .await
        .into_iter()
        .flatten()
        .collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(
        (before, all.len()),
        (20, 20),
        "every job claimed exactly once"
    );
}

#[tokio::test]
async fn unknown_database_schemes_are_refused_with_the_accepted_forms() {
    let err = catalog::open("mysql://root@localhost/db")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("sqlite://") && err.contains("postgres://"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_one_clear_error_without_the_password() {
    let started = std::time::Instant::now();
    let err = catalog::open("postgres://u:secret@127.0.0.1:1/db")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot connect to PostgreSQL") && !err.contains("secret"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}
