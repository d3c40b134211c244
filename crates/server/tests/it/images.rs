//! The server's sample images, made once per test binary with testkit's [`Samples`], and
//! testkit's image server for them.

use std::path::PathBuf;
use std::sync::OnceLock;
use tidepool_testkit::{serve_images, Compression, Pattern, Samples};

/// The raw disk every other sample is converted from: 8 MiB with content at a few places, so
/// that formats have real data to carry.
pub const RAW_LEN: u64 = 8 << 20;

/// A directory of sample images, made once per test binary: `disk.{raw,qcow2,vhdx,vdi,vmdk}`,
/// each also as `.gz` and `.bz2`, plus `backing.qcow2` (refers to a backing file) and
/// `huge.qcow2` (200 GiB virtual).
pub fn samples() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        Samples::new(RAW_LEN, Pattern::EveryThirdMib)
            .convert("qcow2", &[])
            .convert("vhdx", &[])
            .convert("vdi", &[])
            .convert("vmdk", &["-o", "subformat=streamOptimized"])
            .compressed(&[Compression::Gzip, Compression::Bzip2])
            .backing_qcow2()
            .huge_qcow2("200G")
            .build()
    })
}

/// Serves the samples (testkit's routes: `/files/NAME`, `/slow/NAME` at 64 KiB every 100 ms,
/// `/truncated/NAME`, `/stall/NAME?bytes=N`…). Returns the base URL.
pub async fn serve() -> String {
    format!("http://{}", serve_images(samples()).await)
}
