//! What several of the command line's tests need beyond testkit: waiting for a `tidepool serve`
//! process to answer, and image servers (testkit's) for a 1 MiB image and for slow imports.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use tidepool_testkit::{serve_images, temp_dir, wait_for, Pattern, Samples};

/// Waits until the server at `base` answers `GET /v2/images`: any answer without a token, a
/// 200 with one.
pub async fn wait_ready(http: &reqwest::Client, base: &str, token: Option<&str>) {
    let what = format!("server at {base} did not come up");
    wait_for(
        Duration::from_secs(30),
        Duration::from_millis(50),
        &what,
        || {
            let mut request = http.get(format!("{base}/v2/images"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move {
                let r = request.send().await.ok()?;
                (token.is_none() || r.status() == 200).then_some(())
            }
        },
    )
    .await
}

/// Serves a 1 MiB raw image as `{base}/disk.raw`; every other name is a 404. Returns the base.
pub async fn file_server() -> String {
    static IMAGES: OnceLock<PathBuf> = OnceLock::new();
    let dir = IMAGES.get_or_init(|| Samples::new(1 << 20, Pattern::EveryThirdMib).build());
    format!("http://{}/files", serve_images(dir).await)
}

/// Serves `image` on 127.0.0.1, 64 KiB every `pause`, with its length announced (testkit's
/// `/slow/` route). Returns the image's URL, and the directory it is served from, to be kept
/// as long as the URL is used.
pub async fn slow_image_server(image: &[u8], pause: Duration) -> (tempfile::TempDir, String) {
    let dir = temp_dir("slow-image");
    std::fs::write(dir.path().join("disk.raw"), image).unwrap();
    let addr = serve_images(dir.path()).await;
    let every_ms = pause.as_millis();
    (
        dir,
        format!("http://{addr}/slow/disk.raw?every_ms={every_ms}"),
    )
}
