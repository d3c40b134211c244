//! Streaming writes into the local directory store.
//!
//! `object_store`'s multipart upload to a `LocalFileSystem` buffers whole parts (sized for S3's
//! 10,000-part limit: 11 MiB for 100 GB) before writing them, and leaves every byte dirty in the
//! page cache until the final fsync, which then writes the whole blob while the import waits.
//! A local file needs neither: this writer appends each chunk as it comes, asks the kernel to
//! start writing back every [`WRITEBACK_WINDOW`] bytes, and waits for the data more than
//! [`WRITEBACK_LAG`] bytes behind, so the disk works while the download goes on and the final
//! fsync finds little left to do.
//!
//! The files and their crash safety are `object_store`'s own, so that its reads, listings and
//! deletes, and the staging sweep, see them the same way: the data goes to a staging file
//! `{key}#{n}` (created exclusively, new parent directories fsynced), which is fsynced, renamed to
//! its key and whose directory is fsynced on commit, and removed on abort or drop.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Data is handed to the kernel in writes of at least this much (several chunks in one `writev`).
const WRITE_BATCH: usize = 1 << 20;
/// Writeback of the bytes written is started every this many bytes…
const WRITEBACK_WINDOW: u64 = 8 << 20;
/// …and the writer waits until the bytes more than this far behind are on the disk.
const WRITEBACK_LAG: u64 = 32 << 20;

#[derive(Debug)]
pub(super) struct LocalUpload {
    /// `None` while a write runs on a blocking thread, and for good if that write's future was
    /// dropped (the import was cancelled): the upload can then only be aborted.
    state: Option<FileState>,
    staging: PathBuf,
    dest: PathBuf,
    pending: Vec<Bytes>,
    pending_len: usize,
    /// The staging file still exists and is ours to remove.
    live: bool,
}

#[derive(Debug)]
struct FileState {
    file: File,
    written: u64,
    /// Writeback has been started for the bytes before this offset…
    started: u64,
    /// …and has completed for those before this one.
    settled: u64,
}

impl LocalUpload {
    /// Creates the staging file for `dest` (and any missing parent directories).
    pub(super) async fn create(dest: PathBuf) -> io::Result<Self> {
        let d = dest.clone();
        let (file, staging) = blocking(move || create_staging(&d)).await?;
        Ok(Self {
            state: Some(FileState {
                file,
                written: 0,
                started: 0,
                settled: 0,
            }),
            staging,
            dest,
            pending: Vec::new(),
            pending_len: 0,
            live: true,
        })
    }

    pub(super) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len >= WRITE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut state = self.state.take().ok_or_else(interrupted)?;
        let batch = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let state = blocking(move || {
            write_all_vectored(&mut state.file, &batch)?;
            state.written += batch.iter().map(|b| b.len() as u64).sum::<u64>();
            state.write_back();
            Ok(state)
        })
        .await?;
        self.state = Some(state);
        Ok(())
    }

    /// Writes what is pending, makes the file durable and renames it to its key.
    pub(super) async fn commit(mut self) -> io::Result<()> {
        self.flush().await?;
        let state = self.state.take().ok_or_else(interrupted)?;
        let (staging, dest) = (self.staging.clone(), self.dest.clone());
        blocking(move || {
            state.file.sync_all()?;
            drop(state.file);
            std::fs::rename(&staging, &dest)?;
            sync_dir(dest.parent())
        })
        .await?;
        self.live = false;
        Ok(())
    }

    /// Removes the staging file and everything written to it.
    pub(super) async fn abort(mut self) -> io::Result<()> {
        self.live = false;
        let staging = self.staging.clone();
        blocking(move || std::fs::remove_file(staging)).await
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        // Also after a failed commit: nothing may be left behind but what a crash leaves.
        if self.live {
            let _ = std::fs::remove_file(&self.staging);
        }
    }
}

impl FileState {
    /// Keeps the disk busy during the import rather than after it (see the module's doc).
    fn write_back(&mut self) {
        if self.written - self.started < WRITEBACK_WINDOW {
            return;
        }
        writeback::start(&self.file, self.started, self.written - self.started);
        self.started = self.written;
        let behind = self.started.saturating_sub(WRITEBACK_LAG);
        if behind > self.settled {
            writeback::wait(&self.file, self.settled, behind - self.settled);
            self.settled = behind;
        }
    }
}

fn interrupted() -> io::Error {
    io::Error::other("an earlier write to this upload was interrupted")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

fn write_all_vectored(file: &mut File, batch: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `{dest}#{n}` for the first `n` not taken, as `object_store` names its staging files.
fn create_staging(dest: &Path) -> io::Result<(File, PathBuf)> {
    let mut n = 1u32;
    // A concurrent delete may remove a directory we just created (it removes empty ones), so
    // creating the directories is retried a few times.
    let mut dir_attempts = 0;
    loop {
        let mut name = dest.as_os_str().to_owned();
        name.push(format!("#{n}"));
        let staging = PathBuf::from(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
        {
            Ok(file) => return Ok((file, staging)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir_attempts < 5 => {
                dir_attempts += 1;
                create_parent_dirs(dest)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates `path`'s missing ancestors and fsyncs each directory that gained an entry, so a new
/// directory survives a crash as the file in it will.
fn create_parent_dirs(path: &Path) -> io::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    // The missing directories, deepest first, and the first ancestor that exists.
    let mut missing = Vec::new();
    let mut existing = Some(parent);
    while let Some(dir) = existing.filter(|d| !d.exists()) {
        missing.push(dir);
        existing = dir.parent();
    }
    std::fs::create_dir_all(parent)?;
    // Each gained an entry but the deepest, which gains the file and is fsynced on commit.
    for dir in missing.iter().skip(1).chain(existing.as_ref()) {
        sync_dir(Some(dir))?;
    }
    Ok(())
}

fn sync_dir(dir: Option<&Path>) -> io::Result<()> {
    match dir {
        #[cfg(unix)]
        Some(dir) => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// Hints to the kernel's writeback; advisory, so their failures are ignored (a real I/O error
/// is reported again by the fsync at commit).
#[cfg(target_os = "linux")]
mod writeback {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    /// Starts writing the range back, without waiting.
    pub(super) fn start(file: &File, offset: u64, len: u64) {
        sync_file_range(file, offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }

    /// Writes the range back and waits until it is on the disk (its metadata is left to fsync).
    pub(super) fn wait(file: &File, offset: u64, len: u64) {
        sync_file_range(
            file,
            offset,
            len,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        );
    }

    fn sync_file_range(file: &File, offset: u64, len: u64, flags: libc::c_uint) {
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: a plain syscall on a file descriptor that `file` keeps open; no memory is
        // passed.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, flags);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod writeback {
    use std::fs::File;

    pub(super) fn start(_: &File, _: u64, _: u64) {}
    pub(super) fn wait(_: &File, _: u64, _: u64) {}
}
