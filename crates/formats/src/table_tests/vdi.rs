//! vdi: what is accepted, and one refusal per field.

use super::builders::*;
use crate::DiskFormat;

#[test]
fn vdi_accepted() {
    ok(&vdi(), DiskFormat::Vdi, SIZE, "vdi dynamic");
    let fixed = with(vdi(), |v| {
        le32(v, 0x4c, 2);
        v.resize(0x400 + 64 * (1 << 20), 0);
    });
    ok(&fixed, DiskFormat::Vdi, SIZE, "vdi fixed");
}

#[test]
fn vdi_refusals() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("undo", with(vdi(), |v| le32(v, 0x4c, 3)), "differencing"),
        ("diff", with(vdi(), |v| le32(v, 0x4c, 4)), "differencing"),
        (
            "type 9",
            with(vdi(), |v| le32(v, 0x4c, 9)),
            "unknown image type 9",
        ),
        (
            "linkage",
            with(vdi(), |v| put(v, 0x1a8, &[1; 16])),
            "vdi image has a parent",
        ),
        (
            "parent modify",
            with(vdi(), |v| put(v, 0x1b8, &[1; 16])),
            "vdi image has a parent",
        ),
        (
            "version 1.0",
            with(vdi(), |v| le32(v, 0x44, 0x0001_0000)),
            "vdi version 1.0 is not supported",
        ),
        (
            "too big",
            with(vdi(), |v| le64(v, 0x170, 200 << 30)),
            "virtual size 200 GiB exceeds the limit of 100 GiB",
        ),
        (
            "size zero",
            with(vdi(), |v| le64(v, 0x170, 0)),
            "disk size is zero",
        ),
        (
            "blocks short",
            with(vdi(), |v| le32(v, 0x180, 2)),
            "block count",
        ),
        (
            "block size",
            with(vdi(), |v| le32(v, 0x178, 2 << 20)),
            "block size",
        ),
        (
            "sector",
            with(vdi(), |v| le32(v, 0x168, 4096)),
            "sector size 4096",
        ),
        (
            "header size",
            with(vdi(), |v| le32(v, 0x48, 16)),
            "header size 16",
        ),
        (
            "bmap overlap",
            with(vdi(), |v| le32(v, 0x158, 0x200)),
            "overlaps",
        ),
        (
            "allocated",
            with(vdi(), |v| le32(v, 0x184, 65)),
            "more blocks allocated",
        ),
        (
            "data past end",
            with(vdi(), |v| le32(v, 0x184, 1)),
            "vdi image is truncated",
        ),
        (
            "fixed short",
            with(vdi(), |v| le32(v, 0x4c, 2)),
            "vdi image is truncated",
        ),
        (
            "short",
            vdi()[..0x100].to_vec(),
            "vdi image is truncated: its header needs",
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
