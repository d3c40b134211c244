//! Extractors that reject with the API's own error, so that handlers receive parsed values and
//! nothing else.

use super::error::Error;
use super::params;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use tidepool_api::ImageRef;

/// The `{image_id}` of a path as it was sent.
async fn raw_image_id<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, Error> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(id)| id)
        .map_err(|e| Error::BadRequest(format!("image_id: {}", e.body_text())))
}

/// `GET /v2/images/{image_id}` takes an id or the slug of a public image.
pub struct ImageRefPath(pub ImageRef);

impl<S: Send + Sync> FromRequestParts<S> for ImageRefPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Ok(ImageRefPath(params::image_ref(
            &raw_image_id(parts, state).await?,
        )))
    }
}

/// Updates, deletes and the import progress take an integer id only.
pub struct ImageIdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ImageIdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Ok(ImageIdPath(params::image_id(
            &raw_image_id(parts, state).await?,
        )?))
    }
}

/// A JSON object body, whatever the request's content type says: DigitalOcean's clients do
/// not all send `application/json`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| match e {
                BytesRejection::FailedToBufferBody(_)
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    Error::PayloadTooLarge(format!(
                        "the request body is larger than {} bytes",
                        super::MAX_BODY_BYTES
                    ))
                }
                other => Error::BadRequest(format!(
                    "could not read the request body: {}",
                    other.body_text()
                )),
            })?;
        params::json_body(&bytes).map(JsonBody)
    }
}
