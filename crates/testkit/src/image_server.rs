//! A local HTTP server for the images of a directory, with misbehaving routes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt as _;
use tokio::net::TcpStream;

const CHUNK: usize = 64 << 10;

#[derive(Clone)]
struct Served {
    dir: PathBuf,
    /// Requests per id of `/flaky`.
    flaky_hits: Arc<Mutex<HashMap<String, u32>>>,
}

/// Starts a server for the files of `dir` on 127.0.0.1 in the current tokio runtime (it ends
/// with it) and returns its address. `NAME` is a file of `dir`; a missing one is a 404.
///
/// - `/files/NAME`: the file;
/// - `/redirect/N/NAME`: `N` redirects (302), then the file;
/// - `/status/CODE`: that status, with an empty body;
/// - `/flaky/ID/FAILS/NAME`: 503 for the first `FAILS` requests with that `ID`, then the file;
/// - `/slow/NAME?every_ms=MS`: the file in 64 KiB chunks, one every `MS` (100 by default)
///   milliseconds: an import that takes a while;
/// - `/truncated/NAME`: announces the file's length, sends its first half, and breaks the
///   connection;
/// - `/stall/NAME?bytes=N`: announces the file's length, sends its first `N` bytes (64 KiB by
///   default), then nothing, with the connection held open;
/// - `/unframed/NAME`: the file's first half with neither a length nor chunked encoding, then
///   the connection closes: to the client, the body ended there (HTTP/1.1 allows a body to run
///   until the close), as a server that dies halfway looks.
pub async fn serve_images(dir: impl Into<PathBuf>) -> SocketAddr {
    let dir = dir.into();
    let served = Served {
        dir: dir.clone(),
        flaky_hits: Arc::default(),
    };
    let app = Router::new()
        .route("/files/{name}", get(file))
        .route("/redirect/{n}/{name}", get(redirect))
        .route("/status/{code}", get(status))
        .route("/flaky/{id}/{fails}/{name}", get(flaky))
        .route("/slow/{name}", get(slow))
        .route("/truncated/{name}", get(truncated))
        .route("/stall/{name}", get(stall))
        .with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = Unframed::front(listener, dir);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

const UNFRAMED: &[u8] = b"GET /unframed/";

/// The listener axum serves from: hyper frames every body it sends (a length or chunks), so the
/// `/unframed/` requests are answered here, by hand, and the rest are handed on to axum.
struct Unframed {
    handed_on: tokio::sync::mpsc::Receiver<(TcpStream, SocketAddr)>,
    addr: SocketAddr,
}

impl Unframed {
    fn front(listener: tokio::net::TcpListener, dir: PathBuf) -> Self {
        let addr = listener.local_addr().unwrap();
        let (tx, handed_on) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            while let Ok((conn, peer)) = listener.accept().await {
                let (tx, dir) = (tx.clone(), dir.clone());
                // Each connection is looked at in a task of its own, so that a client slow to
                // send its request holds up no other.
                tokio::spawn(async move {
                    if is_unframed(&conn).await {
                        let _ = send_unframed(conn, &dir).await;
                    } else {
                        let _ = tx.send((conn, peer)).await;
                    }
                });
            }
        });
        Self { handed_on, addr }
    }
}

impl axum::serve::Listener for Unframed {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.handed_on.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Whether the request starts with [`UNFRAMED`], read without taking it from the connection.
async fn is_unframed(conn: &TcpStream) -> bool {
    let mut buf = [0u8; UNFRAMED.len()];
    loop {
        match conn.peek(&mut buf).await {
            Ok(n) if n < buf.len() && buf[..n] == UNFRAMED[..n] && n > 0 => {
                // A request line still arriving: look again shortly.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(n) => return n == buf.len() && buf == UNFRAMED,
            Err(_) => return false,
        }
    }
}

async fn send_unframed(mut conn: TcpStream, dir: &std::path::Path) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 << 10 {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let name = line
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.strip_prefix("/unframed/"))
        .map(|name| name.split('?').next().unwrap_or(name).to_owned())
        .unwrap_or_default();
    let bytes = match tokio::fs::read(dir.join(&name)).await {
        Ok(bytes) if !name.contains('/') && !name.is_empty() => bytes,
        _ => {
            conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
            return conn.shutdown().await;
        }
    };
    conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
    )
    .await?;
    conn.write_all(&bytes[..bytes.len() / 2]).await?;
    // A clean close (FIN), not a reset: the client cannot tell this from the end of the body.
    conn.shutdown().await
}

async fn read(served: &Served, name: &str) -> Result<Vec<u8>, Response> {
    tokio::fs::read(served.dir.join(name))
        .await
        .map_err(|_| StatusCode::NOT_FOUND.into_response())
}

/// A body of `announced` bytes that is `stream`.
fn announced<S>(announced: usize, stream: S) -> Response
where
    S: futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static,
{
    (
        [(header::CONTENT_LENGTH, announced.to_string())],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn file(State(served): State<Served>, Path(name): Path<String>) -> Response {
    match read(&served, &name).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(missing) => missing,
    }
}

async fn redirect(Path((n, name)): Path<(u32, String)>) -> Response {
    let to = match n {
        0 | 1 => format!("/files/{name}"),
        _ => format!("/redirect/{}/{name}", n - 1),
    };
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    match StatusCode::from_u16(code) {
        Ok(code) => code.into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn flaky(
    State(served): State<Served>,
    Path((id, fails, name)): Path<(String, u32, String)>,
) -> Response {
    let seen = {
        let mut hits = served.flaky_hits.lock().unwrap();
        let n = hits.entry(id).or_default();
        *n += 1;
        *n
    };
    if seen <= fails {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    file(State(served), Path(name)).await
}

async fn slow(
    State(served): State<Served>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, u64>>,
) -> Response {
    let bytes = match read(&served, &name).await {
        Ok(bytes) => bytes,
        Err(missing) => return missing,
    };
    let every = Duration::from_millis(query.get("every_ms").copied().unwrap_or(100));
    let len = bytes.len();
    let chunks: Vec<Vec<u8>> = bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    let stream = futures::stream::iter(chunks).then(move |chunk| async move {
        tokio::time::sleep(every).await;
        Ok(chunk)
    });
    announced(len, stream)
}

async fn truncated(State(served): State<Served>, Path(name): Path<String>) -> Response {
    let mut bytes = match read(&served, &name).await {
        Ok(bytes) => bytes,
        Err(missing) => return missing,
    };
    let len = bytes.len();
    bytes.truncate(len / 2);
    // An error in the body makes hyper break the connection. It comes a little after the half,
    // because an error hyper finds at once drops the unsent half (and the head) with it.
    let cut = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::other("the test server cut the body"))
    };
    let stream = futures::stream::iter([Ok(bytes)]).chain(futures::stream::once(cut));
    announced(len, stream)
}

async fn stall(
    State(served): State<Served>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, usize>>,
) -> Response {
    let mut bytes = match read(&served, &name).await {
        Ok(bytes) => bytes,
        Err(missing) => return missing,
    };
    let len = bytes.len();
    bytes.truncate(query.get("bytes").copied().unwrap_or(CHUNK));
    let stream = futures::stream::iter([Ok(bytes)]).chain(futures::stream::pending());
    announced(len, stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The status line, headers and as much of the body as arrives within `wait`.
    async fn get(addr: SocketAddr, path: &str, wait: Duration) -> (String, Vec<u8>) {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        conn.write_all(request.as_bytes()).await.unwrap();
        // Read by hand: whatever arrived before a broken connection or the wait's end counts.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(Ok(n @ 1..)) = tokio::time::timeout(wait, conn.read(&mut buf)).await {
            got.extend_from_slice(&buf[..n]);
        }
        let split = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("{path}: no head in {got:?}"));
        let head = String::from_utf8(got[..split].to_vec()).unwrap();
        (head, got[split + 4..].to_vec())
    }

    fn image() -> Vec<u8> {
        (0..300_000u32).map(|i| (i % 251) as u8).collect()
    }

    async fn server() -> (tempfile::TempDir, SocketAddr) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("disk.raw"), image()).unwrap();
        let addr = serve_images(dir.path()).await;
        (dir, addr)
    }

    const QUICK: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn files_redirects_statuses_and_flaky() {
        let (_dir, addr) = server().await;
        let (head, body) = get(addr, "/files/disk.raw", QUICK).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.contains("content-type: application/octet-stream"),
            "{head}"
        );
        assert_eq!(body, image());
        let (head, _) = get(addr, "/files/missing.img", QUICK).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let (head, _) = get(addr, "/redirect/3/disk.raw", QUICK).await;
        assert!(head.contains("location: /redirect/2/disk.raw"), "{head}");
        let (head, _) = get(addr, "/redirect/1/disk.raw", QUICK).await;
        assert!(head.contains("location: /files/disk.raw"), "{head}");
        let (head, _) = get(addr, "/status/418", QUICK).await;
        assert!(head.starts_with("HTTP/1.1 418"), "{head}");
        for expected in ["503", "503", "200", "200"] {
            let (head, _) = get(addr, "/flaky/a/2/disk.raw", QUICK).await;
            assert!(head.starts_with(&format!("HTTP/1.1 {expected}")), "{head}");
        }
        let (head, _) = get(addr, "/flaky/b/2/disk.raw", QUICK).await;
        assert!(head.starts_with("HTTP/1.1 503"), "ids count apart: {head}");
    }

    #[tokio::test]
    async fn unframed_bodies_end_at_the_close() {
        let (_dir, addr) = server().await;
        let (head, body) = get(addr, "/unframed/disk.raw", QUICK).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(
            !head.contains("content-length") && !head.contains("transfer-encoding"),
            "{head}"
        );
        assert_eq!(body, image()[..150_000]);
        let (head, _) = get(addr, "/unframed/missing.img", QUICK).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        // Every other route is still axum's.
        let (head, body) = get(addr, "/files/disk.raw", QUICK).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, image());
    }

    #[tokio::test]
    async fn broken_bodies_announce_the_whole_length() {
        let (_dir, addr) = server().await;
        let (head, body) = get(addr, "/truncated/disk.raw", QUICK).await;
        assert!(head.contains("content-length: 300000"), "{head}");
        assert_eq!(body, image()[..150_000]);

        let (head, body) = get(addr, "/stall/disk.raw", Duration::from_millis(500)).await;
        assert!(head.contains("content-length: 300000"), "{head}");
        assert_eq!(body, image()[..64 << 10]);
        let (_, body) = get(
            addr,
            "/stall/disk.raw?bytes=1000",
            Duration::from_millis(500),
        )
        .await;
        assert_eq!(body, image()[..1000]);

        let start = Instant::now();
        let (head, body) = get(addr, "/slow/disk.raw?every_ms=50", QUICK).await;
        assert!(head.contains("content-length: 300000"), "{head}");
        assert_eq!(body, image());
        // Five chunks, each after a pause.
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "{:?}",
            start.elapsed()
        );
    }
}
