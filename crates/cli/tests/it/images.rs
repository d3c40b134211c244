//! `tidepool images …` and `tidepool completions …` as a person runs them: the built binary
//! against a real server started in the test, over HTTP.

use crate::support::file_server;
use serde_json::Value;
use std::process::Output;
use tidepool_server::testing::TestServer;

/// A test server with one import worker that may fetch from 127.0.0.1.
async fn start() -> TestServer {
    TestServer::importing().await
}

/// `tidepool images ARGS` against the server.
async fn images(s: &TestServer, args: &[&str]) -> Output {
    let mut all = vec!["images", "--api-url", &s.base, "--token", &s.token];
    all.extend_from_slice(args);
    tidepool(&all, &[]).await
}

/// The server's own JSON for `path`, as a plain HTTP client reads it.
async fn api(s: &TestServer, path: &str) -> Value {
    s.get(path).await.json().await.unwrap()
}

/// Runs the binary with a clean environment for the variables it reads.
async fn tidepool(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidepool"));
    cmd.args(args);
    for var in [
        "TIDEPOOL_API_URL",
        "TIDEPOOL_TOKEN",
        "DIGITALOCEAN_ACCESS_TOKEN",
        "DIGITALOCEAN_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.stdin(std::process::Stdio::null());
    cmd.output().await.unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
    stdout(&o)
}

fn json(o: Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

const NO_WORKER_URL: &str = "http://127.0.0.1:9/never.img";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_exactly_the_apis_objects() {
    let s = start().await;
    let created = json(
        images(
            &s,
            &[
                "create",
                "first",
                "--url",
                NO_WORKER_URL,
                "--region",
                "nyc3",
                "--distribution",
                "debian",
                "--description",
                "for tests",
                "--tag",
                "a",
                "--tag",
                "b",
                "-o",
                "json",
            ],
        )
        .await,
    );
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["name"], "first");
    assert_eq!(created["distribution"], "Debian");
    assert_eq!(created["tags"], serde_json::json!(["a", "b"]));

    let got = json(images(&s, &["get", &id.to_string(), "--output", "json"]).await);
    assert_eq!(got, api(&s, &format!("/v2/images/{id}")).await["image"]);
    let public = json(images(&s, &["get", "debian-12-x64", "-o", "json"]).await);
    assert_eq!(public, api(&s, "/v2/images/debian-12-x64").await["image"]);

    // A list prints the array of images, as doctl does.
    let listed = json(images(&s, &["list", "--type", "distribution", "-o", "json"]).await);
    assert_eq!(
        listed,
        api(&s, "/v2/images?type=distribution").await["images"]
    );

    let updated = json(
        images(
            &s,
            &["update", &id.to_string(), "--name", "renamed", "-o", "json"],
        )
        .await,
    );
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated, api(&s, &format!("/v2/images/{id}")).await["image"]);
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_have_the_chosen_columns_aligned() {
    let s = start().await;
    for name in ["a", "a-much-longer-name"] {
        let args = [
            "create",
            name,
            "--url",
            NO_WORKER_URL,
            "--region",
            "fra1",
            "--tag",
            "t",
        ];
        ok(images(&s, &args).await);
    }
    let text = ok(images(
        &s,
        &["list", "--private", "--format", "ID,Name,Tags,Regions"],
    )
    .await);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "Name", "Tags", "Regions"]);
    // Every row's tag starts where the header's "Tags" does.
    let tags_at = lines[0].find("Tags").unwrap();
    for row in &lines[1..] {
        assert_eq!(&row[tags_at..tags_at + 1], "t", "{text}");
    }

    let bare = ok(images(
        &s,
        &["list", "--private", "--format", "name", "--no-header"],
    )
    .await);
    let mut names: Vec<&str> = bare.lines().map(str::trim_end).collect();
    names.sort();
    assert_eq!(names, ["a", "a-much-longer-name"]);

    let default = ok(images(&s, &["get", "ubuntu-24-04-x64"]).await);
    let header: Vec<&str> = default.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "Name",
            "Type",
            "Distribution",
            "Slug",
            "Public",
            "MinDisk",
            "Status"
        ]
    );
    assert!(default.contains("ubuntu-24-04-x64"));
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_all() {
    let s = start().await;
    for i in 0..5 {
        let name = format!("img-{i}");
        ok(images(
            &s,
            &["create", &name, "--url", NO_WORKER_URL, "--region", "nyc3"],
        )
        .await);
    }
    let page = json(
        images(
            &s,
            &[
                "list",
                "--private",
                "--per-page",
                "2",
                "--page",
                "3",
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(page.as_array().unwrap().len(), 1);
    let all = json(
        images(
            &s,
            &[
                "list",
                "--private",
                "--per-page",
                "2",
                "--all",
                "-o",
                "json",
            ],
        )
        .await,
    );
    let mut ids: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_wait_succeeds_or_fails_with_the_error_message() {
    let s = start().await;
    let files = file_server().await;
    let url = format!("{files}/disk.raw");
    let args = [
        "create",
        "imported",
        "--url",
        &url,
        "--region",
        "sfo3",
        "--wait",
        "--poll-interval",
        "0.1",
        "-o",
        "json",
    ];
    let o = images(&s, &args).await;
    let progress = stderr(&o);
    let image = json(o);
    assert_eq!(image["status"], "available");
    assert_eq!(image["regions"], serde_json::json!(["sfo3"]));
    assert_eq!(
        image,
        api(&s, &format!("/v2/images/{}", image["id"])).await["image"]
    );
    assert!(
        progress.contains(&format!("image {}: available", image["id"])),
        "plain progress lines off a terminal: {progress}"
    );

    let missing = format!("{files}/missing.img");
    let args = [
        "create",
        "broken",
        "--url",
        &missing,
        "--region",
        "sfo3",
        "--wait",
        "--poll-interval",
        "0.1",
    ];
    let o = images(&s, &args).await;
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).contains("failed: HTTP 404 from the image URL"),
        "{}",
        stderr(&o)
    );

    // `wait` on an image that is already available prints it at once.
    let id = image["id"].to_string();
    let again = json(images(&s, &["wait", &id, "-o", "json"]).await);
    assert_eq!(again, image);
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_have_their_exit_codes_and_messages() {
    let s = start().await;

    let o = tidepool(
        &[
            "images",
            "list",
            "--api-url",
            &s.base,
            "--token",
            "dop_v1_wrong",
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stderr(&o).trim(),
        "tidepool: authentication failed: the token was not accepted (401 unauthorized)"
    );

    let o = tidepool(&["images", "list", "--api-url", &s.base], &[]).await;
    assert_eq!(o.status.code(), Some(3), "no token: {}", stderr(&o));

    let o = images(&s, &["get", "42"]).await;
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stderr(&o).trim(), "tidepool: image 42 not found");

    let o = images(&s, &["delete", "--force", "4242"]).await;
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("image 4242 not found"));

    for bad in [
        &["create", "x", "--url", "u", "--region", "mars1"][..],
        &["list", "--per-page", "201"],
        &["list", "--format", "ID,Colour"],
        &["update", "7"],
        &["get"],
    ] {
        let o = images(&s, bad).await;
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }

    // The server's refusal, in its words.
    let o = images(
        &s,
        &["create", "x", "--url", "not a url", "--region", "nyc3"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("422 unprocessable_entity"),
        "{}",
        stderr(&o)
    );

    // Without --force and without a terminal nothing is deleted.
    let o = images(&s, &["delete", "1"]).await;
    assert_eq!(o.status.code(), Some(2));

    let help = ok(tidepool(&["images", "--help"], &[]).await);
    assert!(help.contains("Exit codes:") && help.contains("4  image not found"));
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_names_the_server_and_token() {
    let s = start().await;
    let o = tidepool(
        &[
            "images",
            "get",
            "debian-12-x64",
            "--format",
            "Slug",
            "--no-header",
        ],
        &[("TIDEPOOL_API_URL", &s.base), ("TIDEPOOL_TOKEN", &s.token)],
    )
    .await;
    assert_eq!(ok(o).trim(), "debian-12-x64");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn completions_for_three_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(tidepool(&["completions", shell], &[]).await);
        assert!(script.len() > 500, "{shell}: {script}");
        assert!(
            script.contains("images"),
            "{shell} completes the subcommands"
        );
    }
    let o = tidepool(&["completions", "tcsh"], &[]).await;
    assert_eq!(o.status.code(), Some(2));
}
