//! vhdx: what is accepted, and one refusal per field.

use super::builders::*;
use crate::DiskFormat;

#[test]
fn vhdx_accepted() {
    ok(&vhdx(), DiskFormat::Vhdx, SIZE, "vhdx dynamic");
    let fixed = with(vhdx(), |v| le32(v, META + 0x10004, 1));
    ok(&fixed, DiskFormat::Vhdx, SIZE, "vhdx fixed");
    // The newer header copy is damaged: the older one still describes the file.
    let one_bad = with(vhdx(), |v| v[0x10000 + 100] ^= 1);
    ok(&one_bad, DiskFormat::Vhdx, SIZE, "vhdx dynamic");
    // An optional unknown item is ignored.
    let extra = with(vhdx(), |v| vhdx_add_item(v, [9; 16], 0x10020, 4, 0));
    ok(&extra, DiskFormat::Vhdx, SIZE, "vhdx dynamic");
}

#[test]
fn vhdx_refusals() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "has parent",
            with(vhdx(), |v| le32(v, META + 0x10004, 2)),
            "vhdx differencing disk",
        ),
        (
            "parent locator",
            with(vhdx(), |v| {
                vhdx_add_item(v, g_parent_locator(), 0x10020, 16, 4)
            }),
            "vhdx differencing disk",
        ),
        (
            "too big",
            with(vhdx(), |v| le64(v, META + 0x10008, 200 << 30)),
            "virtual size 200 GiB exceeds the limit of 100 GiB",
        ),
        (
            "size zero",
            with(vhdx(), |v| le64(v, META + 0x10008, 0)),
            "virtual disk size is zero",
        ),
        (
            "size unaligned",
            with(vhdx(), |v| le64(v, META + 0x10008, SIZE + 1)),
            "is invalid",
        ),
        (
            "sector size",
            with(vhdx(), |v| le32(v, META + 0x10010, 1024)),
            "logical sector size 1024",
        ),
        (
            "block size",
            with(vhdx(), |v| le32(v, META + 0x10000, 4096)),
            "block size 4096",
        ),
        (
            "log",
            with(vhdx(), |v| {
                put(v, 0x10030, &[1; 16]);
                put(v, 0x20030, &[1; 16]);
                vhdx_fix_checksums(v);
            }),
            "pending log",
        ),
        (
            "headers bad",
            with(vhdx(), |v| {
                v[0x10000 + 100] ^= 1;
                v[0x20000 + 100] ^= 1;
            }),
            "neither header copy is valid",
        ),
        (
            "regions bad",
            with(vhdx(), |v| {
                v[0x30000 + 200] ^= 1;
                v[0x40000 + 200] ^= 1;
            }),
            "neither region table copy is valid",
        ),
        (
            "version",
            with(vhdx(), |v| {
                le16(v, 0x10042, 2);
                le16(v, 0x20042, 2);
                vhdx_fix_checksums(v);
            }),
            "header version 2",
        ),
        (
            "unknown region",
            with(vhdx(), |v| {
                for off in [0x30000, 0x40000] {
                    le32(v, off + 8, 3);
                    put(v, off + 80, &[7; 16]);
                    le64(v, off + 96, 5 << 20);
                    le32(v, off + 104, 1 << 20);
                    le32(v, off + 108, 1);
                }
                vhdx_fix_checksums(v);
            }),
            "required region",
        ),
        (
            "unknown required item",
            with(vhdx(), |v| vhdx_add_item(v, [9; 16], 0x10020, 4, 4)),
            "required metadata",
        ),
        (
            "missing size",
            with(vhdx(), |v| {
                v[META + 64] ^= 0xff;
                le32(v, META + 64 + 24, 0);
            }),
            "virtual disk size missing",
        ),
        (
            "metadata signature",
            with(vhdx(), |v| put(v, META, b"METADATA")),
            "metadata table signature",
        ),
        (
            "item outside",
            with(vhdx(), |v| le32(v, META + 64 + 16, 0xfffff0)),
            "outside the metadata region",
        ),
        (
            "region unaligned",
            with(vhdx(), |v| {
                for off in [0x30000, 0x40000] {
                    le64(v, off + 64, (3 << 20) + 512);
                }
                vhdx_fix_checksums(v);
            }),
            "1 MiB aligned",
        ),
        (
            "metadata beyond prefix",
            with(vhdx(), |v| {
                for off in [0x30000, 0x40000] {
                    le64(v, off + 64, 5 << 20);
                }
                vhdx_fix_checksums(v);
                v.resize(6 << 20, 0);
            }),
            "beyond the first 4 MiB",
        ),
        (
            "truncated",
            vhdx()[..1 << 20].to_vec(),
            "vhdx image is truncated",
        ),
        (
            "region past end",
            vhdx()[..(3 << 20) + 0x20000].to_vec(),
            "vhdx image is truncated: its header refers to data up to byte 4194304",
        ),
    ];
    for (name, bytes, needle) in cases {
        match verdict(&bytes, 100 << 30) {
            Ok(i) => panic!("{name}: accepted {i:?}"),
            Err(r) => assert!(
                r.message().contains(needle),
                "{name}: {r:?} lacks {needle:?}"
            ),
        }
    }
}
