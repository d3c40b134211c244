//! Sample disk images made with qemu-img, gzip and bzip2.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const MIB: u64 = 1 << 20;
const SAMPLES_PREFIX: &str = "tidepool-samples-";

/// Runs `cmd` and returns its stdout; panics with its stderr if it fails, and with what to
/// install if it cannot be started.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); install qemu-utils, gzip and bzip2"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `qemu-img` with `args` in `dir` (where relative names, such as a backing file's, are
/// resolved) and returns its stdout.
pub fn qemu_img<I>(dir: &Path, args: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<OsStr>,
{
    let stdout = run(Command::new("qemu-img").args(args).current_dir(dir));
    String::from_utf8(stdout).expect("qemu-img writes UTF-8")
}

/// What `qemu-img info` says of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuInfo {
    /// qemu's name of the format: `raw`, `qcow2`, `vmdk`, ...
    pub format: String,
    pub virtual_size: u64,
}

/// `qemu-img info --output=json` of `path`.
pub fn qemu_info(path: &Path) -> QemuInfo {
    let json = run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path));
    let info: serde_json::Value = serde_json::from_slice(&json).unwrap();
    QemuInfo {
        format: info["format"].as_str().unwrap().to_owned(),
        virtual_size: info["virtual-size"].as_u64().unwrap(),
    }
}

/// `data` compressed by the `gzip` tool at `level` (its default if `None`). The real tool, so
/// that importers are tested against what users upload, and fast even in a debug build.
pub fn gzip(data: &[u8], level: Option<u32>) -> Vec<u8> {
    compress_with("gzip", data, level)
}

/// `data` compressed by the `bzip2` tool at `level` (its default, 9, if `None`).
pub fn bzip2(data: &[u8], level: Option<u32>) -> Vec<u8> {
    compress_with("bzip2", data, level)
}

fn compress_with(tool: &str, data: &[u8], level: Option<u32>) -> Vec<u8> {
    let input = tempfile::NamedTempFile::new().unwrap();
    fs::write(input.path(), data).unwrap();
    let mut cmd = Command::new(tool);
    cmd.arg("-c");
    if let Some(level) = level {
        cmd.arg(format!("-{level}"));
    }
    run(cmd.arg(input.path()))
}

/// The content of a raw sample disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Bytes below 16 from a xorshift, every third 4 KiB page zero: varied, yet compressible,
    /// and not starting with any format's magic bytes. (The import tests' disk.)
    CompressibleNoise,
    /// 4 KiB of counting bytes at the start of every third MiB, zeros elsewhere, so that formats
    /// have real data to carry. (The server tests' disk.)
    EveryThirdMib,
    /// 6000 bytes, none of them zero, at five places from the first byte to 8 KiB before the
    /// end, in a sparse file otherwise: data in clusters far apart. Needs at least 34 MiB.
    /// (The qemu-img tests' disk of tidepool-formats.)
    Scattered,
}

impl Pattern {
    /// Writes a raw disk of `len` bytes with this content to `path`.
    pub fn write(self, path: &Path, len: u64) {
        match self {
            Pattern::CompressibleNoise => fs::write(path, compressible_noise(len)).unwrap(),
            Pattern::EveryThirdMib => fs::write(path, every_third_mib(len)).unwrap(),
            Pattern::Scattered => write_scattered(path, len),
        }
    }
}

fn compressible_noise(len: u64) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|i| {
            if (i / 4096) % 3 == 0 {
                return 0;
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 16) as u8
        })
        .collect()
}

fn every_third_mib(len: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; usize::try_from(len).unwrap()];
    for (i, chunk) in bytes.chunks_mut(MIB as usize).enumerate().step_by(3) {
        let marked = chunk.len().min(4096);
        chunk[..marked]
            .iter_mut()
            .enumerate()
            .for_each(|(j, b)| *b = (i * 31 + j) as u8);
    }
    bytes
}

fn write_scattered(path: &Path, len: u64) {
    assert!(
        len >= 34 * MIB,
        "Pattern::Scattered needs 34 MiB, not {len} bytes"
    );
    let mut f = File::create(path).unwrap();
    f.set_len(len).unwrap();
    for (i, off) in [0u64, 3 * MIB + 17, 10 * MIB, 33 * MIB + 4096, len - 8192]
        .into_iter()
        .enumerate()
    {
        f.seek(SeekFrom::Start(off)).unwrap();
        let block: Vec<u8> = (0..6000u32)
            .map(|n| (n.wrapping_mul(31).wrapping_add(i as u32 * 7) % 251) as u8 | 1)
            .collect();
        f.write_all(&block).unwrap();
    }
}

/// How [`Samples`] compresses each of its disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `disk.FORMAT.gz`
    Gzip,
    /// `disk.FORMAT.multi.gz`: the first third and the rest as two gzip members.
    MultiGzip,
    /// `disk.FORMAT.bz2`
    Bzip2,
    /// `disk.FORMAT.multi.bz2`: the first third and the rest as two bzip2 streams.
    MultiBzip2,
}

impl Compression {
    fn suffix(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::MultiGzip => ".multi.gz",
            Compression::Bzip2 => ".bz2",
            Compression::MultiBzip2 => ".multi.bz2",
        }
    }

    fn apply(self, plain: &[u8], level: Option<u32>) -> Vec<u8> {
        let compress = match self {
            Compression::Gzip | Compression::MultiGzip => gzip,
            Compression::Bzip2 | Compression::MultiBzip2 => bzip2,
        };
        match self {
            Compression::Gzip | Compression::Bzip2 => compress(plain, level),
            Compression::MultiGzip | Compression::MultiBzip2 => {
                let third = plain.len() / 3;
                let mut out = compress(&plain[..third], level);
                out.extend(compress(&plain[third..], level));
                out
            }
        }
    }
}

/// A directory of sample images, described then built:
///
/// - `disk.raw`, `raw_len` bytes of a [`Pattern`] under an MBR with one partition (see
///   [`Samples::partition`]), since DigitalOcean, and so tidepool, refuse a raw image without
///   a partition table;
/// - `disk.FORMAT` for each [`convert`](Samples::convert), converted from `disk.raw`;
/// - `disk.raw.SUFFIX` and `disk.FORMAT.SUFFIX` for each [`Compression`];
/// - and, if asked for, `backing.qcow2`, `huge.qcow2` and `cut.raw.gz`.
///
/// Build it once per test binary, since qemu-img takes a while:
///
/// ```no_run
/// use std::path::PathBuf;
/// use std::sync::OnceLock;
/// use tidepool_testkit::{Compression, Pattern, Samples};
///
/// fn samples() -> &'static PathBuf {
///     static DIR: OnceLock<PathBuf> = OnceLock::new();
///     DIR.get_or_init(|| {
///         Samples::new(8 << 20, Pattern::EveryThirdMib)
///             .convert("qcow2", &[])
///             .convert("vhdx", &[])
///             .convert("vdi", &[])
///             .convert("vmdk", &["-o", "subformat=streamOptimized"])
///             .compressed(&[Compression::Gzip, Compression::Bzip2])
///             .backing_qcow2()
///             .huge_qcow2("200G")
///             .build()
///     })
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a description builds nothing until build() or build_in()"]
pub struct Samples {
    raw_len: u64,
    pattern: Pattern,
    conversions: Vec<(String, Vec<String>)>,
    compressions: Vec<Compression>,
    compression_level: Option<u32>,
    backing_qcow2: bool,
    huge_qcow2: Option<String>,
    truncated_raw_gz: bool,
}

impl Samples {
    /// Just `disk.raw`, `raw_len` bytes of `pattern`.
    pub fn new(raw_len: u64, pattern: Pattern) -> Self {
        Samples {
            raw_len,
            pattern,
            conversions: Vec::new(),
            compressions: Vec::new(),
            compression_level: None,
            backing_qcow2: false,
            huge_qcow2: None,
            truncated_raw_gz: false,
        }
    }

    /// Adds `disk.{format}`: `qemu-img convert -f raw -O {format} {options} disk.raw`, where
    /// `options` are qemu-img arguments such as `["-o", "subformat=streamOptimized"]`.
    pub fn convert(mut self, format: &str, options: &[&str]) -> Self {
        let options = options.iter().map(|o| (*o).to_owned()).collect();
        self.conversions.push((format.to_owned(), options));
        self
    }

    /// Adds every disk (raw and converted) in each of `compressions`.
    pub fn compressed(mut self, compressions: &[Compression]) -> Self {
        self.compressions.extend_from_slice(compressions);
        self
    }

    /// The gzip and bzip2 level (1 to 9) instead of each tool's default. Not only a matter of
    /// speed: bzip2's level is its block size, so it decides how many blocks a stream has.
    pub fn compression_level(mut self, level: u32) -> Self {
        self.compression_level = Some(level);
        self
    }

    /// Adds `backing.qcow2`, a qcow2 overlay whose backing file is `disk.qcow2` (so it needs
    /// [`convert("qcow2", ..)`](Samples::convert)).
    pub fn backing_qcow2(mut self) -> Self {
        self.backing_qcow2 = true;
        self
    }

    /// Adds `huge.qcow2`, an empty qcow2 of `virtual_size` (qemu-img's notation, e.g. `"64G"`):
    /// a small file whose virtual size is beyond any limit.
    pub fn huge_qcow2(mut self, virtual_size: &str) -> Self {
        self.huge_qcow2 = Some(virtual_size.to_owned());
        self
    }

    /// Adds `cut.raw.gz`, the first half of `disk.raw` gzipped: a download cut short.
    pub fn truncated_raw_gz(mut self) -> Self {
        self.truncated_raw_gz = true;
        self
    }

    /// Builds the samples in a new directory under the system's temporary directory and returns
    /// it. The directory lives as long as the process: samples are usually held by a static,
    /// which is never dropped, so directories of processes that have ended are removed here
    /// instead, and runs do not pile them up.
    pub fn build(&self) -> PathBuf {
        static BUILT: AtomicU32 = AtomicU32::new(0);
        remove_samples_of_ended_processes();
        let dir = std::env::temp_dir().join(format!(
            "{SAMPLES_PREFIX}{}-{}",
            std::process::id(),
            BUILT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        self.build_in(&dir);
        dir
    }

    /// Gives the raw disk `disk` (its first sector, at least) an MBR: one Linux partition
    /// from sector 1 to the end of the disk, in the 66 bytes before the end of the first
    /// sector, which the boot code would otherwise use. For tests that serve raw images of their
    /// own.
    pub fn partition(disk: &mut [u8], disk_len: u64) {
        assert!(
            disk.len() >= 512 && disk_len >= 1024,
            "an MBR needs a first sector and room for a partition"
        );
        let sectors = u32::try_from(disk_len / 512 - 1).unwrap_or(u32::MAX);
        let entry = &mut disk[446..462];
        entry.fill(0);
        entry[4] = 0x83;
        entry[8..12].copy_from_slice(&1u32.to_le_bytes());
        entry[12..16].copy_from_slice(&sectors.to_le_bytes());
        disk[462..510].fill(0);
        disk[510..512].copy_from_slice(&[0x55, 0xaa]);
    }

    /// Builds the samples in `dir`, which exists.
    pub fn build_in(&self, dir: &Path) {
        let raw = dir.join("disk.raw");
        self.pattern.write(&raw, self.raw_len);
        partition_file(&raw, self.raw_len);
        let mut disks = vec![raw.clone()];
        for (format, options) in &self.conversions {
            let disk = dir.join(format!("disk.{format}"));
            let mut args = vec!["convert", "-f", "raw", "-O", format];
            args.extend(options.iter().map(String::as_str));
            qemu_img(
                dir,
                args.iter()
                    .map(OsStr::new)
                    .chain([raw.as_os_str(), disk.as_os_str()]),
            );
            disks.push(disk);
        }
        for disk in &disks {
            let plain = fs::read(disk).unwrap();
            for compression in &self.compressions {
                let mut name = disk.clone().into_os_string();
                name.push(compression.suffix());
                fs::write(name, compression.apply(&plain, self.compression_level)).unwrap();
            }
        }
        if self.backing_qcow2 {
            assert!(
                dir.join("disk.qcow2").exists(),
                "backing.qcow2 needs convert(\"qcow2\", ..)"
            );
            qemu_img(
                dir,
                [
                    "create",
                    "-f",
                    "qcow2",
                    "-b",
                    "disk.qcow2",
                    "-F",
                    "qcow2",
                    "backing.qcow2",
                ],
            );
        }
        if let Some(virtual_size) = &self.huge_qcow2 {
            qemu_img(dir, ["create", "-f", "qcow2", "huge.qcow2", virtual_size]);
        }
        if self.truncated_raw_gz {
            let gz = gzip(&fs::read(&raw).unwrap(), self.compression_level);
            fs::write(dir.join("cut.raw.gz"), &gz[..gz.len() / 2]).unwrap();
        }
    }
}

fn partition_file(path: &Path, len: u64) {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut sector = [0u8; 512];
    std::io::Read::read_exact(&mut f, &mut sector).unwrap();
    Samples::partition(&mut sector, len);
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&sector).unwrap();
}

fn remove_samples_of_ended_processes() {
    // Without /proc a live process cannot be told from an ended one, so nothing is removed.
    if !Path::new("/proc/self").exists() {
        return;
    }
    for entry in fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(SAMPLES_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_have_their_length_and_shape() {
        let noise = compressible_noise(3 * 4096 + 5);
        assert_eq!(noise.len(), 3 * 4096 + 5);
        assert!(noise[..4096].iter().all(|&b| b == 0));
        assert!(noise[4096..].iter().all(|&b| b < 16) && noise[4096..].iter().any(|&b| b != 0));

        let marked = every_third_mib(8 * MIB);
        assert_eq!(marked.len(), 8 << 20);
        for mib in 0..8usize {
            let start = &marked[mib << 20..(mib << 20) + 4096];
            assert_eq!(start.iter().any(|&b| b != 0), mib % 3 == 0, "MiB {mib}");
        }
        assert_eq!(marked[(3 << 20) + 1], 3 * 31 + 1);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scattered.raw");
        Pattern::Scattered.write(&path, 64 * MIB);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, 64 * MIB);
        assert!(bytes[..6000].iter().all(|&b| b != 0));
        assert!(bytes[6000..3 << 20].iter().all(|&b| b == 0));
        assert!(bytes[(64 << 20) - 8192..(64 << 20) - 2192]
            .iter()
            .all(|&b| b != 0));
    }

    #[test]
    fn samples_are_built_as_described() {
        let dir = tempfile::tempdir().unwrap();
        Samples::new(MIB, Pattern::CompressibleNoise)
            .convert("qcow2", &[])
            .convert("vmdk", &["-o", "subformat=streamOptimized"])
            .compressed(&[Compression::MultiGzip, Compression::Bzip2])
            .compression_level(1)
            .backing_qcow2()
            .huge_qcow2("64G")
            .truncated_raw_gz()
            .build_in(dir.path());
        let raw = fs::read(dir.path().join("disk.raw")).unwrap();
        let mut partitioned = compressible_noise(MIB);
        Samples::partition(&mut partitioned, MIB);
        assert_eq!(raw, partitioned);
        assert_eq!(&raw[510..512], &[0x55, 0xaa], "disk.raw has an MBR");
        assert_eq!(raw[446 + 4], 0x83, "with a Linux partition");
        assert_eq!(
            raw[512..],
            compressible_noise(MIB)[512..],
            "after the pattern"
        );
        for (name, format, virtual_size) in [
            ("disk.raw", "raw", MIB),
            ("disk.qcow2", "qcow2", MIB),
            ("disk.vmdk", "vmdk", MIB),
            ("backing.qcow2", "qcow2", MIB),
            ("huge.qcow2", "qcow2", 64 << 30),
        ] {
            let info = qemu_info(&dir.path().join(name));
            assert_eq!(
                (info.format.as_str(), info.virtual_size),
                (format, virtual_size)
            );
        }
        let gunzip = |name: &str| {
            let path = dir.path().join(name);
            run(Command::new("gzip").args(["-dc"]).arg(path))
        };
        assert_eq!(gunzip("disk.raw.multi.gz"), raw);
        let bunzip = run(Command::new("bzip2")
            .arg("-dc")
            .arg(dir.path().join("disk.vmdk.bz2")));
        assert_eq!(bunzip, fs::read(dir.path().join("disk.vmdk")).unwrap());
        assert!(!dir.path().join("disk.raw.gz").exists());
        let cut = Command::new("gzip")
            .arg("-dc")
            .arg(dir.path().join("cut.raw.gz"))
            .output()
            .unwrap();
        assert!(!cut.status.success(), "a cut gzip stream does not decode");
    }

    #[test]
    #[should_panic(expected = "install qemu-utils, gzip and bzip2")]
    fn a_missing_tool_names_what_to_install() {
        run(&mut Command::new("tidepool-testkit-no-such-tool"));
    }
}
