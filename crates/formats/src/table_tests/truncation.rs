//! Files shorter than the data their tables point at, for the orderings of tables a stream can
//! meet; the real images qemu-img makes are cut in `tests/qemu.rs`.

use super::builders::*;
use crate::{DiskFormat, Inspector};

const CLUSTER: usize = 0x10000;

/// qcow2 v3 whose one L1 entry points at an L2 table at `l2`, whose first entry points at the
/// data cluster `data`; the file ends after that cluster.
fn qcow2_with_data(l2: usize, data: usize) -> Vec<u8> {
    with(qcow2(3), |v| {
        be64(v, 0x30000, l2 as u64);
        be64(v, l2, data as u64 | 1 << 63);
        v.resize(v.len().max(data + CLUSTER).max(l2 + CLUSTER), 0);
    })
}

fn cut(mut v: Vec<u8>, len: usize) -> Vec<u8> {
    v.truncate(len);
    v
}

#[test]
fn qcow2_data_clusters_must_have_arrived() {
    let whole = qcow2_with_data(0x40000, 0x50000);
    ok(&whole, DiskFormat::Qcow2, SIZE, "qcow2 v3");
    no(
        &cut(whole.clone(), 0x5ffff),
        "the qcow2 image is truncated: its tables point at data up to byte 393216 but only 393215 bytes arrived; upload the complete file",
    );
    no(
        &cut(whole.clone(), 0x50000),
        "up to byte 393216 but only 327680",
    );
    // Cut inside the L2 table: the header's own check speaks first.
    no(&cut(whole, 0x48000), "truncated");
}

#[test]
fn qcow2_data_far_beyond_the_prefix() {
    let data = Inspector::PREFIX_LEN + 5 * CLUSTER;
    let whole = qcow2_with_data(Inspector::PREFIX_LEN + CLUSTER, data);
    ok(&whole, DiskFormat::Qcow2, SIZE, "qcow2 v3");
    no(&cut(whole, data + 100), "truncated");
}

#[test]
fn qcow2_compressed_clusters_end_in_their_last_sector() {
    // Offset 0x50010, three sectors beyond the one holding it: data up to 0x50000 + 3·512 + 1.
    let x = 62 - (16 - 8);
    let entry = 1u64 << 62 | 3 << x | 0x50010;
    let whole = with(qcow2(3), |v| {
        be64(v, 0x30000, 0x40000);
        be64(v, 0x40008, entry);
        v.resize(0x50000 + 3 * 512 + 1, 0);
    });
    ok(&whole, DiskFormat::Qcow2, SIZE, "qcow2 v3");
    no(&cut(whole, 0x50000 + 3 * 512), "up to byte 329217 ");
}

#[test]
fn qcow2_extended_l2_entries_are_16_bytes() {
    let whole = with(qcow2(3), |v| {
        be64(v, 72, 1 << 4);
        be64(v, 0x30000, 0x40000);
        // Entry 1: its descriptor at byte 16, its subcluster bitmap after it.
        be64(v, 0x40010, 0x50000);
        be64(v, 0x40018, u64::MAX);
        v.resize(0x60000, 0);
    });
    ok(&whole, DiskFormat::Qcow2, SIZE, "qcow2 v3 extended_l2");
    no(&cut(whole, 0x5ffff), "up to byte 393216 ");
}

#[test]
fn qcow2_l1_after_its_l2_tables() {
    // As `qemu-img resize` leaves it: the L1 table moved after the L2 table it points at.
    let l1 = 0x60000;
    let moved = |l2: usize, data: usize| {
        with(qcow2_with_data(l2, data), |v| {
            be64(v, 40, l1 as u64);
            be64(v, 0x30000, 0);
            put(v, l1, &[0; CLUSTER]);
            be64(v, l1, l2 as u64);
        })
    };
    // L2 table inside the kept prefix: still read, from there.
    let whole = moved(0x40000, 0x70000);
    ok(&whole, DiskFormat::Qcow2, SIZE, "qcow2 v3");
    no(&cut(whole, 0x7ffff), "up to byte 524288 ");

    // L2 table past the prefix, before the L1 table: it cannot be read in one pass, so only
    // what the header requires is held (the L1 table and the L2 table must still be there).
    let l2 = Inspector::PREFIX_LEN;
    let l1 = l2 + CLUSTER;
    let data = l1 + 2 * CLUSTER;
    let far = with(qcow2_with_data(l2, data), |v| {
        be64(v, 40, l1 as u64);
        be64(v, 0x30000, 0);
        put(v, l1, &[0; CLUSTER]);
        be64(v, l1, l2 as u64);
    });
    ok(&far, DiskFormat::Qcow2, SIZE, "qcow2 v3");
    ok(
        &cut(far.clone(), l1 + CLUSTER),
        DiskFormat::Qcow2,
        SIZE,
        "qcow2 v3",
    );
    no(&cut(far, l1 + 4), "truncated");
}

#[test]
fn qcow2_unaligned_l2_table_is_corrupt() {
    let v = with(qcow2_with_data(0x40000, 0x50000), |v| {
        be64(v, 0x30000, 0x40200)
    });
    no(
        &v,
        "corrupt qcow2 header: L1 entry 0 points at an unaligned L2 table",
    );
}

#[test]
fn vdi_blocks_in_the_block_map_must_have_arrived() {
    // Block 0 of the disk is stored as block 5 of the data area, at 0x400 + 5 MiB.
    let end = 0x400 + 6 * (1 << 20);
    let whole = with(vdi(), |v| {
        le32(v, 0x200, 5);
        v.resize(end, 0);
    });
    ok(&whole, DiskFormat::Vdi, SIZE, "vdi dynamic");
    no(
        &cut(whole, end - 1),
        &format!("the vdi image is truncated: its tables point at data up to byte {end} but only {} bytes arrived", end - 1),
    );
}
