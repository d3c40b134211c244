//! Test support that several tidepool crates need, written once. A dev-dependency only, and it
//! depends on no tidepool crate, so every crate of the workspace can use it.
//!
//! # The skip protocol
//!
//! A test that needs something from outside the repository (PostgreSQL, an S3 bucket, the Python
//! contract tools) and does not find it calls [`skip`] and returns. A skip must never be quiet,
//! since a suite that silently skips its S3 tests looks exactly like one that passed them:
//!
//! - `SKIPPED {test}: {why}` goes straight to the process's stderr, where `cargo test` shows it
//!   without `--nocapture` (`eprintln!` would be captured by the test harness and hidden);
//! - if `TIDEPOOL_TEST_SKIP_LOG` names a file, the line `{test}: {why}` is appended to it, so
//!   `scripts/test` can list every skip of a run in its last lines, whichever test binary and
//!   thread it came from;
//! - if `TIDEPOOL_TEST_NO_SKIP=1`, a skip is a failure instead: [`skip`] panics naming the test
//!   and what it is missing: for runs (CI) that provide every service and must use them.
//!
//! # Sample disk images
//!
//! [`Samples`] builds a directory of images with `qemu-img`, `gzip` and `bzip2`: a raw disk of a
//! chosen size and [`Pattern`], converted to other formats, compressed, plus images that must be
//! refused. [`qemu_img`], [`qemu_info`] and [`run`] are there for tests that make their own.
//!
//! # The image server
//!
//! [`serve_images`] serves a directory on 127.0.0.1, plainly and through misbehaving routes
//! (redirects, errors, flaky, slow, truncated, stalled bodies).

mod image_server;
mod samples;
mod skip;
mod small_disk;
mod support;

pub use image_server::serve_images;
pub use samples::{bzip2, gzip, qemu_img, qemu_info, run, Compression, Pattern, QemuInfo, Samples};
pub use skip::{s3_bucket, skip, NO_SKIP_VAR, SKIP_LOG_VAR};
pub use small_disk::SmallDisk;
pub use support::{files_under, free_port, sha256_hex, temp_dir, wait_for, KillOnDrop};
