//! qcow2 (and the qcow version 1 that shares its magic). Big-endian; layout
//! per qemu's docs/interop/qcow2.txt.

use crate::bytes::{align8, be32, be64, slice, u8_at};
use crate::tables::{Kind, Plan, Walker};
use crate::{DiskFormat, Parsed, Problem, Refusal};

const V2_HEADER_LEN: u64 = 72;
const V3_MIN_HEADER_LEN: u64 = 104;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

const L1_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const REFTABLE_OFFSET_MASK: u64 = 0xffff_ffff_ffff_fe00;

const EXT_END: u32 = 0;
const EXT_DATA_FILE: u32 = 0x4441_5441;
const EXT_CRYPTO: u32 = 0x0537_be77;

/// qemu's own limits (QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE, snapshot
/// count); anything larger is refused by qemu-img too.
const MAX_L1_BYTES: u64 = 32 << 20;
const MAX_REFTABLE_BYTES: u64 = 8 << 20;
const MAX_SNAPSHOTS: u32 = 65536;

fn corrupt(what: impl std::fmt::Display) -> Problem {
    Problem::Refuse(Refusal::corrupt("qcow2", what))
}

fn refuse(msg: &str) -> Problem {
    Problem::Refuse(Refusal::new(msg))
}

pub(crate) fn parse(b: &[u8], limit: u64) -> Result<Parsed, Problem> {
    let version = be32(b, 4)?;
    match version {
        1 => return Err(refuse(
            "qcow (version 1) is not supported; convert it to qcow2 (qemu-img convert -O qcow2)",
        )),
        2 | 3 => {}
        v => {
            return Err(Problem::Refuse(Refusal::new(format!(
                "qcow2 version {v} is not supported; tidepool accepts qcow2 versions 2 and 3"
            ))))
        }
    }
    let backing_offset = be64(b, 8)?;
    let backing_size = be32(b, 16)?;
    let cluster_bits = be32(b, 20)?;
    let size = be64(b, 24)?;
    let crypt_method = be32(b, 32)?;
    let l1_size = be32(b, 36)?;
    let l1_offset = be64(b, 40)?;
    let reftable_offset = be64(b, 48)?;
    let reftable_clusters = be32(b, 56)?;
    let nb_snapshots = be32(b, 60)?;
    let snapshots_offset = be64(b, 64)?;

    if !(9..=21).contains(&cluster_bits) {
        return Err(corrupt(format_args!(
            "cluster_bits {cluster_bits} is outside 9..=21"
        )));
    }
    let cluster_size = 1u64 << cluster_bits;

    // Size checks come first so an oversized image is refused from the first
    // few bytes, before anything else is downloaded.
    if size == 0 {
        return Err(corrupt("virtual size is zero"));
    }
    if size > limit {
        return Err(Problem::Refuse(Refusal::too_large(size, limit)));
    }
    if backing_offset != 0 || backing_size != 0 {
        return Err(refuse(
            "qcow2 image refers to a backing file; upload a standalone image (qemu-img convert -O qcow2 top.qcow2 standalone.qcow2)",
        ));
    }
    if crypt_method != 0 {
        return Err(refuse(
            "qcow2 image is encrypted; upload an unencrypted image",
        ));
    }

    let (header_len, incompat, extended_l2) = if version == 3 {
        let incompat = be64(b, 72)?;
        let refcount_order = be32(b, 96)?;
        let header_len = u64::from(be32(b, 100)?);
        if header_len < V3_MIN_HEADER_LEN || header_len % 8 != 0 || header_len > cluster_size {
            return Err(corrupt(format_args!(
                "header_length {header_len} is invalid"
            )));
        }
        if incompat & INCOMPAT_CORRUPT != 0 {
            return Err(refuse(
                "qcow2 image is marked corrupt; repair it with qemu-img check -r all and upload it again",
            ));
        }
        if incompat & INCOMPAT_DATA_FILE != 0 {
            return Err(refuse(
                "qcow2 image keeps its data in an external data file; upload a self-contained image (qemu-img convert -O qcow2)",
            ));
        }
        let unknown = incompat & !INCOMPAT_KNOWN;
        if unknown != 0 {
            return Err(Problem::Refuse(Refusal::new(format!(
                "qcow2 image uses unknown incompatible features (0x{unknown:x}); convert it with qemu-img convert -O qcow2 -o compat=1.1"
            ))));
        }
        if refcount_order > 6 {
            return Err(corrupt(format_args!(
                "refcount_order {refcount_order} is above 6"
            )));
        }
        if incompat & INCOMPAT_COMPRESSION != 0 {
            // 0 = zlib, 1 = zstd; the byte only exists in longer headers.
            let ctype = if header_len > V3_MIN_HEADER_LEN {
                u8_at(b, V3_MIN_HEADER_LEN)?
            } else {
                return Err(corrupt("compression type bit set but header too short"));
            };
            if ctype > 1 {
                return Err(corrupt(format_args!("unknown compression type {ctype}")));
            }
        }
        (header_len, incompat, incompat & INCOMPAT_EXTL2 != 0)
    } else {
        (V2_HEADER_LEN, 0, false)
    };

    if l1_offset % cluster_size != 0 {
        return Err(corrupt("L1 table offset is not cluster aligned"));
    }
    let l1_bytes = u64::from(l1_size) * 8;
    if l1_bytes > MAX_L1_BYTES {
        return Err(corrupt(format_args!(
            "L1 table of {l1_size} entries is too large"
        )));
    }
    // Each L1 entry maps one L2 table worth of clusters; fewer entries than
    // the virtual size needs means the header lies about the size.
    let l2_entries = cluster_size / if extended_l2 { 16 } else { 8 };
    let per_l1 = cluster_size * l2_entries;
    let needed_l1 = size.div_ceil(per_l1);
    if u64::from(l1_size) < needed_l1 {
        return Err(corrupt(format_args!(
            "L1 table has {l1_size} entries but the virtual size needs {needed_l1}"
        )));
    }
    if l1_size > 0 && l1_offset == 0 {
        return Err(corrupt("L1 table offset is zero"));
    }
    if reftable_offset == 0 || reftable_offset % cluster_size != 0 {
        return Err(corrupt(
            "refcount table offset is zero or not cluster aligned",
        ));
    }
    let reftable_bytes = u64::from(reftable_clusters) * cluster_size;
    if reftable_clusters == 0 || reftable_bytes > MAX_REFTABLE_BYTES {
        return Err(corrupt(format_args!(
            "refcount table of {reftable_clusters} clusters is invalid"
        )));
    }
    if nb_snapshots > MAX_SNAPSHOTS {
        return Err(corrupt(format_args!(
            "{nb_snapshots} snapshots is too many"
        )));
    }
    if nb_snapshots > 0 && (snapshots_offset == 0 || snapshots_offset % cluster_size != 0) {
        return Err(corrupt(
            "snapshot table offset is zero or not cluster aligned",
        ));
    }

    scan_extensions(b, header_len, cluster_size)?;

    let end = |off: u64, len: u64| {
        off.checked_add(len)
            .ok_or_else(|| corrupt("table offset overflows"))
    };
    let mut min_len = cluster_size;
    if l1_size > 0 {
        min_len = min_len.max(end(l1_offset, l1_bytes)?);
    }
    min_len = min_len.max(end(reftable_offset, reftable_bytes)?);
    if nb_snapshots > 0 {
        min_len = min_len.max(end(snapshots_offset, 1)?);
    }
    // Tables that sit inside the prefix also tell where the L2 tables and
    // refcount blocks are; a file cut before those is truncated.
    for (off, bytes, mask) in [
        (l1_offset, l1_bytes, L1_OFFSET_MASK),
        (reftable_offset, reftable_bytes, REFTABLE_OFFSET_MASK),
    ] {
        if let Ok(table) = slice(b, off, bytes) {
            let highest = table
                .chunks_exact(8)
                .filter_map(|e| be64(e, 0).ok())
                .map(|e| e & mask)
                .max()
                .unwrap_or(0);
            if highest != 0 {
                min_len = min_len.max(end(highest, cluster_size)?);
            }
        }
    }

    let mut detail = format!("qcow2 v{version}");
    if incompat & INCOMPAT_EXTL2 != 0 {
        detail.push_str(" extended_l2");
    }
    Ok(Parsed {
        format: DiskFormat::Qcow2,
        virtual_size: size,
        detail,
        min_len,
        vmdk_footer_capacity: None,
        // The L2 tables, and through them the data clusters, are found as the L1 table passes.
        tables: (l1_size > 0).then(|| Plan {
            walker: Walker::Qcow2 {
                cluster_bits,
                l2_entry_len: if extended_l2 { 16 } else { 8 },
                l1_used: needed_l1,
                l2_tables: Vec::new(),
            },
            tables: vec![(l1_offset, l1_bytes, Kind::Qcow2L1)],
        }),
    })
}

/// Header extensions live between the header and the end of the first
/// cluster. Two of them make the image depend on something outside the file.
fn scan_extensions(b: &[u8], start: u64, cluster_size: u64) -> Result<(), Problem> {
    let mut off = start;
    loop {
        let next_header = off
            .checked_add(8)
            .ok_or_else(|| corrupt("header extension overflow"))?;
        if next_header > cluster_size {
            return Err(corrupt("header extensions run past the first cluster"));
        }
        let kind = be32(b, off)?;
        let len = u64::from(be32(b, off + 4)?);
        match kind {
            EXT_END => return Ok(()),
            EXT_DATA_FILE => {
                return Err(refuse(
                    "qcow2 image names an external data file; upload a self-contained image (qemu-img convert -O qcow2)",
                ))
            }
            EXT_CRYPTO => {
                return Err(refuse(
                    "qcow2 image is encrypted (LUKS header extension); upload an unencrypted image",
                ))
            }
            _ => {}
        }
        off = align8(len)
            .and_then(|l| next_header.checked_add(l))
            .ok_or_else(|| corrupt("header extension length overflows"))?;
    }
}
