//! What the client's tests add to the server's `TestServer`: clients with short backoffs, a file
//! server for image URLs, and a proxy that answers some requests itself (429, 503, 404) and
//! forwards the rest to the server.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tidepool_client::Client;
use tidepool_server::testing::TestServer;
use tidepool_testkit::{serve_images, Pattern, Samples};

/// A client of the test server, with short backoffs.
pub fn client(s: &TestServer) -> Client {
    client_for(&s.base, &s.token)
}

/// A client with short backoffs, so that retry tests take milliseconds (429s wait their
/// `retry-after`).
pub fn client_for(base: &str, token: &str) -> Client {
    Client::builder()
        .base_url(base)
        .token(token)
        .retry_policy(tidepool_client::RetryPolicy {
            max_retries: 3,
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(2),
        })
        .build()
        .unwrap()
}

async fn listen(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Serves a 1 MiB raw image as `{base}/disk.raw`; every other name is a 404. Returns the base
/// (testkit's image server, over a directory made once per test binary).
pub async fn file_server() -> String {
    static IMAGES: OnceLock<PathBuf> = OnceLock::new();
    let dir = IMAGES.get_or_init(|| Samples::new(1 << 20, Pattern::EveryThirdMib).build());
    format!("http://{}/files", serve_images(dir).await)
}

/// A canned answer of the proxy.
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Canned {
    pub fn error(status: u16, id: &str, headers: &[(&'static str, &str)]) -> Canned {
        Canned {
            status,
            headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            body: format!(
                r#"{{"id":"{id}","message":"canned {status}","request_id":"proxy-{status}"}}"#
            ),
        }
    }
}

/// Decides, from the method, the path and the number of the request (from 0), whether the
/// proxy answers itself.
pub type Rule = dyn Fn(&Method, &str, usize) -> Option<Canned> + Send + Sync;

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    rule: Arc<Rule>,
    count: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<(Method, String)>>>,
    http: reqwest::Client,
}

/// An HTTP proxy in front of a real server.
pub struct Proxy {
    pub base: String,
    seen: Arc<Mutex<Vec<(Method, String)>>>,
}

impl Proxy {
    pub async fn start(
        upstream: &str,
        rule: impl Fn(&Method, &str, usize) -> Option<Canned> + Send + Sync + 'static,
    ) -> Proxy {
        let seen = Arc::new(Mutex::new(vec![]));
        let state = ProxyState {
            upstream: upstream.to_owned(),
            rule: Arc::new(rule),
            count: Arc::new(AtomicUsize::new(0)),
            seen: seen.clone(),
            http: reqwest::Client::new(),
        };
        let router = axum::Router::new().fallback(forward).with_state(state);
        Proxy {
            base: format!("http://{}", listen(router).await),
            seen,
        }
    }

    /// Every request the proxy received, as (method, path).
    pub fn seen(&self) -> Vec<(Method, String)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn forward(State(s): State<ProxyState>, request: Request) -> Response {
    let n = s.count.fetch_add(1, Ordering::SeqCst);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    s.seen.lock().unwrap().push((method.clone(), path.clone()));
    if let Some(canned) = (s.rule)(&method, &path, n) {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        for (k, v) in canned.headers {
            headers.insert(k, v.parse().unwrap());
        }
        return (
            StatusCode::from_u16(canned.status).unwrap(),
            headers,
            canned.body,
        )
            .into_response();
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let mut upstream = s
        .http
        .request(parts.method, format!("{}{path_and_query}", s.upstream))
        .body(body);
    for name in ["authorization", "content-type", "accept"] {
        if let Some(v) = parts.headers.get(name) {
            upstream = upstream.header(name, v);
        }
    }
    let answer = upstream.send().await.unwrap();
    let mut response = Response::builder().status(answer.status().as_u16());
    for (k, v) in answer.headers() {
        response = response.header(k, v);
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}
