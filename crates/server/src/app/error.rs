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
    /// The catalog's disk is full: the request was not carried out, and an operator must make
    /// room. `internal` is logged, never sent to the client.
    #[error("The service is out of storage space; try again later.")]
    OutOfSpace { internal: String },
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
        match err {
            CatalogError::OutOfSpace(_) => Error::OutOfSpace {
                internal: err.to_string(),
            },
            err => Error::internal(err),
        }
    }
}

pub type AppResult<T> = Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_catalog_is_out_of_space_and_other_faults_internal() {
        let full = Error::from(CatalogError::OutOfSpace("database or disk is full".into()));
        assert!(
            matches!(&full, Error::OutOfSpace { internal } if internal.contains("disk is full"))
        );
        let broken = Error::from(CatalogError::Corrupt("x".into()));
        assert!(matches!(broken, Error::Internal { .. }));
    }
}
