//! Shared test fixtures: disk images made with `qemu-img`, and a local HTTP server with
//! misbehaving routes. Everything listens on 127.0.0.1, so imports must allow private networks.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tidepool_import::{Blobs, ImportLimits};

/// Size of the raw image every other format is converted from.
pub const RAW_SIZE: usize = 2 << 20;

pub struct Fixtures {
    pub dir: PathBuf,
}

/// Built once per test binary; the first caller pays for `qemu-img`.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("import-fixtures-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        // Varied but compressible content, not starting with anything's magic bytes.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let raw: Vec<u8> = (0..RAW_SIZE)
            .map(|i| {
                if (i / 4096) % 3 == 0 {
                    return 0;
                }
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 16) as u8
            })
            .collect();
        std::fs::write(dir.join("disk.raw"), &raw).unwrap();
        for format in ["qcow2", "vhdx", "vdi", "vmdk"] {
            qemu_img(&[
                "convert",
                "-f",
                "raw",
                "-O",
                format,
                dir.join("disk.raw").to_str().unwrap(),
                dir.join(format!("disk.{format}")).to_str().unwrap(),
            ]);
        }
        // An image whose virtual size dwarfs its file size, for limits the inspector enforces.
        qemu_img(&[
            "create",
            "-f",
            "qcow2",
            dir.join("huge.qcow2").to_str().unwrap(),
            "64G",
        ]);
        for format in ["raw", "qcow2", "vhdx", "vdi", "vmdk"] {
            let plain = std::fs::read(dir.join(format!("disk.{format}"))).unwrap();
            let third = plain.len() / 3;
            std::fs::write(dir.join(format!("disk.{format}.gz")), gzip(&plain)).unwrap();
            let mut multi = gzip(&plain[..third]);
            multi.extend(gzip(&plain[third..]));
            std::fs::write(dir.join(format!("disk.{format}.multi.gz")), multi).unwrap();
            std::fs::write(dir.join(format!("disk.{format}.bz2")), bzip2(&plain)).unwrap();
            let mut multi = bzip2(&plain[..third]);
            multi.extend(bzip2(&plain[third..]));
            std::fs::write(dir.join(format!("disk.{format}.multi.bz2")), multi).unwrap();
        }
        let gz = gzip(&raw);
        std::fs::write(dir.join("cut.raw.gz"), &gz[..gz.len() / 2]).unwrap();
        Fixtures { dir }
    })
}

fn qemu_img(args: &[&str]) -> String {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("these tests need qemu-img (apt-get install qemu-utils): {e}"));
    assert!(
        out.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(format, virtual size)` as qemu-img sees the file.
pub fn qemu_info(path: &Path) -> (String, u64) {
    let json = qemu_img(&["info", "--output=json", path.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    (
        v["format"].as_str().unwrap().to_owned(),
        v["virtual-size"].as_u64().unwrap(),
    )
}

/// gzip by the real tool, so the importer is tested against what users upload (and fixtures
/// build fast in a debug build).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    compress_with("gzip", data)
}

pub fn bzip2(data: &[u8]) -> Vec<u8> {
    compress_with("bzip2", data)
}

fn compress_with(tool: &str, data: &[u8]) -> Vec<u8> {
    let input = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(input.path(), data).unwrap();
    let out = Command::new(tool)
        .args(["-c", "-1"])
        .arg(input.path())
        .output()
        .unwrap_or_else(|e| panic!("these tests need {tool}: {e}"));
    assert!(out.status.success(), "{tool} failed");
    out.stdout
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Limits for serving from 127.0.0.1, with fast retries and short timeouts.
pub fn test_limits() -> ImportLimits {
    ImportLimits {
        allow_private_networks: true,
        timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(5),
        retries: 2,
        retry_base_delay: Duration::from_millis(10),
        ..ImportLimits::default()
    }
}

/// A temporary local blob store, and the directory to look for leftovers in.
pub fn temp_blobs() -> (tempfile::TempDir, Blobs) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(dir.path()).unwrap();
    (dir, blobs)
}

/// Every file under `root`, staging files included.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[derive(Clone)]
struct AppState {
    dir: PathBuf,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

/// Starts the test server on 127.0.0.1 in the current runtime; returns its address.
///
/// - `/files/{name}`: the fixture file;
/// - `/redirect/{n}/{name}`: `n` redirects, then the file;
/// - `/status/{code}`: that status, empty;
/// - `/flaky/{id}/{fails}/{name}`: 503 for the first `fails` requests with that id, then the file;
/// - `/truncated/{name}`: announces the full length, sends half, and drops the connection;
/// - `/stall/{name}`: announces the full length, sends 64 KiB, then nothing, forever.
pub async fn serve() -> SocketAddr {
    let state = AppState {
        dir: fixtures().dir.clone(),
        hits: Arc::default(),
    };
    let app = Router::new()
        .route("/files/{name}", get(file))
        .route("/redirect/{n}/{name}", get(redirect))
        .route("/status/{code}", get(status))
        .route("/flaky/{id}/{fails}/{name}", get(flaky))
        .route("/truncated/{name}", get(truncated))
        .route("/stall/{name}", get(stall))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn read(state: &AppState, name: &str) -> Result<Bytes, StatusCode> {
    std::fs::read(state.dir.join(name))
        .map(Bytes::from)
        .map_err(|_| StatusCode::NOT_FOUND)
}

async fn file(State(s): State<AppState>, UrlPath(name): UrlPath<String>) -> Response {
    match read(&s, &name) {
        Ok(body) => body.into_response(),
        Err(code) => code.into_response(),
    }
}

async fn redirect(UrlPath((n, name)): UrlPath<(u32, String)>) -> Response {
    let to = match n {
        0 | 1 => format!("/files/{name}"),
        _ => format!("/redirect/{}/{name}", n - 1),
    };
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn status(UrlPath(code): UrlPath<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

async fn flaky(
    State(s): State<AppState>,
    UrlPath((id, fails, name)): UrlPath<(String, u32, String)>,
) -> Response {
    let seen = {
        let mut hits = s.hits.lock().unwrap();
        let n = hits.entry(id).or_default();
        *n += 1;
        *n
    };
    if seen <= fails {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    file(State(s), UrlPath(name)).await
}

async fn truncated(State(s): State<AppState>, UrlPath(name): UrlPath<String>) -> Response {
    let body = read(&s, &name).unwrap();
    let len = body.len();
    let half = body.slice(..len / 2);
    let stream = futures::stream::iter([
        Ok(half),
        Err(std::io::Error::other("the test server cut the body")),
    ]);
    (
        [(header::CONTENT_LENGTH, len.to_string())],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn stall(State(s): State<AppState>, UrlPath(name): UrlPath<String>) -> Response {
    let body = read(&s, &name).unwrap();
    let len = body.len();
    let head = body.slice(..64 << 10);
    let stream =
        futures::stream::iter([Ok::<_, std::io::Error>(head)]).chain(futures::stream::pending());
    (
        [(header::CONTENT_LENGTH, len.to_string())],
        Body::from_stream(stream),
    )
        .into_response()
}

use futures::StreamExt as _;
