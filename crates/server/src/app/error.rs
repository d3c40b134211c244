//! The one error of the application layer. The HTTP layer wraps it in its own error (with the
//! failures only HTTP knows of) and turns that into a status and a DigitalOcean error body in
//! exactly one place (`http::error`).

use tidepool_catalog::CatalogError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Unable to authenticate you.")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("The resource you requested could not be found.")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    /// Something broke inside tidepool. `internal` is logged, never sent to the client.
    #[error("Unexpected server-side error")]
    Internal { internal: String },
}

impl Error {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Error::Internal {
            internal: err.to_string(),
        }
    }
}

impl From<CatalogError> for Error {
    fn from(err: CatalogError) -> Self {
        Error::internal(err)
    }
}

pub type AppResult<T> = Result<T, Error>;
