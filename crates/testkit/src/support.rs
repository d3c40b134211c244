//! Small helpers that test directories kept writing for themselves.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A port on 127.0.0.1 that nothing listens on: bound, then released. Another process could take
/// it in between, which is why servers under test bind port 0 where they can.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Calls `check` every `every` until it returns `Some`, and returns that; panics with `what`
/// once `within` has passed without it.
pub async fn wait_for<T, F, Fut>(within: Duration, every: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(done) = check().await {
            return done;
        }
        assert!(Instant::now() < deadline, "{what} (waited {within:?})");
        tokio::time::sleep(every).await;
    }
}

/// Every file under `root`, in no particular order; none if `root` does not exist.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if !root.exists() {
        return files;
    }
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

/// The SHA-256 of `data` in lowercase hex, as tidepool reports it.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new temporary directory named after `tag`, removed when dropped.
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("tidepool-{tag}-"))
        .tempdir()
        .unwrap()
}

/// A child process (a server under test, say) that is killed when the test ends, however it
/// ends: a failed assertion must not leave it running.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_free_port_refuses_connections() {
        let port = free_port();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[tokio::test]
    async fn wait_for_returns_what_the_check_found() {
        let calls = AtomicU32::new(0);
        let found = wait_for(
            Duration::from_secs(5),
            Duration::from_millis(1),
            "never",
            || {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                async move { (n == 3).then_some(n) }
            },
        )
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "the thing never happened (waited 50ms)")]
    async fn wait_for_gives_up_with_its_message() {
        wait_for(
            Duration::from_millis(50),
            Duration::from_millis(5),
            "the thing never happened",
            || async { None::<()> },
        )
        .await;
    }

    #[test]
    fn files_under_finds_nested_files_only() {
        let dir = temp_dir("testkit");
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/c"), b"").unwrap();
        std::fs::write(dir.path().join("d"), b"").unwrap();
        let mut found = files_under(dir.path());
        found.sort();
        assert_eq!(found, [dir.path().join("a/b/c"), dir.path().join("d")]);
        assert!(files_under(&dir.path().join("missing")).is_empty());
        assert!(dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tidepool-testkit-"));
    }

    #[test]
    fn sha256_hex_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_guarded_child_is_killed_on_drop() {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        drop(KillOnDrop(child));
        // Reaped by the guard, so the pid is gone rather than a zombie.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
