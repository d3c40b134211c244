//! Every way `tidepool images` can fail, as one line for a person and an exit code for a
//! script.

use std::process::ExitCode;
use tidepool_client::Error;

/// Shown under `--help`; the README has the same table.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other failure: the server refused the request, could not be reached, or timed out
  2  bad arguments
  3  authentication failed: no token, a token that was not accepted, or one without the scope
  4  image not found
  5  the import failed (create --wait, wait)";

/// The exit codes above, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything not below.
    Failure = 1,
    /// 2: bad arguments (clap uses 2 for its own refusals too).
    Usage = 2,
    /// 3: no token, a token refused, or a scope missing.
    Auth = 3,
    /// 4: the image does not exist or is not the caller's.
    NotFound = 4,
    /// 5: the import ended `deleted` with an error message.
    ImportFailed = 5,
}

/// A failure of a command: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// How the process exits.
    pub exit: Exit,
    /// One line for stderr; empty when already printed.
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// Prints `tidepool: MESSAGE` on stderr (nothing for an empty message, already printed)
    /// and gives the exit code.
    pub fn report(&self) -> ExitCode {
        if !self.message.is_empty() {
            eprintln!("tidepool: {}", self.message);
        }
        ExitCode::from(self.exit as u8)
    }

    /// A client error, about `image` (an id or slug) when the call named one.
    pub fn from_client(err: Error, image: Option<&str>) -> Failure {
        match &err {
            Error::Api(api) => match (api.status, image) {
                (401, _) => Failure::new(
                    Exit::Auth,
                    "authentication failed: the token was not accepted (401 unauthorized)",
                ),
                (403, _) => Failure::new(Exit::Auth, format!("permission denied: {api}")),
                (404, Some(image)) => {
                    Failure::new(Exit::NotFound, format!("image {image} not found"))
                }
                (404, None) => Failure::new(
                    Exit::NotFound,
                    format!("not found: {api}; is --api-url the root of an Images API?"),
                ),
                (429, _) => Failure::new(Exit::Failure, format!("rate limited: {api}")),
                _ => Failure::new(Exit::Failure, err.to_string()),
            },
            Error::ImportFailed { .. } => Failure::new(Exit::ImportFailed, err.to_string()),
            Error::Transport { url, source } => {
                // reqwest's own words are "error sending request"; the cause is deepest.
                let mut cause: &dyn std::error::Error = source;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                Failure::new(Exit::Failure, format!("cannot reach {url}: {cause}"))
            }
            Error::Config(message) => Failure::new(Exit::Usage, message.clone()),
            _ => Failure::new(Exit::Failure, err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidepool_client::ApiError;

    fn api(status: u16, id: &str) -> Error {
        Error::Api(ApiError {
            status,
            id: id.into(),
            message: "words".into(),
            request_id: Some("r-1".into()),
            retry_after: None,
        })
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        let f = Failure::from_client(api(401, "unauthorized"), Some("7"));
        assert_eq!(f.exit, Exit::Auth);
        let f = Failure::from_client(api(404, "not_found"), Some("42"));
        assert_eq!(
            (f.exit, f.message.as_str()),
            (Exit::NotFound, "image 42 not found")
        );
        let f = Failure::from_client(api(422, "unprocessable_entity"), None);
        assert_eq!(f.exit, Exit::Failure);
        assert_eq!(f.message, "words (422 unprocessable_entity, request r-1)");
        let f = Failure::from_client(
            Error::ImportFailed {
                id: 3,
                message: "HTTP 404 from the image URL".into(),
            },
            Some("3"),
        );
        assert_eq!(f.exit, Exit::ImportFailed);
        assert!(f.message.ends_with("HTTP 404 from the image URL"));
    }
}
