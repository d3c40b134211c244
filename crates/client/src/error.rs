//! What can go wrong: an answer from the API that is an error, a request that never got an
//! answer, an answer that could not be read, or an import that failed.

use std::time::Duration;

/// The result of every call of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error answer from the API: the HTTP status and DigitalOcean's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status, e.g. 404.
    pub status: u16,
    /// DigitalOcean's short code for the status: `not_found`, `unauthorized`, …
    pub id: String,
    /// What went wrong, in the server's words.
    pub message: String,
    /// The request's id in the server's logs, to quote when asking for help.
    pub request_id: Option<String>,
    /// How long the server asked to wait before trying again (`retry-after`), if it did.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} {}", self.message, self.status, self.id)?;
        if let Some(request_id) = &self.request_id {
            write!(f, ", request {request_id}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ApiError {}

/// Every error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with a 4xx or 5xx status (after any retries).
    #[error("{0}")]
    Api(ApiError),
    /// No answer: the connection failed, timed out or broke (after any retries).
    #[error("cannot reach {url}: {source}")]
    Transport {
        /// The URL that was requested (without credentials).
        url: String,
        /// What the HTTP library said.
        #[source]
        source: reqwest::Error,
    },
    /// A success answer whose body is not what the API documents.
    #[error("unexpected answer from {url} (HTTP {status}): {detail}")]
    Decode {
        /// The URL that was requested.
        url: String,
        /// The HTTP status of the answer.
        status: u16,
        /// What did not fit.
        detail: String,
    },
    /// The import of an image failed: its status became `deleted` (or `retired`) while it was
    /// awaited. `message` is the image's `error_message` when it has one.
    #[error("import of image {id} failed: {message}")]
    ImportFailed {
        /// The image.
        id: u64,
        /// The image's `error_message`, or what happened when it has none.
        message: String,
    },
    /// The image was not available before the deadline given to the wait.
    #[error("image {id} was not available after {waited:?} (status {status})")]
    WaitTimedOut {
        /// The image.
        id: u64,
        /// How long was waited.
        waited: Duration,
        /// The last status seen.
        status: tidepool_api::ImageStatus,
    },
    /// The client is not set up right: a missing token, a base URL that is not a URL.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The HTTP status of an API error; `None` for the other kinds.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|e| e.status)
    }

    /// The API's error, when this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the API said 404: the image does not exist or is not the caller's.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the API refused the token (401) or its scopes (403).
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }
}
