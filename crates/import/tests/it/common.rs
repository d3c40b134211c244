//! What the import tests share: their sample images, served from 127.0.0.1 (so imports must
//! allow private networks), and a local blob store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use tidepool_import::{Blobs, ImportLimits};
use tidepool_testkit::{serve_images, Compression, Pattern, Samples};

/// Size of the raw image every other format is converted from.
const RAW_SIZE: u64 = 2 << 20;

/// `disk.{raw,qcow2,vhdx,vdi,vmdk}`, each also `.gz`, `.multi.gz`, `.bz2` and `.multi.bz2`,
/// `huge.qcow2` (64 GiB virtual) and `cut.raw.gz` (half a gzip stream). Built once per test
/// binary; the first caller pays for `qemu-img`.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        Samples::new(RAW_SIZE, Pattern::CompressibleNoise)
            .convert("qcow2", &[])
            .convert("vhdx", &[])
            .convert("vdi", &[])
            .convert("vmdk", &[])
            // An image whose virtual size dwarfs its file size, for limits the inspector
            // enforces.
            .huge_qcow2("64G")
            .compressed(&[
                Compression::Gzip,
                Compression::MultiGzip,
                Compression::Bzip2,
                Compression::MultiBzip2,
            ])
            // Level 1, as these tests always had: fast, and for bzip2 a stream of many 100 kB
            // blocks.
            .compression_level(1)
            .truncated_raw_gz()
            .build()
    })
}

/// The fixtures' server, in the current runtime.
pub async fn serve() -> SocketAddr {
    serve_images(fixtures()).await
}

/// Limits for serving from 127.0.0.1, with fast retries and short timeouts.
pub fn test_limits() -> ImportLimits {
    ImportLimits {
        allow_private_networks: true,
        timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(5),
        retries: 2,
        retry_base_delay: Duration::from_millis(10),
        ..ImportLimits::default()
    }
}

/// A temporary local blob store, and the directory to look for leftovers in.
pub fn temp_blobs() -> (tempfile::TempDir, Blobs) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(dir.path()).unwrap();
    (dir, blobs)
}
