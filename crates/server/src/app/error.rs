//! The one error of the application layer. The HTTP layer turns it into a status and a
//! DigitalOcean error body in exactly one place (`http::error`).

use crate::catalog::CatalogError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Unable to authenticate you.")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("The resource you requested could not be found.")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("This method is not allowed on this path.")]
    MethodNotAllowed,
    #[error("API rate limit exceeded.")]
    RateLimited { retry_after_secs: u64 },
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
