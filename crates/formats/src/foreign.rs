//! Signatures of every format we recognise, supported or not. Foreign formats
//! are refused by name rather than stored as raw: a VHD or an ISO stored as
//! "raw" would boot as garbage, or worse, be interpreted by some later tool.

use crate::bytes::has_at;
use crate::DiskFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Supported(DiskFormat),
    /// Recognised and refused with this message.
    Refused(&'static str),
    /// A partition table: what a raw disk should start with, so not a format of its own; in
    /// the header of another format it makes a polyglot, since a consumer that probes the file
    /// may read it as a partitioned raw disk.
    PartitionTable,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    /// Name used in the polyglot message.
    pub name: &'static str,
    /// A format whose magic lives at the start of the file; the first such
    /// match decides how the file is parsed.
    pub primary: bool,
    pub matches: fn(&[u8]) -> bool,
    pub kind: Kind,
}

const VHD: &str = "VHD (vpc) is not supported; convert to vhdx or qcow2 (qemu-img convert -O qcow2 disk.vhd disk.qcow2)";
const ISO: &str = "ISO 9660 (CD/DVD) images are not supported; upload a bootable disk image (raw, qcow2, vhdx, vdi or vmdk)";
pub(crate) const MBR_BOOT_SIGNATURE: [u8; 2] = [0x55, 0xaa];
pub(crate) const GPT_SIGNATURE: &[u8] = b"EFI PART";

const DMG: &str = "Apple disk images (dmg) are not supported; convert to raw or qcow2";

fn bzip2(b: &[u8]) -> bool {
    // "BZh" + block size digit + the block magic (BCD pi), so a raw disk that
    // merely starts with "BZh" is not mistaken for an archive.
    has_at(b, 0, b"BZh")
        && b.get(3).is_some_and(|d| (b'1'..=b'9').contains(d))
        && has_at(b, 4, &[0x31, 0x41, 0x59, 0x26, 0x53, 0x59])
}

pub(crate) const PROBES: &[Probe] = &[
    Probe {
        name: "qcow2",
        primary: true,
        // qcow version 1 shares this magic; the qcow2 parser refuses it by name.
        matches: |b| has_at(b, 0, b"QFI\xfb"),
        kind: Kind::Supported(DiskFormat::Qcow2),
    },
    Probe {
        name: "vmdk",
        primary: true,
        matches: |b| has_at(b, 0, b"KDMV"),
        kind: Kind::Supported(DiskFormat::Vmdk),
    },
    Probe {
        name: "vhdx",
        primary: true,
        matches: |b| has_at(b, 0, b"vhdxfile"),
        kind: Kind::Supported(DiskFormat::Vhdx),
    },
    Probe {
        name: "vmdk descriptor",
        primary: true,
        matches: |b| has_at(b, 0, b"# Disk DescriptorFile"),
        kind: Kind::Refused(
            "vmdk descriptor without data; upload a monolithicSparse or streamOptimized vmdk",
        ),
    },
    Probe {
        name: "vmdk COWD",
        primary: true,
        matches: |b| has_at(b, 0, b"COWD"),
        kind: Kind::Refused("VMDK COWD (ESXi sparse) images are not supported; convert to a monolithicSparse or streamOptimized vmdk, or to qcow2"),
    },
    Probe {
        name: "vhd",
        primary: true,
        // Dynamic VHDs carry a copy of the footer at offset 0.
        matches: |b| has_at(b, 0, b"conectix"),
        kind: Kind::Refused(VHD),
    },
    Probe {
        name: "qed",
        primary: true,
        matches: |b| has_at(b, 0, b"QED\0"),
        kind: Kind::Refused("QED images are not supported; convert to qcow2 (qemu-img convert -O qcow2)"),
    },
    Probe {
        name: "luks",
        primary: true,
        matches: |b| has_at(b, 0, b"LUKS\xba\xbe"),
        kind: Kind::Refused("LUKS-encrypted images are not supported; decrypt it and upload a plain image"),
    },
    Probe {
        name: "parallels",
        primary: true,
        matches: |b| has_at(b, 0, b"WithoutFreeSpace") || has_at(b, 0, b"WithouFreSpacExt"),
        kind: Kind::Refused("Parallels images are not supported; convert to qcow2"),
    },
    Probe {
        name: "cloop",
        primary: true,
        matches: |b| has_at(b, 0, b"#!/bin/sh\n#V2.0 Format\n"),
        kind: Kind::Refused("cloop images are not supported; convert to raw or qcow2"),
    },
    Probe {
        name: "bochs",
        primary: true,
        matches: |b| has_at(b, 0, b"Bochs Virtual HD Image\0"),
        kind: Kind::Refused("Bochs images are not supported; convert to raw or qcow2"),
    },
    Probe {
        name: "xz",
        primary: true,
        matches: |b| has_at(b, 0, b"\xfd7zXZ\0"),
        kind: Kind::Refused("image is compressed with xz; tidepool accepts gzip or bzip2"),
    },
    Probe {
        name: "zstd",
        primary: true,
        matches: |b| has_at(b, 0, b"\x28\xb5\x2f\xfd"),
        kind: Kind::Refused("image is compressed with zstd; tidepool accepts gzip or bzip2"),
    },
    Probe {
        name: "zip",
        primary: true,
        matches: |b| has_at(b, 0, b"PK\x03\x04"),
        kind: Kind::Refused("image is a zip archive; extract the disk image and upload it (optionally compressed with gzip or bzip2)"),
    },
    Probe {
        name: "7z",
        primary: true,
        matches: |b| has_at(b, 0, b"7z\xbc\xaf\x27\x1c"),
        kind: Kind::Refused("image is a 7z archive; extract the disk image and upload it (optionally compressed with gzip or bzip2)"),
    },
    Probe {
        name: "gzip",
        primary: true,
        // The importer has already removed one compression layer.
        matches: |b| has_at(b, 0, b"\x1f\x8b\x08"),
        kind: Kind::Refused("image is still gzip-compressed after decompression (compressed twice?); upload it with a single gzip or bzip2 layer"),
    },
    Probe {
        name: "bzip2",
        primary: true,
        matches: bzip2,
        kind: Kind::Refused("image is still bzip2-compressed after decompression (compressed twice?); upload it with a single gzip or bzip2 layer"),
    },
    // Below: signatures that live past offset 0, where another format's data
    // could legitimately sit; only the first block of a file decides a primary.
    Probe {
        name: "vdi",
        primary: false,
        // VDI starts with free text; the signature is at 0x40.
        matches: |b| has_at(b, 0x40, &0xbeda_107f_u32.to_le_bytes()),
        kind: Kind::Supported(DiskFormat::Vdi),
    },
    Probe {
        name: "tar",
        primary: false,
        matches: |b| has_at(b, 257, b"ustar\0") || has_at(b, 257, b"ustar "),
        kind: Kind::Refused("image is a tar archive (an OVA?); extract the disk image and upload it"),
    },
    Probe {
        name: "mbr",
        primary: false,
        // The boot signature alone, as Glance's format inspector matches it: that is what a
        // probing consumer looks for.
        matches: |b| has_at(b, 510, &MBR_BOOT_SIGNATURE),
        kind: Kind::PartitionTable,
    },
    Probe {
        name: "gpt",
        primary: false,
        // The GPT header at LBA 1 of a disk of 512-byte sectors.
        matches: |b| has_at(b, 512, GPT_SIGNATURE),
        kind: Kind::PartitionTable,
    },
    Probe {
        name: "iso",
        primary: false,
        // Primary volume descriptor at sector 16 (2 KiB sectors); 0x8801 and
        // 0x9001 cover images whose first descriptors are of other types.
        matches: |b| [0x8001, 0x8801, 0x9001].iter().any(|&o| has_at(b, o, b"CD001")),
        kind: Kind::Refused(ISO),
    },
];

/// The format the file declares at its start: first a magic at offset 0, then
/// the formats whose signature sits a little later (vdi, tar). A partition table
/// declares a raw disk, which is what no match means.
pub(crate) fn primary(prefix: &[u8]) -> Option<&'static Probe> {
    PROBES
        .iter()
        .find(|p| p.primary && (p.matches)(prefix))
        .or_else(|| {
            PROBES.iter().find(|p| {
                !p.primary
                    && p.name != "iso"
                    && p.kind != Kind::PartitionTable
                    && (p.matches)(prefix)
            })
        })
}

/// Whether `name` is a partition table's, which belongs in a raw disk.
pub(crate) fn is_partition_table(name: &str) -> bool {
    PROBES
        .iter()
        .any(|p| p.name == name && p.kind == Kind::PartitionTable)
}

/// Whether the first sector holds a usable MBR partition table: the boot
/// signature, boot flags a partition table can have, at least one partition,
/// and not the boot sector of a FAT file system (which carries the same
/// signature but describes no partitions). The same tests as Glance's GPT/MBR
/// inspector.
pub(crate) fn has_mbr_partitions(prefix: &[u8]) -> bool {
    const ENTRIES: usize = 446;
    const FAT_COUNT: usize = 0x10;
    const FAT_MEDIA: usize = 0x15;
    const FIXED_DISK_MEDIA: u8 = 0xf8;
    let Some(sector) = prefix.get(..512) else {
        return false;
    };
    if !has_at(sector, 510, &MBR_BOOT_SIGNATURE) {
        return false;
    }
    let fat_boot_sector =
        sector.get(FAT_COUNT) == Some(&2) && sector.get(FAT_MEDIA) == Some(&FIXED_DISK_MEDIA);
    let entries = sector.get(ENTRIES..510).unwrap_or(&[]);
    let boot_flags_valid = entries
        .chunks(16)
        .all(|e| matches!(e.first(), Some(0x00 | 0x80)));
    let any_partition = entries
        .chunks(16)
        .any(|e| e.get(4).is_some_and(|&t| t != 0));
    !fat_boot_sector && boot_flags_valid && any_partition
}

/// Names of every signature present in the prefix, deduplicated, in table order.
pub(crate) fn all_names(prefix: &[u8]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for p in PROBES.iter().filter(|p| (p.matches)(prefix)) {
        if !names.contains(&p.name) {
            names.push(p.name);
        }
    }
    names
}

/// Trailers found in the last sector of the file (fixed VHD footer, dmg koly
/// block). `last512` is the final 512 bytes.
pub(crate) fn trailer(last512: &[u8]) -> Option<(&'static str, &'static str)> {
    if has_at(last512, 0, b"conectix") {
        Some(("vhd", VHD))
    } else if has_at(last512, 0, b"koly") {
        Some(("dmg", DMG))
    } else {
        None
    }
}

/// "qcow2 and iso", "qcow2, vhdx and iso".
pub(crate) fn polyglot_message(names: &[&str]) -> String {
    let list = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => String::new(),
    };
    format!("image matches more than one format ({list}); upload a plain image")
}
