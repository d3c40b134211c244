//! qcow2: what is accepted, and one refusal per field.

use super::builders::*;
use crate::{DiskFormat, Inspector};

#[test]
fn qcow2_accepted() {
    ok(&qcow2(2), DiskFormat::Qcow2, SIZE, "qcow2 v2");
    ok(&qcow2(3), DiskFormat::Qcow2, SIZE, "qcow2 v3");
    // dirty, compression type zstd, extended L2 are all fine.
    ok(
        &with(qcow2(3), |v| be64(v, 72, 1)),
        DiskFormat::Qcow2,
        SIZE,
        "qcow2 v3",
    );
    ok(
        &with(qcow2(3), |v| {
            be64(v, 72, 1 << 3);
            v[104] = 1;
        }),
        DiskFormat::Qcow2,
        SIZE,
        "qcow2 v3",
    );
    ok(
        &with(qcow2(3), |v| be64(v, 72, 1 << 4)),
        DiskFormat::Qcow2,
        SIZE,
        "qcow2 v3 extended_l2",
    );
    // A harmless extension (backing format name would be odd alone, but a
    // feature name table is common).
    ok(
        &with(qcow2(3), |v| {
            be32(v, 112, 0x6803f857);
            be32(v, 116, 48);
        }),
        DiskFormat::Qcow2,
        SIZE,
        "qcow2 v3",
    );
}

#[test]
fn qcow2_refusals() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "v1",
            with(qcow2(2), |v| be32(v, 4, 1)),
            "qcow (version 1) is not supported",
        ),
        (
            "v4",
            with(qcow2(3), |v| be32(v, 4, 4)),
            "qcow2 version 4 is not supported",
        ),
        (
            "backing offset",
            with(qcow2(3), |v| be64(v, 8, 0x200)),
            "qcow2 image refers to a backing file; upload a standalone image",
        ),
        (
            "backing size",
            with(qcow2(2), |v| be32(v, 16, 9)),
            "backing file",
        ),
        ("aes", with(qcow2(2), |v| be32(v, 32, 1)), "encrypted"),
        ("luks", with(qcow2(3), |v| be32(v, 32, 2)), "encrypted"),
        (
            "corrupt bit",
            with(qcow2(3), |v| be64(v, 72, 2)),
            "marked corrupt",
        ),
        (
            "data file bit",
            with(qcow2(3), |v| be64(v, 72, 4)),
            "external data file",
        ),
        (
            "unknown bit",
            with(qcow2(3), |v| be64(v, 72, 1 << 5)),
            "unknown incompatible features (0x20)",
        ),
        (
            "compression type",
            with(qcow2(3), |v| {
                be64(v, 72, 1 << 3);
                v[104] = 2;
            }),
            "unknown compression type 2",
        ),
        (
            "compression bit, short header",
            with(qcow2(3), |v| {
                be64(v, 72, 1 << 3);
                be32(v, 100, 104);
            }),
            "corrupt qcow2 header",
        ),
        (
            "cluster_bits 8",
            with(qcow2(3), |v| be32(v, 20, 8)),
            "corrupt qcow2 header: cluster_bits 8",
        ),
        (
            "cluster_bits 22",
            with(qcow2(3), |v| be32(v, 20, 22)),
            "cluster_bits 22",
        ),
        (
            "header_length",
            with(qcow2(3), |v| be32(v, 100, 100)),
            "header_length 100",
        ),
        (
            "header_length odd",
            with(qcow2(3), |v| be32(v, 100, 113)),
            "header_length 113",
        ),
        (
            "refcount_order",
            with(qcow2(3), |v| be32(v, 96, 7)),
            "refcount_order",
        ),
        (
            "size zero",
            with(qcow2(3), |v| be64(v, 24, 0)),
            "virtual size is zero",
        ),
        (
            "l1 too small",
            with(qcow2(3), |v| be64(v, 24, 50 << 30)),
            "L1 table has 1 entries",
        ),
        (
            "l1 unaligned",
            with(qcow2(3), |v| be64(v, 40, 0x30001)),
            "L1 table offset",
        ),
        (
            "l1 huge",
            with(qcow2(3), |v| be32(v, 36, u32::MAX)),
            "L1 table of",
        ),
        (
            "reftable zero",
            with(qcow2(3), |v| be64(v, 48, 0)),
            "refcount table offset",
        ),
        (
            "reftable clusters",
            with(qcow2(3), |v| be32(v, 56, 0)),
            "refcount table of 0",
        ),
        (
            "snapshots",
            with(qcow2(3), |v| be32(v, 60, 1)),
            "snapshot table offset",
        ),
        (
            "ext data file",
            with(qcow2(3), |v| {
                be32(v, 112, 0x44415441);
                be32(v, 116, 8);
            }),
            "external data file",
        ),
        (
            "ext data file v2",
            with(qcow2(2), |v| {
                be32(v, 72, 0x44415441);
                be32(v, 76, 8);
            }),
            "external data file",
        ),
        (
            "ext crypto",
            with(qcow2(3), |v| {
                be32(v, 112, 0x0537be77);
                be32(v, 116, 16);
            }),
            "encrypted",
        ),
        (
            "ext overrun",
            with(qcow2(3), |v| {
                be32(v, 112, 0x1234);
                be32(v, 116, 0x20000);
            }),
            "header extensions run past the first cluster",
        ),
        (
            "ext huge len",
            with(qcow2(3), |v| {
                be32(v, 112, 0x1234);
                be32(v, 116, u32::MAX);
            }),
            "header extensions run past",
        ),
        (
            "l1 past end",
            qcow2(3)[..0x30004].to_vec(),
            "qcow2 image is truncated: its header refers to data up to byte 196616",
        ),
        (
            "short header",
            qcow2(3)[..50].to_vec(),
            "qcow2 image is truncated: its header needs at least 56 bytes but the file has only 50",
        ),
        (
            "too big",
            with(qcow2(3), |v| be64(v, 24, 200 << 30)),
            "virtual size 200 GiB exceeds the limit of 100 GiB",
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

#[test]
fn qcow2_refused_early_from_the_first_kib() {
    let v = with(qcow2(3), |v| be64(v, 8, 0x200));
    let mut ins = Inspector::new(LIMIT);
    let r = ins.push(&v[..4096]).unwrap_err();
    assert!(r.message().contains("backing file"));
    // And it stays refused.
    assert_eq!(ins.push(&v[4096..]), Err(r.clone()));
    assert_eq!(ins.finish(), Err(r));
    let big = with(qcow2(3), |v| be64(v, 24, 1 << 50));
    let mut ins = Inspector::new(1 << 30);
    assert!(ins
        .push(&big[..4096])
        .unwrap_err()
        .message()
        .contains("exceeds the limit"));
}
