//! The HTTP face of the application: routes, the request log and metrics, the request gate,
//! parameters and errors.

pub mod error;
mod extract;
mod gate;
mod images;
pub mod observe;
mod ops;
mod params;
pub mod request_log;
pub mod serve;

use crate::app::rate_limit::RateLimiter;
use crate::app::App;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, Uri};
use axum::routing::get;
use axum::{middleware, Router};
use std::sync::Arc;

/// Create and update bodies are a few hundred bytes; anything near this is not a real client.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct HttpState {
    pub app: App,
    pub limiter: Arc<RateLimiter>,
    /// The absolute base of pagination links; derived from the Host header when not set.
    pub public_url: Option<Arc<str>>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// The hash of the token `/metrics` requires, if it requires one.
    pub metrics_token_hash: Option<Arc<str>>,
    /// How the request log line is written.
    pub log_format: crate::config::LogFormat,
}

impl HttpState {
    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        // The Host header goes into links we hand back, so only a plausible host:port is used.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            })
            .unwrap_or("localhost");
        let https = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        format!("{}://{host}", if https { "https" } else { "http" })
    }
}

/// DigitalOcean's API answers `/v2/images/` as `/v2/images` (pydo's list and delete send the
/// slash): trailing slashes are dropped before routing, so that each route, and its label in the
/// metrics and logs, is one template. `None` when the path has none.
pub(crate) fn without_trailing_slash(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    if path.len() <= 1 || !path.ends_with('/') {
        return None;
    }
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let path_and_query = match uri.query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// The API, with `/healthz` and `/readyz` beside it, and `/metrics` too unless it has a listener
/// of its own (`metrics_here`).
pub fn router(state: HttpState, metrics_here: bool) -> Router {
    let api = Router::new()
        .route(
            "/v2/images",
            get(images::image_list).post(images::image_create),
        )
        .route(
            "/v2/images/{image_id}",
            // POST updates too: some clients (DigitalOcean's TypeScript one) send their update
            // that way, and DigitalOcean accepts it.
            get(images::image_get)
                .put(images::image_update)
                .post(images::image_update)
                .delete(images::image_delete),
        )
        // A tidepool extension: DigitalOcean has no progress of an import.
        .route(
            "/v2/images/{image_id}/import",
            get(images::image_import_progress),
        )
        .fallback(images::not_found)
        .method_not_allowed_fallback(images::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), gate::gate));
    let mut ops = probes();
    if metrics_here {
        ops = ops.route("/metrics", get(ops::metrics));
    }
    // After the gate: the operator's endpoints need no token and are not rate limited. The
    // request log and metrics cover everything, so they wrap the whole router.
    api.merge(ops)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// The metrics listener's router (`--metrics-listen`): `/metrics` and the probes only.
pub fn metrics_router(state: HttpState) -> Router {
    probes()
        .route("/metrics", get(ops::metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

fn probes() -> Router<HttpState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
}
