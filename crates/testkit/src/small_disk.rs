//! A tiny filesystem of its own, for tests of what a full disk does.

use std::path::Path;
use std::process::Command;

use crate::skip;

/// A tmpfs of a few bytes mounted on a temporary directory, unmounted when dropped. Mounting
/// needs root (as in CI); elsewhere [`SmallDisk::mount`] reports a skip.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// A filesystem of `bytes` (rounded up to whole pages by the kernel), or `None` after a
    /// [`skip`] for `test` when it cannot be mounted.
    #[track_caller]
    pub fn mount(test: &str, bytes: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                skip(test, &format!("a small full disk needs `mount -t tmpfs` as root (run the tests as root, as CI does): {}", why.trim()));
                None
            }
            Err(e) => {
                skip(
                    test,
                    &format!(
                        "a small full disk needs `mount` (run the tests as root, as CI does): {e}"
                    ),
                );
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file as large as the space left, so that the next write finds the disk full.
    pub fn fill(&self) {
        let filler = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("a filler file");
        let block = vec![0u8; 64 << 10];
        loop {
            match std::io::Write::write(&mut file, &block) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return,
                Err(e) => panic!("filling {}: {e}", filler.display()),
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily, so that a file a test still holds open does not keep the mount alive.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
