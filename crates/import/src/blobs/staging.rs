//! Staging files of the local directory store.
//!
//! `LocalFileSystem` writes an upload to `{key}#{n}` and renames it into place on completion; it
//! removes the file on abort or drop, but a crash leaves it behind, and `list` never shows it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::BlobError;

/// Whether `name` is a staging file's name: `{anything}#{digits}`.
pub(super) fn is_staging_name(name: &str) -> bool {
    match name.rsplit_once('#') {
        Some((_, n)) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Removes staging files under `root` last modified more than `older_than` ago.
pub(super) fn sweep(root: &Path, older_than: Duration) -> Result<usize, BlobError> {
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A directory emptied and removed by a concurrent delete is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(BlobError::Directory { path: dir, source }),
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            if !kind.is_file() || !is_staging_name(&name.to_string_lossy()) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff);
            if old && std::fs::remove_file(entry.path()).is_ok() {
                tracing::info!(file = %entry.path().display(), "removed a stale upload staging file");
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::is_staging_name;

    #[test]
    fn staging_names() {
        assert!(is_staging_name("abc#1"));
        assert!(is_staging_name("abc#123"));
        assert!(!is_staging_name("abc"));
        assert!(!is_staging_name("abc#"));
        assert!(!is_staging_name("abc#1x"));
    }
}
