//! The server's log as an operator's collector reads it: one line per request, JSON that parses
//! line by line, import events that lead back to the request that created the image, no token
//! anywhere, and no colour codes when the log is not a terminal.

use crate::support::{file_server, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Waits until every line so far parses and `found` picks one out.
fn wait_for_line(server: &Server, what: &str, found: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let lines = server.log.lock().unwrap().clone();
        let parsed: Vec<Value> = lines
            .iter()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"))
            })
            .collect();
        if let Some(line) = parsed.into_iter().find(&found) {
            return line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no log line {what}:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_parse_line_by_line_and_import_events_carry_the_request_id_of_the_create() {
    let images = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let server = tokio::task::block_in_place(|| {
        Server::start(
            dir.path(),
            &[
                ("TIDEPOOL_LOG_FORMAT", "json"),
                ("TIDEPOOL_TRUSTED_PROXY", "127.0.0.1"),
                ("TIDEPOOL_IMPORT_ALLOW_PRIVATE_NETWORKS", "true"),
                ("TIDEPOOL_IMPORT_WORKERS", "1"),
            ],
        )
    });
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();

    let listed = http
        .get(format!("{base}/v2/images?per_page=1"))
        .bearer_auth(&server.token)
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let list_id = listed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let created = http
        .post(format!("{base}/v2/images"))
        .bearer_auth(&server.token)
        .json(&json!({"name": "gone", "url": format!("{images}/missing.img"), "region": "nyc3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let create_id = created.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let image_id = created.json::<Value>().await.unwrap()["image"]["id"]
        .as_u64()
        .unwrap();

    let server = tokio::task::block_in_place(move || {
        let list = wait_for_line(&server, "for the list request", |l| {
            l["target"] == "tidepool::request" && l["request_id"] == list_id.as_str()
        });
        assert_eq!(list["level"], "INFO");
        assert_eq!(list["method"], "GET");
        assert_eq!(list["route"], "/v2/images");
        assert_eq!(list["status"], 200);
        assert_eq!(list["account"], "default");
        assert_eq!(
            list["client"], "203.0.113.7",
            "X-Forwarded-For from a trusted proxy"
        );
        assert!(list["bytes"].as_u64().unwrap() > 0, "{list}");
        assert!(list["duration_ms"].is_string() || list["duration_ms"].is_number());

        let failed = wait_for_line(&server, "for the import's failure", |l| {
            l["span"]["name"] == "import"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("import failed"))
        });
        assert_eq!(
            failed["span"]["request_id"],
            create_id.as_str(),
            "the import's events name the create's request: {failed}"
        );
        assert_eq!(failed["span"]["image_id"], image_id);
        assert_eq!(failed["reason"], "fetch");
        let claimed = wait_for_line(&server, "for the import's claim", |l| {
            l["message"] == "import claimed" && l["span"]["request_id"] == create_id.as_str()
        });
        assert_eq!(claimed["span"]["image_id"], image_id);
        // At info there is no request span: the create's own line names its request.
        let queued = wait_for_line(&server, "for the create's line", |l| {
            l["message"] == "image created, import queued"
        });
        assert_eq!(queued["request_id"], create_id.as_str(), "{queued}");
        assert_eq!(queued["image_id"], image_id);
        server
    });

    server.sigterm();
    let lines = server.log.lock().unwrap().clone();
    for line in &lines {
        assert!(
            !line.contains(&server.token),
            "a log line carries the token: {line}"
        );
        assert!(!line.contains('\u{1b}'), "a colour code in JSON: {line}");
    }
}

#[test]
fn a_plain_log_on_a_pipe_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.list_images();
    let start = Instant::now();
    let request_line = loop {
        let lines = server.log.lock().unwrap().clone();
        if let Some(line) = lines.iter().find(|l| l.contains("tidepool::request")) {
            break line.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no request line:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        request_line.contains(" route=/v2/images ")
            && request_line.contains(" status=200 ")
            && request_line.contains(" account=default ")
            && request_line.contains(" client=127.0.0.1 "),
        "{request_line}"
    );
    server.sigterm();
    for line in server.log.lock().unwrap().iter() {
        assert!(
            !line.contains('\u{1b}'),
            "a colour code on a pipe: {line:?}"
        );
        assert!(!line.contains(&server.token), "the token is logged: {line}");
    }
}
