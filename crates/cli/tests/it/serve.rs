//! `tidepool serve` as a newcomer runs it: first start prints a token that works.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn first_start_prints_a_working_token_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("TIDEPOOL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut token = None;
    let mut addr = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("dop_v1_")) {
            token.get_or_insert(t.trim_matches('"').to_owned());
        }
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            addr = Some(url.trim_end_matches("/v2/images").to_owned());
            break;
        }
    }
    let (token, base) = (
        token.expect("token printed"),
        addr.expect("address printed"),
    );
    let r = reqwest::blocking::Client::new()
        .get(format!("{base}/v2/images"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        dir.path().join("tidepool-data/catalog.db").exists(),
        "default data dir is ./tidepool-data"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}
