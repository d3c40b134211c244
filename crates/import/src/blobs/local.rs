//! Streaming writes into the local directory store.
//!
//! `object_store`'s multipart upload to a `LocalFileSystem` buffers whole parts (sized for S3's
//! 10,000-part limit: 11 MiB for 100 GB) before writing them, and leaves every byte dirty in the
//! page cache until the final fsync, which then writes the whole blob while the import waits.
//! A local file needs neither. This writer appends the chunks as they come, 1 MiB at a time
//! written on a blocking thread while the next MiB gathers, and:
//!
//! - where the filesystem supports it (Linux, `statx` reports direct-I/O alignment), writes with
//!   `O_DIRECT` from two aligned buffers the chunks are copied into on arrival: the disk reads
//!   the data from our buffer, so the CPU neither copies every byte into the page cache nor
//!   manages those pages (the largest cost of the write path after SHA-256 in `perf`), and the
//!   final fsync has only metadata left to write;
//! - elsewhere writes through the page cache, asks the kernel to start writing back every
//!   [`WRITEBACK_WINDOW`] bytes and waits for the data more than [`WRITEBACK_LAG`] bytes behind,
//!   so the disk works while the download goes on rather than all at the final fsync.
//!
//! The files and their crash safety are `object_store`'s own, so that its reads, listings and
//! deletes, and the staging sweep, see them the same way: the data goes to a staging file
//! `{key}#{n}` (created exclusively, new parent directories fsynced), which is fsynced, renamed to
//! its key and whose directory is fsynced on commit, and removed on abort or drop.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Direct I/O: the aligned buffers chunks are copied into as they arrive, each written whole on
/// a blocking thread while the other fills.
const DIRECT_BUFFER: usize = 1 << 20;
/// Direct I/O: memory, file offset and length alignment (every filesystem whose `statx`
/// alignments divide this qualifies).
const DIRECT_ALIGN: usize = 4096;
/// Page cache: chunks gathered before they are written (one `writev`) on a blocking thread.
const WRITE_BATCH: usize = 1 << 20;
/// Page cache: writeback of the bytes written is started every this many bytes…
const WRITEBACK_WINDOW: u64 = 8 << 20;
/// …and the writer waits until the bytes more than this far behind are on the disk.
const WRITEBACK_LAG: u64 = 32 << 20;

#[derive(Debug)]
pub(super) struct LocalUpload {
    file: Slot,
    gather: Gather,
    staging: PathBuf,
    dest: PathBuf,
    /// The staging file still exists and is ours to remove.
    live: bool,
}

/// What has arrived and is not yet on its way to the file.
#[derive(Debug)]
enum Gather {
    /// Direct I/O: copied on arrival (so the chunks' memory is free at once) into an aligned
    /// buffer; `spare` is the other buffer, back from its write.
    Aligned {
        buffer: AlignedBuffer,
        filled: usize,
        spare: Option<AlignedBuffer>,
    },
    /// Page cache: the chunks themselves, written in one `writev`.
    Chunks { chunks: Vec<Bytes>, len: usize },
}

/// The file, or the blocking write that has it.
#[derive(Debug)]
enum Slot {
    Idle(Box<FileState>),
    Writing(JoinHandle<io::Result<Written>>),
    /// A write's future was dropped (the import was cancelled) or failed: the upload can only
    /// be aborted now.
    Broken,
}

/// A write done: the file, and the direct-I/O buffer it was written from, to be filled again.
type Written = (Box<FileState>, Option<AlignedBuffer>);

#[derive(Debug)]
struct FileState {
    file: File,
    /// Bytes written.
    len: u64,
    /// Page cache: writeback has been started for the bytes before `started` and has completed
    /// for those before `settled` (unused with direct I/O).
    started: u64,
    settled: u64,
}

/// [`DIRECT_BUFFER`] bytes aligned to [`DIRECT_ALIGN`] (inside a larger allocation).
#[derive(Debug)]
struct AlignedBuffer {
    memory: Vec<u8>,
    start: usize,
}

impl AlignedBuffer {
    fn new() -> Self {
        let memory = vec![0; DIRECT_BUFFER + DIRECT_ALIGN];
        let start = memory.as_ptr().align_offset(DIRECT_ALIGN);
        Self { memory, start }
    }

    fn get(&mut self) -> &mut [u8] {
        &mut self.memory[self.start..self.start + DIRECT_BUFFER]
    }
}

impl LocalUpload {
    /// Creates the staging file for `dest` (and any missing parent directories).
    pub(super) async fn create(dest: PathBuf) -> io::Result<Self> {
        Self::create_with(dest, true).await
    }

    async fn create_with(dest: PathBuf, try_direct: bool) -> io::Result<Self> {
        let d = dest.clone();
        let (state, staging, gather) = blocking(move || {
            let (file, staging) = create_staging(&d)?;
            let gather = if try_direct && direct::enable(&file) {
                Gather::Aligned {
                    buffer: AlignedBuffer::new(),
                    filled: 0,
                    spare: None,
                }
            } else {
                Gather::Chunks {
                    chunks: Vec::new(),
                    len: 0,
                }
            };
            let state = FileState {
                file,
                len: 0,
                started: 0,
                settled: 0,
            };
            Ok((Box::new(state), staging, gather))
        })
        .await?;
        Ok(Self {
            file: Slot::Idle(state),
            gather,
            staging,
            dest,
            live: true,
        })
    }

    /// Whether the data bypasses the page cache.
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        matches!(self.gather, Gather::Aligned { .. })
    }

    pub(super) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        if let Gather::Aligned { .. } = self.gather {
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let Gather::Aligned { buffer, filled, .. } = &mut self.gather else {
                    unreachable!("the mode never changes");
                };
                let n = rest.len().min(DIRECT_BUFFER - *filled);
                buffer.get()[*filled..*filled + n].copy_from_slice(&rest[..n]);
                *filled += n;
                rest = &rest[n..];
                if *filled == DIRECT_BUFFER {
                    self.write_aligned().await?;
                }
            }
            return Ok(());
        }
        let Gather::Chunks { chunks, len } = &mut self.gather else {
            unreachable!("the mode never changes");
        };
        *len += chunk.len();
        chunks.push(chunk);
        if *len >= WRITE_BATCH {
            let batch = std::mem::take(chunks);
            *len = 0;
            let mut state = self.settle().await?;
            // Not awaited: the next batch gathers while this one is written.
            self.file = Slot::Writing(tokio::task::spawn_blocking(move || {
                state.append_cached(&batch)?;
                Ok((state, None))
            }));
        }
        Ok(())
    }

    /// Starts writing the full aligned buffer and goes on filling the other.
    async fn write_aligned(&mut self) -> io::Result<()> {
        let mut state = self.settle().await?;
        let Gather::Aligned {
            buffer,
            filled,
            spare,
        } = &mut self.gather
        else {
            unreachable!("only direct I/O fills aligned buffers");
        };
        let next = spare.take().unwrap_or_else(AlignedBuffer::new);
        let mut full = std::mem::replace(buffer, next);
        *filled = 0;
        // Not awaited: the next buffer fills while this one is written.
        self.file = Slot::Writing(tokio::task::spawn_blocking(move || {
            state.file.write_all(full.get())?;
            state.len += DIRECT_BUFFER as u64;
            Ok((state, Some(full)))
        }));
        Ok(())
    }

    /// The file, once the write in progress (if any) is done.
    async fn settle(&mut self) -> io::Result<Box<FileState>> {
        let (state, buffer) = match std::mem::replace(&mut self.file, Slot::Broken) {
            Slot::Idle(state) => (state, None),
            Slot::Writing(write) => write.await.unwrap_or_else(|e| Err(io::Error::other(e)))?,
            Slot::Broken => {
                return Err(io::Error::other(
                    "an earlier write to this upload failed or was interrupted",
                ))
            }
        };
        if let (Gather::Aligned { spare, .. }, Some(buffer)) = (&mut self.gather, buffer) {
            *spare = Some(buffer);
        }
        Ok(state)
    }

    /// Writes what is pending, makes the file durable and renames it to its key.
    pub(super) async fn commit(mut self) -> io::Result<()> {
        let mut state = self.settle().await?;
        let mut gather = std::mem::replace(
            &mut self.gather,
            Gather::Chunks {
                chunks: Vec::new(),
                len: 0,
            },
        );
        let (staging, dest) = (self.staging.clone(), self.dest.clone());
        blocking(move || {
            match &mut gather {
                Gather::Aligned { buffer, filled, .. } => {
                    state.append_direct_tail(buffer, *filled)?
                }
                Gather::Chunks { chunks, .. } => state.append_cached(chunks)?,
            }
            state.file.sync_all()?;
            drop(state);
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
        // Also after a failed commit: nothing may be left behind but what a crash leaves. (A
        // write still running on its thread goes on into the unlinked file, then closes it.)
        if self.live {
            let _ = std::fs::remove_file(&self.staging);
        }
    }
}

impl FileState {
    fn append_cached(&mut self, batch: &[Bytes]) -> io::Result<()> {
        write_all_vectored(&mut self.file, batch)?;
        self.len += batch.iter().map(|b| b.len() as u64).sum::<u64>();
        // Keeps the disk busy during the import rather than after it.
        if self.len - self.started >= WRITEBACK_WINDOW {
            writeback::start(&self.file, self.started, self.len - self.started);
            self.started = self.len;
            let behind = self.started.saturating_sub(WRITEBACK_LAG);
            if behind > self.settled {
                writeback::wait(&self.file, self.settled, behind - self.settled);
                self.settled = behind;
            }
        }
        Ok(())
    }

    /// Writes the last, partial buffer: direct I/O writes whole blocks, so it is padded, and the
    /// file cut back to its length.
    fn append_direct_tail(&mut self, buffer: &mut AlignedBuffer, filled: usize) -> io::Result<()> {
        if filled > 0 {
            let whole = filled.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
            let tail = &mut buffer.get()[..whole];
            tail[filled..].fill(0);
            self.file.write_all(tail)?;
            self.len += filled as u64;
            self.file.set_len(self.len)?;
        }
        Ok(())
    }
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

#[cfg(target_os = "linux")]
mod direct {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    /// Switches `file` to `O_DIRECT` if its filesystem supports it with alignments that
    /// [`DIRECT_ALIGN`](super::DIRECT_ALIGN) satisfies; false leaves it as it was.
    pub(super) fn enable(file: &File) -> bool {
        let fd = file.as_raw_fd();
        // SAFETY: `statx` writes into the zeroed struct we pass and reads the empty C string;
        // `fcntl` takes and sets plain flags of a descriptor that `file` keeps open.
        unsafe {
            let mut stx: libc::statx = std::mem::zeroed();
            let aligned = libc::statx(
                fd,
                c"".as_ptr(),
                libc::AT_EMPTY_PATH,
                libc::STATX_DIOALIGN,
                &mut stx,
            ) == 0
                && stx.stx_mask & libc::STATX_DIOALIGN != 0
                && divides_align(stx.stx_dio_mem_align)
                && divides_align(stx.stx_dio_offset_align);
            if !aligned {
                return false;
            }
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_DIRECT) == 0
        }
    }

    /// 0 means no direct I/O.
    fn divides_align(align: u32) -> bool {
        align != 0 && (super::DIRECT_ALIGN as u32) % align == 0
    }
}

#[cfg(not(target_os = "linux"))]
mod direct {
    pub(super) fn enable(_: &std::fs::File) -> bool {
        false
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size around the direct-I/O buffer and block boundaries, in both modes.
    #[tokio::test]
    async fn both_modes_store_exactly_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(5 * DIRECT_BUFFER + 3 * DIRECT_ALIGN) as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let lens = [
            0,
            1,
            DIRECT_ALIGN - 1,
            DIRECT_ALIGN,
            DIRECT_ALIGN + 1,
            DIRECT_BUFFER - 1,
            DIRECT_BUFFER,
            DIRECT_BUFFER + 7,
            data.len(),
        ];
        let mut saw_direct = false;
        for direct in [true, false] {
            for (i, &len) in lens.iter().enumerate() {
                let dest = dir.path().join(format!("{direct}/{i}"));
                let mut up = LocalUpload::create_with(dest.clone(), direct)
                    .await
                    .unwrap();
                saw_direct |= up.is_direct();
                for piece in data[..len].chunks(300_001) {
                    up.write(Bytes::copy_from_slice(piece)).await.unwrap();
                }
                up.commit().await.unwrap();
                let stored = std::fs::read(&dest).unwrap();
                assert!(stored == data[..len], "{direct} {len}");
            }
        }
        if !saw_direct {
            eprintln!("NOTE: the temporary directory's filesystem does no direct I/O here");
        }
    }
}
