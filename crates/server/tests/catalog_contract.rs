//! The catalog contract, run against every backend that is available here.

use tidepool_server::catalog::{self, testing::test_suite};

#[tokio::test]
async fn sqlite_catalog_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    test_suite(catalog::open(&url).await.unwrap()).await;
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
    let err = catalog::open("postgres://u:secret@localhost/db")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("not built yet") && !err.contains("secret"),
        "{err}"
    );
}
