//! The one place where an application error becomes an HTTP status and a DigitalOcean error
//! body: `{"id": …, "message": …, "request_id": …}`.

use crate::app::Error;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tidepool_api::ErrorBody;

tokio::task_local! {
    /// The id of the request being served, for error bodies and logs.
    pub static REQUEST_ID: String;
}

impl Error {
    fn status_and_id(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity"),
            Error::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "request_entity_too_large")
            }
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Error::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, id) = self.status_and_id();
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        if let Error::Internal { internal } = &self {
            // The details stay in the log; the client gets the request id to quote.
            tracing::error!(
                request_id = request_id.as_deref().unwrap_or("-"),
                "internal error: {internal}"
            );
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
