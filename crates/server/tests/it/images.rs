//! Images made with qemu-img, served from 127.0.0.1 by a small HTTP server of the test's own.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); install qemu-utils, gzip and bzip2"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory of sample images, made once per test binary: `disk.{raw,qcow2,vhdx,vdi,vmdk}`,
/// each also as `.gz` and `.bz2`, plus `backing.qcow2` (refers to a backing file) and
/// `huge.qcow2` (200 GiB virtual).
pub fn samples() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Samples of test processes that have ended are removed, so runs do not pile them up.
        for old in std::fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = old.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("tidepool-samples-")
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = std::env::temp_dir().join(format!("tidepool-samples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("disk.raw");
        // 8 MiB with content at a few places, so that formats have real data to carry.
        let mut bytes = vec![0u8; 8 << 20];
        for (i, chunk) in bytes.chunks_mut(1 << 20).enumerate().step_by(3) {
            chunk[..4096]
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (i * 31 + j) as u8);
        }
        std::fs::write(&raw, &bytes).unwrap();
        for (fmt, opts) in [
            ("qcow2", None),
            ("vhdx", None),
            ("vdi", None),
            ("vmdk", Some("subformat=streamOptimized")),
        ] {
            let mut cmd = Command::new("qemu-img");
            cmd.args(["convert", "-O", fmt]);
            if let Some(o) = opts {
                cmd.args(["-o", o]);
            }
            run(cmd.arg(&raw).arg(dir.join(format!("disk.{fmt}"))));
        }
        for fmt in ["raw", "qcow2", "vhdx", "vdi", "vmdk"] {
            let src = dir.join(format!("disk.{fmt}"));
            run(Command::new("sh").arg("-c").arg(format!(
                "gzip -c {0} > {0}.gz && bzip2 -c {0} > {0}.bz2",
                src.display()
            )));
        }
        run(Command::new("qemu-img").current_dir(&dir).args([
            "create",
            "-f",
            "qcow2",
            "-b",
            "disk.qcow2",
            "-F",
            "qcow2",
            "backing.qcow2",
        ]));
        run(Command::new("qemu-img").current_dir(&dir).args([
            "create",
            "-f",
            "qcow2",
            "huge.qcow2",
            "200G",
        ]));
        dir
    })
}

/// (format, virtual size) as qemu-img sees the file.
pub fn qemu_info(path: &std::path::Path) -> (String, u64) {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        info["format"].as_str().unwrap().to_owned(),
        info["virtual-size"].as_u64().unwrap(),
    )
}

async fn file(State(dir): State<PathBuf>, Path(name): Path<String>) -> Response {
    match tokio::fs::read(dir.join(&name)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The file in 64 KiB chunks, one every 100 ms: an import that takes a while.
async fn slow(State(dir): State<PathBuf>, Path(name): Path<String>) -> Response {
    let Ok(bytes) = tokio::fs::read(dir.join(&name)).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let len = bytes.len();
    let chunks: Vec<Vec<u8>> = bytes.chunks(64 << 10).map(<[u8]>::to_vec).collect();
    let stream = futures::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(c)
    });
    (
        [(header::CONTENT_LENGTH, len.to_string())],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Half of the file, then silence with the connection held open.
async fn stall(State(dir): State<PathBuf>, Path(name): Path<String>) -> Response {
    let bytes = tokio::fs::read(dir.join(&name)).await.unwrap_or_default();
    let len = bytes.len();
    let half = bytes[..len / 2].to_vec();
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(half) })
        .chain(futures::stream::pending());
    (
        [(header::CONTENT_LENGTH, len.to_string())],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Announces the whole length, sends half, and closes the connection.
async fn truncated(State(dir): State<PathBuf>, Path(name): Path<String>) -> Response {
    let bytes = tokio::fs::read(dir.join(&name)).await.unwrap_or_default();
    let len = bytes.len();
    let half = bytes[..len / 2].to_vec();
    let stream = futures::stream::iter([
        Ok::<_, std::io::Error>(half),
        Err(std::io::Error::other("cut")),
    ]);
    (
        [(header::CONTENT_LENGTH, len.to_string())],
        Body::from_stream(stream),
    )
        .into_response()
}

use futures::StreamExt;

/// Serves `dir` at `/files/NAME`, slowly at `/slow/NAME`, and broken at `/stall/NAME` and
/// `/truncated/NAME`. Returns the base URL.
pub async fn serve(dir: PathBuf) -> String {
    let app = axum::Router::new()
        .route("/files/{name}", get(file))
        .route("/slow/{name}", get(slow))
        .route("/stall/{name}", get(stall))
        .route("/truncated/{name}", get(truncated))
        .with_state(dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
