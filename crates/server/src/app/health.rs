//! Readiness: whether this replica can serve, checked against what every request needs (the
//! catalog) and what imports and downloads need (the blob store).
//!
//! A probe every second from each of several load balancers must not become a load of its own,
//! so one check runs at a time and its verdict is reused for a second; each part of it has a
//! deadline, so a database that hangs makes the replica unready instead of hanging the probe.

use super::App;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long one verdict is reused.
const VERDICT_TTL: Duration = Duration::from_secs(1);
/// How long each part of the check may take before it counts as failed.
const CHECK_DEADLINE: Duration = Duration::from_secs(2);

/// The outcome of one part of the check. Its `problem` is a fixed sentence: no address, path
/// or credential of the store reaches the probe's body (the log has the detail).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub latency: Duration,
    pub problem: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub checks: Vec<Check>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.problem.is_none())
    }
}

#[derive(Default)]
pub(super) struct ReadinessCache {
    last: Mutex<Option<(Instant, Readiness)>>,
    /// The last verdict, so that the log says when it changes rather than at every probe.
    was_ready: AtomicBool,
}

async fn timed<E: std::fmt::Display>(
    name: &'static str,
    deadline_problem: &'static str,
    error_problem: &'static str,
    check: impl std::future::Future<Output = Result<(), E>>,
) -> Check {
    let start = Instant::now();
    let problem = match tokio::time::timeout(CHECK_DEADLINE, check).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => {
            tracing::warn!(check = name, "readiness check failed: {err}");
            Some(error_problem)
        }
        Err(_) => {
            tracing::warn!(
                check = name,
                "readiness check timed out after {} s",
                CHECK_DEADLINE.as_secs()
            );
            Some(deadline_problem)
        }
    };
    Check {
        name,
        latency: start.elapsed(),
        problem,
    }
}

impl App {
    /// Whether this replica can serve requests now.
    pub async fn readiness(&self) -> Readiness {
        let cache = &self.inner.readiness;
        let mut last = cache.last.lock().await;
        if let Some((at, verdict)) = &*last {
            if at.elapsed() < VERDICT_TTL {
                return verdict.clone();
            }
        }
        let (catalog, blobs) = tokio::join!(
            timed(
                "catalog",
                "the catalog did not answer within 2 s",
                "the catalog answered with an error",
                self.catalog().ping(),
            ),
            timed(
                "blob_store",
                "the blob store did not answer within 2 s",
                "the blob store is unreachable or refused the check",
                self.blobs().check(),
            ),
        );
        let verdict = Readiness {
            checks: vec![catalog, blobs],
        };
        let ready = verdict.ready();
        if cache.was_ready.swap(ready, Ordering::Relaxed) != ready {
            if ready {
                tracing::info!("ready: the catalog and the blob store answer");
            } else {
                tracing::warn!("not ready: {:?}", verdict.checks);
            }
        }
        *last = Some((Instant::now(), verdict.clone()));
        verdict
    }
}
