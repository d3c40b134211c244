//! Header parsers and safety checks for the disk image formats tidepool
//! accepts: raw, qcow2, vhdx, vdi and vmdk (monolithicSparse and
//! streamOptimized).
//!
//! Everything here is a pure function over bytes: no I/O, no async, no panics
//! on any input, and no allocation sized by a value read from a header. The
//! importer pushes the decompressed upload through an [`Inspector`] as it
//! streams by; the inspector keeps only the first [`Inspector::PREFIX_LEN`]
//! bytes, the last [`Inspector::TAIL_LEN`] bytes and the offsets of the
//! image's own tables still to come (bounded), and refuses as soon as what it
//! has seen is enough (a backing file, an oversized virtual size, a foreign
//! format, a second format's signature...) or, at the end, when the file is
//! shorter than its tables say. As the image's tables (qcow2 L1/L2, the VHDX BAT, the
//! VDI block map, vmdk grain tables) stream by, it reads where they point, so a
//! file that ends before its data is refused as truncated (`tables.rs`).
//!
//! Refusing is the safe default: anything that would make a downstream tool
//! (qemu-img, a hypervisor) open a second file, decrypt, replay a log or
//! interpret the bytes as something else than what we recorded is refused with
//! a message the uploader can act on.

mod bytes;
mod foreign;
mod inspector;
mod qcow2;
mod tables;
mod vdi;
mod vhdx;
mod vmdk;

#[cfg(test)]
mod table_tests;

use std::fmt;

pub use inspector::Inspector;

/// A disk image format tidepool stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiskFormat {
    Raw,
    Qcow2,
    Vhdx,
    Vdi,
    Vmdk,
}

impl DiskFormat {
    /// Every format, in a stable order.
    pub const ALL: [DiskFormat; 5] = [Self::Raw, Self::Qcow2, Self::Vhdx, Self::Vdi, Self::Vmdk];

    /// The lowercase name qemu-img and the Images API use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
            Self::Vhdx => "vhdx",
            Self::Vdi => "vdi",
            Self::Vmdk => "vmdk",
        }
    }
}

impl fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`DiskFormat::from_str`](std::str::FromStr::from_str).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown disk format {:?}; expected one of raw, qcow2, vhdx, vdi, vmdk",
            self.0
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl std::str::FromStr for DiskFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// What an accepted image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub format: DiskFormat,
    /// Size of the disk the guest sees, in bytes.
    pub virtual_size: u64,
    /// Human-readable sub-format, e.g. "qcow2 v3", "vmdk streamOptimized".
    pub detail: String,
}

/// Why an upload was refused. `Display` is a sentence the uploader can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    message: String,
    too_large: bool,
}

impl Refusal {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            too_large: false,
        }
    }

    /// "corrupt {format} header: {what}".
    pub(crate) fn corrupt(format: &str, what: impl fmt::Display) -> Self {
        Self::new(format!(
            "corrupt {format} header: {what}; the file is damaged or is not really a {format} image"
        ))
    }

    pub(crate) fn too_large(virtual_size: u64, limit: u64) -> Self {
        Self {
            too_large: true,
            ..Self::new(format!(
                "virtual size {} exceeds the limit of {}; upload a smaller disk",
                human_size(virtual_size),
                human_size(limit)
            ))
        }
    }

    /// Whether the image was refused for its size alone, not for what it is.
    pub fn is_too_large(&self) -> bool {
        self.too_large
    }

    /// The sentence shown to the uploader.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// Inspect a whole image held in memory. Gives the same verdict as pushing the
/// same bytes through an [`Inspector`] in any chunking.
pub fn inspect(bytes: &[u8], max_virtual_size: u64) -> Result<Inspection, Refusal> {
    inspector::inspect_whole(bytes, max_virtual_size)
}

/// Binary units, exact when the size is a whole number of the unit, with the
/// byte count when it is not, so limits can be compared precisely. A whole number
/// of decimal gigabytes or terabytes (how limits like "100 GB" are set) is shown so.
pub(crate) fn human_size(n: u64) -> String {
    for (unit, name) in [(1_000_000_000_000u64, "TB"), (1_000_000_000, "GB")] {
        if n >= unit && n % unit == 0 && n % (1 << 30) != 0 {
            return format!("{} {name}", n / unit);
        }
    }
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (unit, name) in UNITS {
        if n >= unit {
            if n % unit == 0 {
                return format!("{} {name}", n / unit);
            }
            let tenths = (u128::from(n) * 10 / u128::from(unit)) % 10;
            return format!("{}.{tenths} {name} ({n} bytes)", n / unit);
        }
    }
    format!("{n} bytes")
}

/// Internal outcome of a parser: either a refusal, or "the buffer ended at
/// this absolute offset" so the caller can wait for more or call it truncated.
#[derive(Debug)]
pub(crate) enum Problem {
    Refuse(Refusal),
    Need(u64),
}

impl From<bytes::Need> for Problem {
    fn from(n: bytes::Need) -> Self {
        Problem::Need(n.0)
    }
}

impl From<Refusal> for Problem {
    fn from(r: Refusal) -> Self {
        Problem::Refuse(r)
    }
}

/// A supported format whose header made sense on its own; the rest is checked
/// once the total length and the tail are known.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub format: DiskFormat,
    pub virtual_size: u64,
    pub detail: String,
    /// The header points at structures up to here, so a shorter file is
    /// truncated or lying.
    pub min_len: u64,
    /// streamOptimized vmdk with its real header in the footer: the capacity
    /// the footer must repeat.
    pub vmdk_footer_capacity: Option<u64>,
    /// The tables to read as the file streams by, for the data they point at.
    pub tables: Option<tables::Plan>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in DiskFormat::ALL {
            assert_eq!(f.to_string().parse::<DiskFormat>(), Ok(f));
        }
        assert!("vpc".parse::<DiskFormat>().is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(100 << 30), "100 GiB");
        assert_eq!(human_size(100_000_000_000), "100 GB");
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(3 << 19), "1.5 MiB (1572864 bytes)");
    }
}
