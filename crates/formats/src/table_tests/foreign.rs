//! Foreign formats refused by name, and polyglots that match more than one format.

use super::builders::*;
use crate::DiskFormat;

#[test]
fn foreign_formats_refused_by_name() {
    let end = |len: usize, pat: &[u8]| at(len, len - 512, pat);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "vhd dynamic",
            with(at(4096, 0, b"conectix"), |v| put(v, 3584, b"conectix")),
            "VHD (vpc) is not supported; convert to vhdx or qcow2",
        ),
        (
            "vhd fixed",
            end(1 << 20, b"conectix"),
            "VHD (vpc) is not supported",
        ),
        (
            "vhd fixed big",
            end(5 << 20, b"conectix"),
            "VHD (vpc) is not supported",
        ),
        ("qed", at(4096, 0, b"QED\0"), "QED"),
        ("luks", at(4096, 0, b"LUKS\xba\xbe"), "LUKS"),
        ("iso 8001", at(64 << 10, 0x8001, b"CD001"), "ISO 9660"),
        ("iso 8801", at(64 << 10, 0x8801, b"CD001"), "ISO 9660"),
        ("iso 9001", at(64 << 10, 0x9001, b"CD001"), "ISO 9660"),
        ("parallels", at(4096, 0, b"WithoutFreeSpace"), "Parallels"),
        (
            "parallels ext",
            at(4096, 0, b"WithouFreSpacExt"),
            "Parallels",
        ),
        ("dmg", end(1 << 20, b"koly"), "dmg"),
        (
            "cloop",
            at(4096, 0, b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0"),
            "cloop",
        ),
        ("bochs", at(4096, 0, b"Bochs Virtual HD Image\0"), "Bochs"),
        (
            "xz",
            at(4096, 0, b"\xfd7zXZ\0"),
            "compressed with xz; tidepool accepts gzip or bzip2",
        ),
        (
            "zstd",
            at(4096, 0, b"\x28\xb5\x2f\xfd"),
            "compressed with zstd",
        ),
        ("zip", at(4096, 0, b"PK\x03\x04"), "zip archive"),
        ("7z", at(4096, 0, b"7z\xbc\xaf\x27\x1c"), "7z archive"),
        ("tar", at(4096, 257, b"ustar\0"), "tar archive"),
        ("gzip", at(4096, 0, b"\x1f\x8b\x08"), "gzip-compressed"),
        ("bzip2", at(4096, 0, b"BZh91AY&SY"), "bzip2-compressed"),
        (
            "vmdk descriptor",
            b"# Disk DescriptorFile\nversion=1\n".to_vec(),
            "vmdk descriptor without data",
        ),
    ];
    for (name, bytes, needle) in cases {
        match verdict(&bytes, LIMIT) {
            Ok(i) => panic!("{name}: accepted {i:?}"),
            Err(r) => assert!(
                r.message().contains(needle),
                "{name}: {r:?} lacks {needle:?}"
            ),
        }
    }
}

#[test]
fn polyglots_refused() {
    // qcow2 with 512-byte clusters, so 0x8001 is past its header cluster.
    let small_clusters = with(qcow2(3), |v| {
        be32(v, 20, 9);
        be32(v, 36, 2048);
        be64(v, 40, 0x10000);
        be64(v, 48, 0x200);
        be32(v, 56, 1);
    });
    ok(&small_clusters, DiskFormat::Qcow2, SIZE, "qcow2 v3");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "qcow2+iso",
            with(small_clusters.clone(), |v| put(v, 0x8001, b"CD001")),
            "image matches more than one format (qcow2 and iso); upload a plain image",
        ),
        (
            "qcow2+vhd footer",
            with(qcow2(3), |v| {
                let n = v.len();
                put(v, n - 512, b"conectix");
            }),
            "(qcow2 and vhd)",
        ),
        (
            "vmdk+vhd footer",
            with(vmdk(), |v| {
                let n = v.len();
                put(v, n - 512, b"conectix");
            }),
            "(vmdk and vhd)",
        ),
        (
            "vmdk+dmg",
            with(vmdk(), |v| {
                let n = v.len();
                put(v, n - 512, b"koly");
            }),
            "(vmdk and dmg)",
        ),
        (
            "vmdk+tar",
            with(vmdk(), |v| put(v, 257, b"ustar\0")),
            "(vmdk and tar)",
        ),
        (
            "qcow2+vdi",
            with(qcow2(3), |v| le32(v, 0x40, 0xbeda107f)),
            "(qcow2 and vdi)",
        ),
        (
            "vhdx+iso",
            with(vhdx(), |v| put(v, 0x9001, b"CD001")),
            "(vhdx and iso)",
        ),
        (
            "vdi+iso+tar",
            with(vdi(), |v| {
                v.resize(64 << 10, 0);
                put(v, 257, b"ustar\0");
                put(v, 0x8001, b"CD001");
            }),
            "(vdi, tar and iso)",
        ),
    ];
    for (name, bytes, needle) in cases {
        match verdict(&bytes, LIMIT) {
            Ok(i) => panic!("{name}: accepted {i:?}"),
            Err(r) => assert!(
                r.message().contains(needle),
                "{name}: {r:?} lacks {needle:?}"
            ),
        }
    }
}
