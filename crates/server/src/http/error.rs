//! The one place where an error becomes an HTTP status and a DigitalOcean error body:
//! `{"id": …, "message": …, "request_id": …}`. The application's errors arrive wrapped, beside
//! the failures only HTTP knows of (a query or body that does not parse, a method the path does
//! not take, the rate limit).

use super::observe::REQUEST;
use crate::app;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tidepool_api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    App(#[from] app::Error),
    /// The query, path or body does not parse.
    #[error("{0}")]
    BadRequest(String),
    /// The body parses as JSON but a value has the wrong type or shape.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("This method is not allowed on this path.")]
    MethodNotAllowed,
    #[error("API rate limit exceeded.")]
    RateLimited { retry_after_secs: u64 },
}

pub type HttpResult<T> = Result<T, Error>;

impl Error {
    fn status_and_id(&self) -> (StatusCode, &'static str) {
        match self {
            Error::App(app::Error::Unauthenticated) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::App(app::Error::Forbidden(_)) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::App(app::Error::NotFound) => (StatusCode::NOT_FOUND, "not_found"),
            Error::App(app::Error::Invalid(_)) | Error::Invalid(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity")
            }
            Error::App(app::Error::Internal { .. }) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
            // 507 rather than 503: a full disk lasts until an operator makes room, and 503
            // tells clients to come back shortly. pydo (azure-core) retries a POST on 500, 503
            // and 504 only, so it reports a 507 at once; godo's optional retries (which doctl
            // and the Terraform provider turn on) take any 5xx but 501, so they retry either
            // code a bounded number of times. 507 also says exactly what is wrong to a human
            // reading the status alone, and no Retry-After is sent since no time is known.
            Error::App(app::Error::OutOfSpace { .. }) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "request_entity_too_large")
            }
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, id) = self.status_and_id();
        let request_id = REQUEST.try_with(|r| r.id.to_string()).ok();
        let quoted = request_id.as_deref().unwrap_or("-");
        match &self {
            // The details stay in the log, under the request id the client is given to quote.
            Error::App(app::Error::Internal { internal }) => {
                tracing::error!(request_id = quoted, "internal error: {internal}")
            }
            Error::App(app::Error::OutOfSpace { internal }) => {
                tracing::error!(request_id = quoted, "out of storage space: {internal}")
            }
            _ => {}
        }
        let body = ErrorBody {
            id: id.to_owned(),
            message: self.to_string(),
            request_id,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Error::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn out_of_space_is_a_507_that_says_so_and_names_no_internals() {
        let err = Error::App(app::Error::OutOfSpace {
            internal: "catalog database is out of space: /var/lib/tidepool/catalog.db".into(),
        });
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.id, "insufficient_storage");
        assert_eq!(
            body.message,
            "The service is out of storage space; try again later."
        );
    }
}
