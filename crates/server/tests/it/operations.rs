//! What an operator watches: `/metrics` after a known sequence of requests and imports, a real
//! Prometheus scraping it, and `/readyz` following the catalog and the blob store.

use crate::api_import::create;
use crate::images::serve;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tidepool_api::ImageStatus;
use tidepool_server::testing::{Backend, TestServer};
use tidepool_testkit::{free_port, skip, temp_dir, wait_for, KillOnDrop};

/// The samples of an exposition in the text format, `name{labels}` → value, labels as written.
pub(crate) fn samples(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

pub(crate) fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no series {series} in {samples:#?}"))
}

pub(crate) async fn scrape(s: &TestServer) -> String {
    let r = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

/// Waits for the import's end without requests of its own: the test counts the requests.
async fn wait_settled(s: &TestServer, id: u64) {
    let catalog = s.server.app.catalog().clone();
    wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        &format!("import of {id} did not finish"),
        || {
            let catalog = catalog.clone();
            async move {
                let image = catalog.image_get(id as i64).await.ok()??;
                let done = !matches!(image.status, ImageStatus::New | ImageStatus::Pending);
                done.then_some(())
            }
        },
    )
    .await
}

async fn metrics_count_the_requests_and_imports_that_happened(backend: Backend) {
    let base = serve().await;
    let s = TestServer::start_on(backend, |a| {
        a.import.import_workers = Some(2);
        a.import.import_allow_private_networks = true;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(s.get("/v2/images?private=true").await.status(), 200);
    }
    for _ in 0..2 {
        assert_eq!(s.get("/v2/images/987654").await.status(), 404);
    }
    let anonymous = s.http.get(format!("{}/v2/images", s.base)).send().await;
    assert_eq!(anonymous.unwrap().status(), 401);
    assert_eq!(
        s.get("/v2/no/such/route").await.status(),
        404,
        "an unknown path"
    );
    let good = create(&s, &format!("{base}/files/disk.qcow2.gz")).await;
    let missing = create(&s, &format!("{base}/files/missing.img")).await;
    let backing = create(&s, &format!("{base}/files/backing.qcow2")).await;
    let huge = create(&s, &format!("{base}/files/huge.qcow2")).await;
    for id in [good, missing, backing, huge] {
        wait_settled(&s, id).await;
    }
    let image = s.get_json(&format!("/v2/images/{good}")).await;
    assert_eq!(image["image"]["status"], "available");

    let text = scrape(&s).await;
    let m = samples(&text);
    let requests = |route: &str, method: &str, status: &str| {
        value(
            &m,
            &format!(
                "tidepool_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("/v2/images", "GET", "2xx"), 3.0);
    assert_eq!(requests("/v2/images", "GET", "4xx"), 1.0, "the 401");
    assert_eq!(requests("/v2/images/{image_id}", "GET", "4xx"), 2.0);
    assert_eq!(requests("/v2/images/{image_id}", "GET", "2xx"), 1.0);
    assert_eq!(requests("/v2/images", "POST", "2xx"), 4.0);
    assert_eq!(requests("unmatched", "GET", "4xx"), 1.0);
    assert_eq!(
        value(
            &m,
            "tidepool_http_request_duration_seconds_count{method=\"GET\",route=\"/v2/images\"}"
        ),
        4.0
    );
    let import = |name: &str| value(&m, &format!("{name}{{kind=\"import\"}}"));
    let failed = |reason: &str| {
        value(
            &m,
            &format!("tidepool_jobs_failed_total{{kind=\"import\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(import("tidepool_jobs_started_total"), 4.0);
    assert_eq!(import("tidepool_jobs_completed_total"), 1.0);
    assert_eq!(failed("fetch"), 1.0, "the 404");
    assert_eq!(failed("format_refused"), 1.0, "the backing file");
    assert_eq!(failed("size_limit"), 1.0, "200 GiB virtual");
    for reason in ["checksum", "timeout", "internal"] {
        assert_eq!(failed(reason), 0.0, "{reason}");
    }
    assert_eq!(import("tidepool_jobs_running"), 0.0);
    assert_eq!(import("tidepool_jobs_queued"), 0.0);
    assert_eq!(import("tidepool_job_lease_takeovers_total"), 0.0);
    let gz_len = std::fs::metadata(crate::images::samples().join("disk.qcow2.gz"))
        .unwrap()
        .len();
    assert!(import("tidepool_job_bytes_total") >= gz_len as f64);
    assert_eq!(
        value(
            &m,
            "tidepool_blob_store_operation_duration_seconds_count{operation=\"commit\"}"
        ),
        1.0,
        "only the good image was committed"
    );
    assert!(
        value(
            &m,
            "tidepool_catalog_operation_duration_seconds_count{operation=\"job_claim\"}"
        ) >= 4.0
    );
    assert!(
        !text.contains("tidepool_catalog_operation_errors_total{"),
        "no catalog operation failed: {text}"
    );
    assert_eq!(value(&m, "tidepool_http_rate_limited_total"), 0.0);
    assert_eq!(
        value(&m, "tidepool_build_info{version=\"0.1.0\"}"),
        1.0,
        "the build's version"
    );

    // Labels: route templates, never a path with an id, and nothing secret.
    assert!(!text.contains(&s.token), "the token is in the exposition");
    for id in [good, missing, backing, huge, 987654] {
        assert!(
            !text.contains(&format!("/{id}")),
            "an image id is in a label: {id}"
        );
    }
    let routes: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split("route=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let known = [
        "/v2/images",
        "/v2/images/{image_id}",
        "/v2/images/{image_id}/import",
        "/healthz",
        "/readyz",
        "/metrics",
        "unmatched",
    ];
    assert!(
        routes.iter().all(|r| known.contains(r)),
        "unexpected routes: {routes:?}"
    );
}

async fn rate_limited_answers_are_counted(backend: Backend) {
    let s = TestServer::start_on(backend, |a| a.rate_limit_per_minute = 3).await;
    let statuses: Vec<u16> = list_statuses(&s, 5).await;
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let m = samples(&scrape(&s).await);
    assert_eq!(value(&m, "tidepool_http_rate_limited_total"), 2.0);
    assert_eq!(
        value(
            &m,
            "tidepool_http_requests_total{method=\"GET\",route=\"/v2/images\",status=\"4xx\"}"
        ),
        2.0
    );
    // The probes and the scrape are outside the limit: the token's 3 per minute are used up.
    assert_eq!(
        s.http
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Behind a trusted proxy every client shares the proxy's address: anonymous requests are
/// limited per forwarded client, and a client the proxy did not vouch for cannot pick its key.
#[tokio::test]
async fn anonymous_requests_are_limited_per_forwarded_client_behind_a_trusted_proxy() {
    let s = TestServer::start_with(|a| {
        a.rate_limit_per_minute = 2;
        a.observability.trusted_proxy = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let anonymous = |forwarded_for: &'static str| {
        let request = s.http.get(format!("{}/v2/images", s.base));
        async move {
            request
                .header("X-Forwarded-For", forwarded_for)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(anonymous("203.0.113.9").await);
    }
    assert_eq!(
        first,
        [401, 401, 429],
        "the limit counts this client's requests"
    );
    assert_eq!(
        anonymous("198.51.100.7").await,
        401,
        "another client behind the same proxy has a limit of its own"
    );
    // The client wrote the leftmost entry; the proxy appended the address it saw, which is the
    // one that counts.
    assert_eq!(anonymous("198.51.100.7, 203.0.113.9").await, 429);
    assert_eq!(
        value(
            &samples(&scrape(&s).await),
            "tidepool_http_rate_limited_total"
        ),
        2.0
    );
}

async fn list_statuses(s: &TestServer, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(s.get("/v2/images").await.status().as_u16());
    }
    statuses
}

tidepool_server::on_every_backend!(
    metrics_count_the_requests_and_imports_that_happened,
    rate_limited_answers_are_counted,
);

/// `promtool` and `prometheus` from Debian's package (`.ci/run` installs it).
fn prometheus_tools(test: &str) -> bool {
    let found = ["prometheus", "promtool"].iter().all(|tool| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !found {
        skip(
            test,
            "prometheus and promtool are not installed (Debian: apt-get install prometheus)",
        );
    }
    found
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_metrics_listener_with_its_token() {
    if !prometheus_tools(
        "operations::a_real_prometheus_scrapes_the_metrics_listener_with_its_token",
    ) {
        return;
    }
    let metrics_token = "scrape-secret-1234";
    let s = TestServer::start_with(|a| {
        a.observability.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        a.observability.metrics_token = Some(metrics_token.into());
    })
    .await;
    let metrics_base = format!("http://{}", s.server.metrics_addr.unwrap());
    assert_eq!(s.get("/v2/images").await.status(), 200);

    // Only on its own listener, and only with its token.
    assert_eq!(
        s.get("/metrics").await.status(),
        404,
        "not on the API listener"
    );
    let anonymous = s.http.get(format!("{metrics_base}/metrics")).send().await;
    assert_eq!(anonymous.unwrap().status(), 401);
    let exposition = s
        .http
        .get(format!("{metrics_base}/metrics"))
        .bearer_auth(metrics_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let probe = s.http.get(format!("{metrics_base}/readyz")).send().await;
    assert_eq!(probe.unwrap().status(), 200);

    let dir = temp_dir("prometheus");
    let exposition_file = dir.path().join("exposition.txt");
    std::fs::write(&exposition_file, &exposition).unwrap();
    let lint = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "promtool check metrics < {}",
            exposition_file.display()
        ))
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tidepool\n    \
             authorization:\n      credentials: {metrics_token}\n    static_configs:\n      \
             - targets: ['{}']\n",
            s.server.metrics_addr.unwrap()
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = KillOnDrop(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let query = |q: &'static str| {
        let http = s.http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                .query(&[("query", q)])
                .send()
                .await
                .ok()?;
            let body: Value = r.json().await.ok()?;
            let result = body["data"]["result"].as_array()?.first()?.clone();
            Some(result)
        }
    };
    let requests = wait_for(
        Duration::from_secs(60),
        Duration::from_millis(250),
        "Prometheus never stored a tidepool request series",
        || query("tidepool_http_requests_total{route=\"/v2/images\",status=\"2xx\"}"),
    )
    .await;
    assert_eq!(requests["value"][1], "1", "{requests}");
    let up = query("up{job=\"tidepool\"}")
        .await
        .expect("the target is known");
    assert_eq!(up["value"][1], "1", "the scrape succeeds: {up}");
}

/// Polls `/readyz` until it answers `status`, and returns its body.
async fn readyz_becomes(s: &TestServer, status: u16) -> Value {
    let start = Instant::now();
    loop {
        let r = s
            .http
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap();
        let seen = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        if seen == status {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "/readyz stayed {seen}, not {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn healthz_is_200(s: &TestServer) {
    let r = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A load balancer and an orchestrator may each probe every second, on every replica: the
/// checks behind `/readyz` run at most once a second however many probes come.
#[tokio::test]
async fn frequent_probes_share_one_check_a_second() {
    let s = TestServer::start().await;
    let pings = |m: &BTreeMap<String, f64>| {
        value(
            m,
            "tidepool_catalog_operation_duration_seconds_count{operation=\"ping\"}",
        )
    };
    readyz_becomes(&s, 200).await;
    let before = pings(&samples(&scrape(&s).await));
    let started = Instant::now();
    let probes = 50;
    for _ in 0..probes {
        let r = s
            .http
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let seconds = started.elapsed().as_secs_f64();
    let checks = pings(&samples(&scrape(&s).await)) - before;
    assert!(
        checks <= seconds.ceil() + 1.0,
        "{probes} probes in {seconds:.2} s ran {checks} catalog checks"
    );
}

#[tokio::test]
async fn readyz_follows_the_blob_store_and_healthz_stays_up() {
    let s = TestServer::start().await;
    let body = readyz_becomes(&s, 200).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["catalog"]["status"], "ok");
    assert_eq!(body["checks"]["blob_store"]["status"], "ok");
    assert!(body["checks"]["catalog"]["latency_ms"].is_number());

    let blobs = s.dir.path().join("blobs");
    let moved = s.dir.path().join("blobs-away");
    std::fs::rename(&blobs, &moved).unwrap();
    let body = readyz_becomes(&s, 503).await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["blob_store"]["status"], "failing");
    assert_eq!(body["checks"]["catalog"]["status"], "ok");
    let text = body.to_string();
    assert!(
        !text.contains(&s.dir.path().display().to_string()),
        "the probe's body names no path: {text}"
    );
    healthz_is_200(&s).await;

    std::fs::rename(&moved, &blobs).unwrap();
    readyz_becomes(&s, 200).await;
}

#[tokio::test]
async fn readyz_follows_the_postgres_catalog() {
    let test = "operations::readyz_follows_the_postgres_catalog";
    let Some(admin) = tidepool_catalog::testing::postgres_admin_url(test) else {
        return;
    };
    let s = TestServer::start_on(Backend::Postgres, |_| {}).await;
    readyz_becomes(&s, 200).await;
    let url = s.database_url.clone().expect("a PostgreSQL test server");
    let database = url.rsplit('/').next().unwrap().to_owned();
    let admin_sql = |sql: String| {
        let admin = admin.clone();
        async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&sql).execute(&mut c).await.unwrap();
        }
    };
    // The database goes away: no new connections, and the ones the pool holds are cut.
    admin_sql(format!("ALTER DATABASE {database} ALLOW_CONNECTIONS false")).await;
    admin_sql(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
    ))
    .await;
    let body = readyz_becomes(&s, 503).await;
    assert_eq!(body["checks"]["catalog"]["status"], "failing", "{body}");
    assert_eq!(body["checks"]["blob_store"]["status"], "ok", "{body}");
    assert!(
        !body.to_string().contains("postgres://"),
        "the probe's body names no database URL: {body}"
    );
    healthz_is_200(&s).await;

    admin_sql(format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true")).await;
    readyz_becomes(&s, 200).await;
}
