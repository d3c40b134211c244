//! What several of the command line's tests need beyond testkit: a `tidepool serve` process
//! with its log, waiting for one to answer, and image servers (testkit's) for a 1 MiB image and
//! for slow imports.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tidepool_testkit::{free_port, serve_images, temp_dir, wait_for, KillOnDrop, Pattern, Samples};

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

/// `tidepool serve` as a process, with its log collected as it comes.
pub struct Server {
    pub process: KillOnDrop,
    pub addr: SocketAddr,
    pub token: String,
    /// The server's log (stderr), as far as it has come.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// `tidepool serve` with a soft open-file limit of 1,024 (the hard one left as it is), a
    /// fresh data directory in `dir`, and `env`.
    pub fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut child = Command::new("sh")
            .args(["-c", "ulimit -Sn 1024 && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_tidepool"))
            .args(["serve", "--listen", &addr.to_string()])
            .current_dir(dir)
            .env("TIDEPOOL_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut process = KillOnDrop(child);
        let stdout = BufReader::new(process.0.stdout.take().unwrap());
        let mut token = None;
        // The first start prints the token, then the address once it listens.
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(t) = line.split_whitespace().find(|w| w.starts_with("dop_v1_")) {
                token.get_or_insert(t.trim_matches('"').to_owned());
            }
            if line.contains("http://") {
                break;
            }
        }
        let token = token.unwrap_or_else(|| {
            panic!(
                "tidepool serve printed no token; its log:\n{}",
                log.lock().unwrap().join("\n")
            )
        });
        Server {
            process,
            addr,
            token,
            log,
        }
    }

    /// `GET /v2/images` on a connection of its own, answered within 3 s or a panic.
    pub fn list_images(&self) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let response = client
            .get(format!("http://{}/v2/images", self.addr))
            .bearer_auth(&self.token)
            .send()
            .unwrap_or_else(|err| panic!("no answer from the server: {err}"));
        assert_eq!(response.status(), 200);
    }

    pub fn sigterm(&self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.process.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }
}
