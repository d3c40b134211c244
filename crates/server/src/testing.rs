//! A real server on 127.0.0.1:0 with storage of its own, for the tests of this crate and of the
//! crates above it (client, command line). Behind the `testing` feature: never in a release.

use crate::config::ServeArgs;
use crate::server::{self, RunningServer};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use tidepool_catalog::testing as catalog_testing;

/// The catalog a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn NAME(backend: Backend)` as two tests, `sqlite::NAME` and
/// `postgres::NAME`; the PostgreSQL one is reported as skipped when no server is configured.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::testing::Backend::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if tidepool_catalog::testing::postgres_admin_url(concat!(module_path!(), "::", stringify!($name))).is_some() {
                    super::$name($crate::testing::Backend::Postgres).await
                }
            })*
        }
    };
}

pub struct TestServer {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
    /// The catalog's URL when it is not the embedded default.
    pub database_url: Option<String>,
}

impl TestServer {
    /// No rate limit per minute and no import workers: API tests look at images as created.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServeArgs)) -> Self {
        Self::start_on(Backend::Sqlite, configure).await
    }

    /// One import worker that may fetch from 127.0.0.1, where tests serve their images.
    pub async fn importing() -> Self {
        Self::start_with(|a| {
            a.import.import_workers = Some(1);
            a.import.import_allow_private_networks = true;
        })
        .await
    }

    /// A server on the given catalog backend; PostgreSQL gets a fresh database of its own.
    pub async fn start_on(backend: Backend, configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = ServeArgs::with_data_dir(dir.path().to_path_buf());
        if backend == Backend::Postgres {
            let admin =
                catalog_testing::postgres_admin_url("api").expect("TIDEPOOL_TEST_DATABASE_URL");
            args.storage.database_url =
                Some(catalog_testing::fresh_postgres_database(&admin).await);
        }
        args.rate_limit_per_minute = 0;
        args.import.import_workers = Some(0);
        configure(&mut args);
        let database_url = args.storage.database_url.clone();
        let server = server::start(args).await.expect("server starts");
        let token = server
            .bootstrap_token
            .clone()
            .expect("first start creates a token");
        TestServer {
            base: format!("http://{}", server.addr),
            token,
            http: reqwest::Client::new(),
            server,
            dir,
            database_url,
        }
    }

    /// A token for another account (created if new).
    pub async fn token(&self, account: &str, scopes: &str) -> String {
        self.server
            .app
            .token_create(account, scopes.parse().unwrap())
            .await
            .unwrap()
    }

    pub fn req_as(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.req_as(&self.token, method, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// Creates a custom image as `token`'s account and returns the image object.
    pub async fn create_as(&self, token: &str, name: &str, tags: &[&str]) -> Value {
        let body = json!({"name": name, "url": format!("http://127.0.0.1:9/{name}.img"), "region": "nyc3", "tags": tags});
        let r = self
            .req_as(token, Method::POST, "/v2/images")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "create {name}");
        r.json::<Value>().await.unwrap()["image"].clone()
    }

    pub async fn create(&self, name: &str, tags: &[&str]) -> Value {
        self.create_as(&self.token.clone(), name, tags).await
    }
}

/// Asserts a DigitalOcean error body and returns its message.
pub async fn error_body(r: Response, status: u16, id: &str) -> String {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], id, "{body}");
    assert!(
        body["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    body["message"]
        .as_str()
        .expect("message is a string")
        .to_owned()
}

/// The ids of a list answer's images, in order.
pub fn ids(list: &Value) -> Vec<u64> {
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect()
}
