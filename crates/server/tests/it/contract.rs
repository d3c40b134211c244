//! Contract tests: the server against DigitalOcean's own description of the Images API
//! (schemathesis on the published OpenAPI document) and DigitalOcean's own Python client (pydo).
//!
//! The tools are Python packages: `scripts/test` makes a venv with them, or `pip install
//! schemathesis pydo`. When one is missing the test skips (testkit's skip protocol: `SKIPPED` on
//! stderr, a line in `TIDEPOOL_TEST_SKIP_LOG`), or fails under `TIDEPOOL_TEST_NO_SKIP=1` or
//! `TIDEPOOL_REQUIRE_CONTRACT_TOOLS=1` (which `scripts/test` still sets in CI).
//! `TIDEPOOL_PYTHON` picks the interpreter (default `python3`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tidepool_server::config::ServeArgs;
use tidepool_server::server::{self, RunningServer};
use tokio::process::Command;

/// The five image operations tidepool implements, and the update by POST the hooks describe;
/// image actions and account transfers are not implemented yet.
const OPERATIONS: [&str; 6] = [
    "images_list",
    "images_create_custom",
    "images_get",
    "images_update",
    "images_update_by_post",
    "images_delete",
];

/// Fixed, so that a failure seen once is seen again on the next run.
const SEED: &str = "20260522";
const MAX_EXAMPLES: &str = "50";
/// A run takes 5 to 10 s on 2 cores (some 700 cases at 50 examples per operation and
/// phase); the limit is for a hung server or tool, not a slow one.
const SCHEMATHESIS_TIMEOUT: Duration = Duration::from_secs(240);
const PYDO_TIMEOUT: Duration = Duration::from_secs(120);

fn python() -> String {
    std::env::var("TIDEPOOL_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn tools_required() -> bool {
    std::env::var("TIDEPOOL_REQUIRE_CONTRACT_TOOLS").is_ok_and(|v| v == "1")
}

/// How to get the Python tools, for the messages of a missing one.
const GET_TOOLS: &str = "scripts/test makes a venv with them, or pip install schemathesis pydo";

/// Missing tools or files: a skip (testkit's protocol) and `false`, or a failure when CI
/// requires them.
fn unavailable(test: &str, why: &str) -> bool {
    assert!(
        !tools_required(),
        "{test} cannot run: {why} (and TIDEPOOL_REQUIRE_CONTRACT_TOOLS=1 requires it)"
    );
    tidepool_testkit::skip(test, why);
    false
}

/// Whether `python` can import `module`.
async fn importable(test: &str, module: &str) -> bool {
    let status = Command::new(python())
        .args(["-c", &format!("import {module}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    match status {
        Ok(s) if s.success() => true,
        Ok(_) => unavailable(
            test,
            &format!("the Python module `{module}` is not installed ({GET_TOOLS})"),
        ),
        Err(e) => unavailable(
            test,
            &format!("cannot run `{}` ({e}; {GET_TOOLS})", python()),
        ),
    }
}

/// DigitalOcean's OpenAPI document, from the `shared/` directory beside the repository.
fn spec_path(test: &str) -> Option<PathBuf> {
    let relative = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/do-images-openapi.yaml");
    match relative.canonicalize() {
        Ok(path) => Some(path),
        Err(e) => {
            unavailable(
                test,
                &format!(
                    "the OpenAPI document {} is missing ({e}); it comes with the shared/ \
                     directory beside the checkout",
                    relative.display()
                ),
            );
            None
        }
    }
}

/// A server as a contract run needs it: its own data, no rate limits (a run sends thousands of
/// requests with one token), and no import workers, so created images stay `NEW` and nothing
/// tries to fetch the made-up URLs the tools send.
async fn start_server(dir: &Path) -> (RunningServer, String, String) {
    let mut args = ServeArgs::with_data_dir(dir.to_path_buf());
    args.rate_limit_per_hour = 0;
    args.rate_limit_per_minute = 0;
    args.import.import_workers = Some(0);
    let server = server::start(args).await.expect("server starts");
    let token = server
        .bootstrap_token
        .clone()
        .expect("the first start creates a full-access token");
    let url = format!("http://{}", server.addr);
    (server, url, token)
}

/// Runs a command to completion within `limit`, killing it past that.
async fn run(mut command: Command, limit: Duration) -> (bool, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = format!("{:?}", command.as_std());
    let child = command.spawn().unwrap_or_else(|e| panic!("{shown}: {e}"));
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let text = format!(
                "$ {shown}\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), text)
        }
        Ok(Err(e)) => (false, format!("$ {shown}\n--- could not wait: {e}")),
        Err(_) => (false, format!("$ {shown}\n--- killed after {limit:?}")),
    }
}

/// The checks that hold for tidepool. Left out: `positive_data_acceptance`, because the schema
/// allows any string as a tag or name while DigitalOcean (and tidepool) refuse tags outside
/// letters, digits, `:`, `-`, `_` and names with control characters; and
/// `object_level_authorization`, which needs a second account's token.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,\
                      negative_data_rejection,missing_required_header,unsupported_method,\
                      allow_header_conformance,ignored_auth,use_after_free,\
                      ensure_resource_availability";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn schemathesis_args(spec: &Path, url: &str, token: &str, report: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-m".into(),
        "schemathesis.cli".into(),
        "run".into(),
        spec.display().to_string(),
        "--url".into(),
        url.into(),
        "--header".into(),
        format!("Authorization: Bearer {token}"),
    ];
    for op in OPERATIONS {
        args.extend(["--include-operation-id".into(), op.into()]);
    }
    let pairs = [
        ("--checks", CHECKS.into()),
        ("--phases", "examples,coverage,fuzzing,stateful".into()),
        (
            "--max-examples",
            env_or("TIDEPOOL_CONTRACT_MAX_EXAMPLES", MAX_EXAMPLES),
        ),
        ("--seed", env_or("TIDEPOOL_CONTRACT_SEED", SEED)),
        // Nothing remembered between runs: the same seed gives the same run.
        ("--generation-database", "none".into()),
        // One worker: ids of created images, hence what PUT and DELETE hit, stay the same.
        ("--workers", "1".into()),
        ("--request-timeout", "10".into()),
        ("--output-truncate", "false".into()),
        ("--report", "json,har".into()),
        ("--report-json-path", report.display().to_string()),
        (
            "--report-har-path",
            report.with_extension("har").display().to_string(),
        ),
    ];
    for (flag, value) in pairs {
        args.extend([flag.to_owned(), value]);
    }
    args.push("--no-color".into());
    args
}

/// What the JSON report says about a run that exited 0: every selected operation tested, enough
/// cases, no failures or errors. A run that tested nothing would exit 0 too.
fn check_report(report: &Path, output: &str) {
    let text = std::fs::read_to_string(report)
        .unwrap_or_else(|e| panic!("no report at {}: {e}\n{output}", report.display()));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ops = &report["operations"];
    let all = OPERATIONS.len();
    assert_eq!(ops["selected"], all, "operations selected: {ops}\n{output}");
    assert_eq!(ops["tested"], all, "operations tested: {ops}\n{output}");
    assert_eq!(ops["errored"], 0, "operations errored: {ops}\n{output}");
    let cases = &report["test_cases"];
    assert!(
        cases["generated"].as_u64().unwrap_or(0) >= 200,
        "too few test cases: {cases}\n{output}"
    );
    assert_eq!(cases["with_failures"], 0, "{cases}\n{output}");
    assert_eq!(report["failures"], serde_json::json!([]), "{output}");
    assert_eq!(report["errors"], serde_json::json!([]), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    const TEST: &str = "contract::schemathesis_finds_no_server_errors_or_schema_violations";
    if !importable(TEST, "schemathesis").await {
        return;
    }
    let Some(spec) = spec_path(TEST) else { return };
    let hooks =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/contract/schemathesis_hooks.py");
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (server, url, token) = start_server(dir.path()).await;

    // TIDEPOOL_CONTRACT_REPORT_DIR keeps the reports (JSON summary, HAR of every exchange).
    let report_dir = std::env::var_os("TIDEPOOL_CONTRACT_REPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.path().to_path_buf());
    std::fs::create_dir_all(&report_dir).unwrap();
    let report = report_dir.join("schemathesis.json");
    let mut command = Command::new(python());
    command
        .args(schemathesis_args(&spec, &url, &token, &report))
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // Keeps .hypothesis/ and the like out of the source tree.
        .current_dir(work.path());
    let (ok, output) = run(command, SCHEMATHESIS_TIMEOUT).await;
    server.shutdown().await.unwrap();

    let output = output.replace(&token, "<token>");
    assert!(ok, "schemathesis found problems:\n{output}");
    check_report(&report, &output);
    eprintln!("{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pydo_session_works_unchanged() {
    const TEST: &str = "contract::pydo_session_works_unchanged";
    if !importable(TEST, "pydo").await {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/contract/pydo_session.py");
    let dir = tempfile::tempdir().unwrap();
    let (server, url, token) = start_server(dir.path()).await;

    let mut command = Command::new(python());
    command
        .arg(&script)
        .env("TIDEPOOL_URL", &url)
        .env("TIDEPOOL_TOKEN", &token)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(dir.path());
    let (ok, output) = run(command, PYDO_TIMEOUT).await;
    server.shutdown().await.unwrap();

    let output = output.replace(&token, "<token>");
    assert!(ok, "the pydo session failed:\n{output}");
    eprintln!("{output}");
}
