//! The client itself: where it sends requests, with which token, and how one request is sent,
//! retried and its answer read.

use crate::error::{ApiError, Error, Result};
use crate::retry::{retry_after, RateLimit, RetryPolicy};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidepool_api::ErrorBody;
use url::Url;

/// DigitalOcean's API: the target of [`Client::new`].
pub const DIGITALOCEAN_API_URL: &str = "https://api.digitalocean.com";

/// A tidepool server started with `tidepool serve` and no flags.
pub const LOCAL_TIDEPOOL_URL: &str = "http://127.0.0.1:8080";

/// A client of the Images API. Cheap to clone: clones share the connection pool and the last
/// rate-limit headers.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Always ends with `/`, so that joining `v2/images` keeps any path prefix.
    base: Url,
    token: String,
    retry: RetryPolicy,
    last_rate_limit: Mutex<Option<RateLimit>>,
}

impl std::fmt::Debug for Client {
    // By hand, so that the token never lands in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Sets up a [`Client`] for any server: `Client::builder().base_url(…).token(…).build()`.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    retry: RetryPolicy,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            base_url: DIGITALOCEAN_API_URL.to_owned(),
            token: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("tidepool-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ClientBuilder {
    /// The API's root, e.g. `http://127.0.0.1:8080` [default: DigitalOcean's API]. A path
    /// prefix is kept: `https://proxy/do/` sends `https://proxy/do/v2/images`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The bearer token sent with every request (required).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// All of the retry settings at once.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Retries after the first try [default: 4]; 0 turns them off.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// The longest wait between two tries [default: 60 s, enough for a per-minute limit]. Tests
    /// make it short.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.retry.max_backoff = max;
        self.retry.base_backoff = self.retry.base_backoff.min(max);
        self
    }

    /// The limit on one request, from connecting to the end of the answer [default: 60 s].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `user-agent` header [default: `tidepool-client/VERSION`].
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The client, or [`Error::Config`] for a missing token or a base URL that is not an
    /// absolute http(s) URL.
    pub fn build(self) -> Result<Client> {
        let token = self
            .token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Error::Config("no API token given".into()))?;
        let mut base = Url::parse(self.base_url.trim())
            .map_err(|e| Error::Config(format!("bad API URL {:?}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "bad API URL {:?}: not an http or https URL",
                self.base_url
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| Error::Config(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: token.trim().to_owned(),
                retry: self.retry,
                last_rate_limit: Mutex::new(None),
            }),
        })
    }
}

/// An answer that was read whole.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub url: Url,
}

impl Client {
    /// A client of DigitalOcean's API (`https://api.digitalocean.com`) with `token`.
    ///
    /// # Panics
    /// When the system's TLS cannot be set up, like `reqwest::Client::new`.
    pub fn new(token: impl Into<String>) -> Client {
        Client::builder()
            .token(token)
            .build()
            .expect("DigitalOcean's URL and a token make a valid client")
    }

    /// A builder, for another server or other retry settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client set up from the environment, in this order:
    ///
    /// 1. `TIDEPOOL_API_URL` set: that server, with `TIDEPOOL_TOKEN`. DigitalOcean tokens are
    ///    never sent to it.
    /// 2. `DIGITALOCEAN_ACCESS_TOKEN`, else `DIGITALOCEAN_TOKEN`, set: DigitalOcean's API (the
    ///    names `doctl` and DigitalOcean's other clients read).
    /// 3. `TIDEPOOL_TOKEN` alone: a local tidepool at `http://127.0.0.1:8080`.
    ///
    /// Otherwise [`Error::Config`] names the variables. Empty variables count as unset.
    pub fn from_env() -> Result<Client> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Client> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = var("TIDEPOOL_API_URL") {
            let token = var("TIDEPOOL_TOKEN").ok_or_else(|| {
                Error::Config("TIDEPOOL_API_URL is set but TIDEPOOL_TOKEN is not".into())
            })?;
            return Client::builder().base_url(url).token(token).build();
        }
        if let Some(token) = var("DIGITALOCEAN_ACCESS_TOKEN").or_else(|| var("DIGITALOCEAN_TOKEN"))
        {
            return Client::builder().token(token).build();
        }
        if let Some(token) = var("TIDEPOOL_TOKEN") {
            return Client::builder()
                .base_url(LOCAL_TIDEPOOL_URL)
                .token(token)
                .build();
        }
        Err(Error::Config(
            "no token in the environment: set TIDEPOOL_TOKEN (and TIDEPOOL_API_URL), \
             or DIGITALOCEAN_ACCESS_TOKEN for DigitalOcean"
                .into(),
        ))
    }

    /// The API's root, always ending with `/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The retry settings in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// The `ratelimit-*` headers of the last answer that had them.
    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        *self
            .inner
            .last_rate_limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `base` + the given path segments, each percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .expect("checked in build: the base can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Sends a request and decodes a JSON answer.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        let answer = self.send(method, url, body).await?;
        decode(&answer)
    }

    /// Sends a request, retrying as the policy allows, and reads the whole answer. Error
    /// statuses become [`Error::Api`].
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Answer> {
        let body = match body {
            Some(b) => Some(
                serde_json::to_vec(b)
                    .map_err(|e| Error::Config(format!("cannot encode the request body: {e}")))?,
            ),
            None => None,
        };
        // POST creates; a 5xx or a broken connection may have created already, so only a 429
        // (the server acted on nothing) is retried for it.
        let idempotent = method != Method::POST;
        let policy = self.inner.retry;
        let mut retry = 0;
        loop {
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&self.inner.token)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let outcome = match request.send().await {
                Ok(response) => self.read(response).await,
                Err(e) => Err(e),
            };
            let (status, headers, bytes) = match outcome {
                Ok(read) => read,
                Err(source) => {
                    if idempotent && retry < policy.max_retries && !source.is_builder() {
                        tokio::time::sleep(policy.backoff(retry)).await;
                        retry += 1;
                        continue;
                    }
                    return Err(Error::Transport {
                        url: url.to_string(),
                        source,
                    });
                }
            };
            if status.is_success() {
                return Ok(Answer {
                    status,
                    body: bytes,
                    url,
                });
            }
            if retry < policy.max_retries {
                let wait = if status == StatusCode::TOO_MANY_REQUESTS {
                    policy.after_429(retry, &headers)
                } else if idempotent && is_transient(status) {
                    Some(
                        retry_after(&headers)
                            .filter(|w| *w <= policy.max_backoff)
                            .unwrap_or_else(|| policy.backoff(retry)),
                    )
                } else {
                    None
                };
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                    retry += 1;
                    continue;
                }
            }
            return Err(Error::Api(api_error(status, &headers, &bytes)));
        }
    }

    async fn read(
        &self,
        response: reqwest::Response,
    ) -> std::result::Result<(StatusCode, HeaderMap, Vec<u8>), reqwest::Error> {
        if let Some(rl) = RateLimit::from_headers(response.headers()) {
            *self
                .inner
                .last_rate_limit
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(rl);
        }
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        Ok((status, headers, bytes.to_vec()))
    }
}

/// The 5xx that say "try later"; 501 and 505 will say the same again.
fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

pub(crate) fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T> {
    serde_json::from_slice(&answer.body).map_err(|e| Error::Decode {
        url: answer.url.to_string(),
        status: answer.status.as_u16(),
        detail: e.to_string(),
    })
}

/// DigitalOcean's error body, or for a body that is not one (a proxy's HTML page), the status
/// in its place.
fn api_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let retry_after = retry_after(headers);
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ApiError {
            status: status.as_u16(),
            id: e.id,
            message: e.message,
            request_id: e.request_id,
            retry_after,
        },
        Err(_) => {
            let reason = status.canonical_reason().unwrap_or("error");
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            ApiError {
                status: status.as_u16(),
                id: reason.to_ascii_lowercase().replace([' ', '-'], "_"),
                message: if text.is_empty() || text.len() > 200 {
                    reason.to_owned()
                } else {
                    text.to_owned()
                },
                request_id: headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                retry_after,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn environment_precedence() {
        let c = Client::from_vars(vars(&[
            ("TIDEPOOL_API_URL", "http://h:1/x"),
            ("TIDEPOOL_TOKEN", "t"),
            ("DIGITALOCEAN_ACCESS_TOKEN", "do"),
        ]))
        .unwrap();
        assert_eq!(c.base_url().as_str(), "http://h:1/x/");
        assert_eq!(c.inner.token, "t");
        let err = Client::from_vars(vars(&[
            ("TIDEPOOL_API_URL", "http://h:1"),
            ("DIGITALOCEAN_TOKEN", "do"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("TIDEPOOL_TOKEN"), "{err}");
        let c = Client::from_vars(vars(&[
            ("DIGITALOCEAN_TOKEN", "b"),
            ("DIGITALOCEAN_ACCESS_TOKEN", "a"),
            ("TIDEPOOL_TOKEN", "t"),
        ]))
        .unwrap();
        assert_eq!(c.base_url().as_str(), "https://api.digitalocean.com/");
        assert_eq!(c.inner.token, "a");
        let c = Client::from_vars(vars(&[("TIDEPOOL_TOKEN", "t")])).unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:8080/");
        assert!(Client::from_vars(vars(&[("DIGITALOCEAN_TOKEN", " ")])).is_err());
    }

    #[test]
    fn urls_keep_the_prefix_and_encode_segments() {
        let c = Client::builder()
            .base_url("https://proxy.example/do")
            .token("t")
            .build()
            .unwrap();
        assert_eq!(
            c.url(&["v2", "images", "a b/c"]).as_str(),
            "https://proxy.example/do/v2/images/a%20b%2Fc"
        );
        assert!(Client::builder()
            .base_url("ftp://x")
            .token("t")
            .build()
            .is_err());
        assert!(Client::builder().build().is_err(), "a token is required");
        assert!(!format!("{c:?}").contains("\"t\""), "no token in Debug");
    }

    #[test]
    fn non_json_error_bodies_become_the_status() {
        let e = api_error(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>...</html>",
        );
        assert_eq!(
            (e.status, e.id.as_str(), e.message.as_str()),
            (502, "bad_gateway", "<html>...</html>")
        );
    }
}
