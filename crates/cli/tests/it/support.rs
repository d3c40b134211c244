//! What several of the command line's tests need: `tidepool serve` processes that die with the
//! test, and an image server that sends its bytes slowly enough to interrupt an import.

use axum::body::Body;
use axum::routing::get;
use futures::StreamExt;
use std::process::Child;
use std::time::{Duration, Instant};

/// A server process that is killed (SIGKILL) when dropped, however the test ends.
pub struct ServerProcess(pub Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the server at `base` answers `GET /v2/images`: any answer without a token, a
/// 200 with one.
pub async fn wait_ready(http: &reqwest::Client, base: &str, token: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut request = http.get(format!("{base}/v2/images"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Ok(r) = request.send().await {
            if token.is_none() || r.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server at {base} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves `image` at `/disk.raw` on 127.0.0.1, 64 KiB every `pause`, with its length announced.
/// Returns the image's URL.
pub async fn slow_image_server(image: Vec<u8>, pause: Duration) -> String {
    let len = image.len();
    let app = axum::Router::new().route(
        "/disk.raw",
        get(move || {
            let chunks: Vec<Vec<u8>> = image.chunks(64 << 10).map(<[u8]>::to_vec).collect();
            async move {
                let stream = futures::stream::iter(chunks).then(move |c| async move {
                    tokio::time::sleep(pause).await;
                    Ok::<_, std::io::Error>(c)
                });
                (
                    [("content-length", len.to_string())],
                    Body::from_stream(stream),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/disk.raw")
}
