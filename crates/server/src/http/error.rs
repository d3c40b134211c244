//! The one place where an error becomes an HTTP status and a DigitalOcean error body:
//! `{"id": …, "message": …, "request_id": …}`. The application's errors arrive wrapped, beside
//! the failures only HTTP knows of (a query or body that does not parse, a method the path does
//! not take, the rate limit).

use crate::app;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tidepool_api::ErrorBody;

tokio::task_local! {
    /// The id of the request being served, for error bodies and logs.
    pub static REQUEST_ID: String;
}

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
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        if let Error::App(app::Error::Internal { internal }) = &self {
            // The details stay in the log (inside the request's span, with its id); the client
            // gets the request id to quote.
            tracing::error!("internal error: {internal}");
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
