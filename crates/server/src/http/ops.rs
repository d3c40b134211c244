//! The operator's endpoints: `/healthz` (the process serves), `/readyz` (it can do its work) and
//! `/metrics` (Prometheus). None needs an API token or counts against a rate limit; `/metrics`
//! may be given a token of its own.

use super::HttpState;
use crate::app::unix_now;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub async fn readyz(State(state): State<HttpState>) -> Response {
    let verdict = state.app.readiness().await;
    let ready = verdict.ready();
    let checks: serde_json::Map<String, serde_json::Value> = verdict
        .checks
        .iter()
        .map(|check| {
            let mut body = json!({
                "status": if check.problem.is_none() { "ok" } else { "failing" },
                "latency_ms": (check.latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            });
            if let Some(problem) = check.problem {
                body["error"] = json!(problem);
            }
            (check.name.to_owned(), body)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": checks,
    });
    (status, Json(body)).into_response()
}

/// The Prometheus text format's media type, version included, as scrapers ask for it.
const EXPOSITION_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.metrics_token_hash {
        // Hashes are compared, so the time the comparison takes says nothing of the token.
        let offered = super::gate::bearer(&headers).map(crate::auth::token_hash);
        if offered.as_deref() != Some(&**expected) {
            let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
            return (
                StatusCode::UNAUTHORIZED,
                challenge,
                "a metrics token is required\n",
            )
                .into_response();
        }
    }
    let metrics = state.app.metrics();
    // The queue is the catalog's, shared by every replica: read when scraped rather than kept.
    match state.app.catalog().job_queue_stats(unix_now()).await {
        Ok(stats) => metrics.set_jobs_queued(crate::metrics::IMPORT, stats.queued),
        Err(err) => tracing::debug!("metrics: cannot count queued jobs: {err}"),
    }
    ([(header::CONTENT_TYPE, EXPOSITION_TYPE)], metrics.encode()).into_response()
}
