//! Start-up and shutdown: every background task the server starts ends when it stops.

use std::collections::BTreeSet;
use std::time::Duration;
use tidepool_server::testing::{Backend, TestServer};

async fn shutdown_joins_every_background_task(backend: Backend) {
    let s = TestServer::start_on(backend, |a| a.import.import_workers = Some(2)).await;
    let started: BTreeSet<String> = s.server.background_tasks.iter().cloned().collect();
    assert_eq!(
        started.len(),
        5,
        "two workers, sweep, rate sync, listener: {started:?}"
    );
    for task in ["orphan sweep", "rate-count sync", "job listener"] {
        assert!(started.contains(task), "{task} missing from {started:?}");
    }
    assert_eq!(
        started
            .iter()
            .filter(|t| t.starts_with("import worker "))
            .count(),
        2
    );
    // A request first, so that the server has served something before it stops.
    assert_eq!(s.get("/v2/images?per_page=1").await.status(), 200);
    let report = tokio::time::timeout(Duration::from_secs(20), s.server.shutdown())
        .await
        .expect("shutdown ends within 20 s")
        .expect("a clean shutdown");
    let ended: BTreeSet<String> = report.tasks_ended.into_iter().collect();
    assert_eq!(ended, started, "every task started has ended");
}

tidepool_server::on_every_backend!(shutdown_joins_every_background_task);
