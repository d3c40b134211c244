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

/// vdi with its block map at 0x400, so that the sector at 512 is free (as VirtualBox allows).
fn vdi_bmap_at_0x400() -> Vec<u8> {
    with(vdi(), |v| {
        le32(v, 0x154, 0x400);
        le32(v, 0x158, 0x600);
        v[0x200..0x400].fill(0);
        for i in 0..64 {
            le32(v, 0x400 + 4 * i, u32::MAX);
        }
        v.resize(0x600, 0);
    })
}

/// monolithicSparse vmdk with its descriptor at sector 2, so that sector 1 is free.
fn vmdk_descriptor_at_sector_2() -> Vec<u8> {
    let desc = descriptor("monolithicSparse", "RW 131072 SPARSE \"disk.vmdk\"");
    with(vmdk_with(&desc), |v| {
        le64(v, 28, 2);
        le64(v, 36, 19);
        v[512..1024].fill(0);
        put(v, 1024, desc.as_bytes());
    })
}

#[test]
fn polyglots_with_partition_tables_iso_and_each_other_refused() {
    // Each carrier is accepted on its own, so the refusals below are the second signature's.
    let carriers: Vec<(&str, Vec<u8>, DiskFormat)> = vec![
        ("qcow2", qcow2(3), DiskFormat::Qcow2),
        ("vhdx", vhdx(), DiskFormat::Vhdx),
        ("vdi", vdi(), DiskFormat::Vdi),
        ("vdi", vdi_bmap_at_0x400(), DiskFormat::Vdi),
        ("vmdk", vmdk(), DiskFormat::Vmdk),
        ("vmdk", vmdk_descriptor_at_sector_2(), DiskFormat::Vmdk),
    ];
    for (name, bytes, format) in &carriers {
        let got = verdict(bytes, LIMIT).unwrap_or_else(|r| panic!("{name}: refused: {r}"));
        assert_eq!(got.format, *format, "{name}");
    }
    let mbr = |v: &mut Vec<u8>| put(v, 510, &[0x55, 0xaa]);
    let gpt = |v: &mut Vec<u8>| put(v, 512, b"EFI PART");
    let iso = |off: usize| move |v: &mut Vec<u8>| put(v, off, b"CD001");
    let vdi_magic = |v: &mut Vec<u8>| le32(v, 0x40, 0xbeda107f);
    let tar = |v: &mut Vec<u8>| put(v, 257, b"ustar\0");
    let vhd_footer = |v: &mut Vec<u8>| {
        let n = v.len();
        put(v, n - 512, b"conectix");
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("qcow2+mbr", with(qcow2(3), mbr), "(qcow2 and mbr)"),
        ("vhdx+mbr", with(vhdx(), mbr), "(vhdx and mbr)"),
        ("vdi+mbr", with(vdi(), mbr), "(vdi and mbr)"),
        ("vmdk+mbr", with(vmdk(), mbr), "(vmdk and mbr)"),
        ("qcow2+gpt", with(qcow2(3), gpt), "(qcow2 and gpt)"),
        ("vhdx+gpt", with(vhdx(), gpt), "(vhdx and gpt)"),
        ("vdi+gpt", with(vdi_bmap_at_0x400(), gpt), "(vdi and gpt)"),
        (
            "vmdk+gpt",
            with(vmdk_descriptor_at_sector_2(), gpt),
            "(vmdk and gpt)",
        ),
        (
            "qcow2+mbr+gpt",
            with(with(qcow2(3), mbr), gpt),
            "(qcow2, mbr and gpt)",
        ),
        (
            "qcow2 (64 KiB clusters)+iso",
            with(qcow2(3), iso(0x8001)),
            "(qcow2 and iso)",
        ),
        ("vmdk+iso", with(vmdk(), iso(0x8801)), "(vmdk and iso)"),
        (
            "vdi+iso",
            with(with(vdi(), |v| v.resize(64 << 10, 0)), iso(0x9001)),
            "(vdi and iso)",
        ),
        (
            "vhdx+mbr+iso",
            with(with(vhdx(), mbr), iso(0x8001)),
            "(vhdx, mbr and iso)",
        ),
        ("vmdk+vdi", with(vmdk(), vdi_magic), "(vmdk and vdi)"),
        ("vhdx+vdi", with(vhdx(), vdi_magic), "(vhdx and vdi)"),
        ("qcow2+tar", with(qcow2(3), tar), "(qcow2 and tar)"),
        ("vhdx+tar", with(vhdx(), tar), "(vhdx and tar)"),
        (
            "vhdx+vhd footer",
            with(vhdx(), vhd_footer),
            "(vhdx and vhd)",
        ),
        ("vdi+vhd footer", with(vdi(), vhd_footer), "(vdi and vhd)"),
    ];
    for (name, bytes, needle) in cases {
        for (label, result) in [
            ("default", verdict(&bytes, LIMIT)),
            ("partition table required", partitioned_verdict(&bytes)),
        ] {
            match result {
                Ok(i) => panic!("{name} ({label}): accepted {i:?}"),
                Err(r) => assert_eq!(
                    r.message(),
                    format!("image matches more than one format {needle}; upload a plain image"),
                    "{name} ({label})"
                ),
            }
        }
    }
}

#[test]
fn a_raw_disks_own_partition_tables_are_no_polyglot() {
    // A GPT disk has a protective MBR too: one raw disk, not two formats.
    ok(&gpt_disk(1 << 20), DiskFormat::Raw, 1 << 20, "raw (GPT)");
    // A hybrid ISO (an ISO with an MBR, to boot from a USB stick) is refused as an ISO.
    for disk in [mbr_disk(1 << 20), gpt_disk(1 << 20)] {
        no(
            &with(disk, |v| put(v, 0x8001, b"CD001")),
            "ISO 9660 (CD/DVD) images are not supported",
        );
    }
}
