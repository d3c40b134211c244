//! The HTTP face of the application: routes, the request gate, parameters and errors.

pub mod error;
mod extract;
mod gate;
mod images;
mod params;
pub mod serve;

use crate::app::rate_limit::RateLimiter;
use crate::app::App;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap};
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
    pub public_url: Option<String>,
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

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route(
            "/v2/images",
            get(images::image_list).post(images::image_create),
        )
        .route(
            "/v2/images/{image_id}",
            get(images::image_get)
                .put(images::image_update)
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
        .layer(middleware::from_fn_with_state(state.clone(), gate::gate))
        .with_state(state)
}
