//! What every API request passes through: authentication and the rate limit, and the headers
//! DigitalOcean puts on every answer.

use super::error::Error;
use super::observe::REQUEST;
use super::HttpState;
use crate::app::{self, unix_now};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The secret of `Authorization: Bearer …` (the scheme is case-insensitive, as in RFC 7235).
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, secret) = value.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

pub async fn gate(State(state): State<HttpState>, mut request: Request, next: Next) -> Response {
    let (request_id, client) = REQUEST
        .try_with(|r| (Some(r.id), r.client))
        .unwrap_or_default();
    let caller = match bearer(request.headers()) {
        Some(secret) => state.app.authenticate(secret, request_id).await,
        None => Err(app::Error::Unauthenticated),
    };
    // Requests without a valid token are limited per client address, which also slows down
    // anyone guessing tokens.
    let key = match &caller {
        Ok(c) => format!("token:{}", c.token_id),
        Err(_) => {
            format!(
                "anonymous:{}",
                client.map(|ip| ip.to_string()).unwrap_or_default()
            )
        }
    };
    let verdict = state.limiter.check(&key, unix_now());
    let mut response = if !verdict.allowed {
        state.app.metrics().rate_limited();
        Error::RateLimited {
            retry_after_secs: verdict.retry_after,
        }
        .into_response()
    } else {
        match caller {
            Ok(caller) => {
                let _ = REQUEST.try_with(|r| r.account.set(caller.account_name.clone()));
                request.extensions_mut().insert(caller);
                next.run(request).await
            }
            Err(err) => Error::from(err).into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(verdict.limit));
    headers.insert(
        RATELIMIT_REMAINING.clone(),
        HeaderValue::from(verdict.remaining),
    );
    headers.insert(RATELIMIT_RESET.clone(), HeaderValue::from(verdict.reset));
    response
}
