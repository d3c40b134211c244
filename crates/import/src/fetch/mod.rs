//! Fetching an image URL: http(s) only, public addresses only (unless allowed), at most
//! [`MAX_REDIRECTS`] redirects, retries with backoff for transient failures, and a stall timeout
//! while streaming the body.
//!
//! The address filter is enforced three times, because each alone has a gap: on the URL's IP
//! literal (the resolver never sees those), in the resolver (what a name resolves to, at connect
//! time), and on the peer address of the connection that answered.

pub mod guard;
mod resolve;

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::{redirect, Client, Response, StatusCode};
use tokio_util::sync::CancellationToken;
use url::Url;

pub use guard::{Refused, MAX_REDIRECTS};
pub use resolve::PublicOnlyResolver;

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub allow_private_networks: bool,
    /// Per attempt: connecting and receiving the response headers.
    pub timeout: Duration,
    /// How long the body may send nothing before the download is given up.
    pub stall_timeout: Duration,
    /// Further attempts after the first, for connection failures, timeouts and 5xx answers.
    pub retries: u32,
    /// The first retry waits about this long; each later one twice as long (with jitter).
    pub retry_base_delay: Duration,
}

/// Why fetching failed. Messages are for the user and never contain the URL: it may carry
/// credentials in its userinfo or query.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the image URL is not a valid URL")]
    InvalidUrl,
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("HTTP {} from the image URL", .0.as_u16())]
    Status(StatusCode),
    #[error("could not connect to the image URL: {0}")]
    Connect(String),
    #[error("the image URL did not answer within {} seconds", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("the image URL stopped sending data for {} seconds", .0.as_secs_f32())]
    Stalled(Duration),
    #[error("the download from the image URL failed: {0}")]
    Body(String),
    #[error("the import was cancelled")]
    Cancelled,
}

impl FetchError {
    /// Whether trying again later cannot help: the URL or its answer is wrong, not the network.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::InvalidUrl | Self::Refused(_) => true,
            // 408 and 429 ask to come back later; other non-5xx answers will not change.
            Self::Status(s) => {
                !s.is_server_error()
                    && *s != StatusCode::REQUEST_TIMEOUT
                    && *s != StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

/// A URL for logs: no userinfo, no query, no fragment.
pub fn redact(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

pub struct Fetcher {
    client: Client,
    opts: FetchOptions,
}

impl Fetcher {
    pub fn new(opts: FetchOptions) -> Result<Self, FetchError> {
        let allow_private = opts.allow_private_networks;
        let policy = redirect::Policy::custom(move |attempt| {
            match guard::check_redirect(attempt.url(), attempt.previous().len(), allow_private) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let mut builder = Client::builder()
            .user_agent(concat!("tidepool/", env!("CARGO_PKG_VERSION")))
            // A proxy would resolve and connect on our behalf, around every address check.
            .no_proxy()
            .redirect(policy)
            .connect_timeout(opts.timeout);
        if !allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnlyResolver));
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Connect(innermost(&e)))?;
        Ok(Self { client, opts })
    }

    /// Requests `url` until it answers 2xx, a permanent error, or the retries run out.
    pub async fn open(
        &self,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Download, FetchError> {
        let url = Url::parse(url).map_err(|_| FetchError::InvalidUrl)?;
        guard::check_url(&url, self.opts.allow_private_networks)?;
        let mut attempt = 0;
        loop {
            let result = tokio::select! {
                r = self.try_once(&url) => r,
                () = cancel.cancelled() => return Err(FetchError::Cancelled),
            };
            let err = match result {
                Ok(resp) => {
                    return Ok(Download {
                        resp,
                        stall_timeout: self.opts.stall_timeout,
                    })
                }
                Err(e) if e.is_permanent() || attempt >= self.opts.retries => return Err(e),
                Err(e) => e,
            };
            let delay = backoff(self.opts.retry_base_delay, attempt);
            attempt += 1;
            tracing::info!(url = %redact(&url), error = %err, attempt, ?delay, "retrying the image URL");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => return Err(FetchError::Cancelled),
            }
        }
    }

    async fn try_once(&self, url: &Url) -> Result<Response, FetchError> {
        let send = self.client.get(url.clone()).send();
        let resp = match tokio::time::timeout(self.opts.timeout, send).await {
            Err(_) => return Err(FetchError::Timeout(self.opts.timeout)),
            Ok(Err(e)) => return Err(classify_send_error(&e)),
            Ok(Ok(resp)) => resp,
        };
        // The last line of defence: whatever path led here, the peer must be allowed.
        if let Some(peer) = resp.remote_addr() {
            guard::check_ip(peer.ip(), self.opts.allow_private_networks)?;
        }
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        Ok(resp)
    }
}

fn classify_send_error(e: &reqwest::Error) -> FetchError {
    if let Some(refused) = find_refused(e) {
        return FetchError::Refused(refused);
    }
    if e.is_timeout() {
        return FetchError::Connect("timed out".into());
    }
    FetchError::Connect(innermost(e))
}

/// Our refusal, if the resolver or the redirect policy raised it somewhere down the chain.
fn find_refused(e: &(dyn StdError + 'static)) -> Option<Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

/// The root cause's message: reqwest's own Display names the URL, the causes below it do not.
fn innermost(e: &(dyn StdError + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    if std::ptr::addr_eq(cur, e) {
        // No cause to report: say only what kind of failure it was.
        return "request failed".into();
    }
    cur.to_string()
}

/// Exponential backoff with "equal jitter": between half and all of `base * 2^attempt`, capped.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(60));
    let half = full / 2;
    half + full.mul_f64(rand::rng().random_range(0.0..=0.5))
}

/// A response whose body is being streamed.
pub struct Download {
    resp: Response,
    stall_timeout: Duration,
}

impl Download {
    /// The body's length if the server announced it.
    pub fn content_length(&self) -> Option<u64> {
        self.resp.content_length()
    }

    /// The next piece of the body, `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        match tokio::time::timeout(self.stall_timeout, self.resp.chunk()).await {
            Err(_) => Err(FetchError::Stalled(self.stall_timeout)),
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) => Err(FetchError::Body(innermost(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_credentials_and_query() {
        let url = Url::parse("https://user:secret@example.com:8443/a/b.img?sig=xyz#f").unwrap();
        assert_eq!(redact(&url), "https://example.com:8443/a/b.img");
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 0..4 {
            let full = base * (1 << attempt);
            let d = backoff(base, attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(backoff(Duration::from_secs(10), 30) <= Duration::from_secs(60));
    }

    #[test]
    fn permanence() {
        assert!(FetchError::Status(StatusCode::NOT_FOUND).is_permanent());
        assert!(!FetchError::Status(StatusCode::BAD_GATEWAY).is_permanent());
        assert!(!FetchError::Connect("x".into()).is_permanent());
        assert_eq!(
            FetchError::Status(StatusCode::NOT_FOUND).to_string(),
            "HTTP 404 from the image URL"
        );
    }
}
