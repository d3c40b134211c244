//! VHDX (MS-VHDX). Little-endian with mixed-endian GUIDs. The file starts with
//! a file type identifier, then two copies of the header (64 KiB, 128 KiB) and
//! of the region table (192 KiB, 256 KiB); the region table points at the
//! metadata region, whose table lists the items we need.

use crate::bytes::{bytes16, crc32c_with_hole, guid, has_at, le16, le32, le64, slice};
use crate::tables::{Kind, Plan, Walker};
use crate::{DiskFormat, Parsed, Problem, Refusal};

const KIB64: u64 = 64 << 10;
const MIB: u64 = 1 << 20;
const HEADER_OFFSETS: [u64; 2] = [KIB64, 2 * KIB64];
const HEADER_LEN: u64 = 4096;
const REGION_TABLE_OFFSETS: [u64; 2] = [3 * KIB64, 4 * KIB64];
const REGION_TABLE_LEN: u64 = KIB64;
/// Spec limit on region and metadata table entries.
const MAX_ENTRIES: u64 = 2047;
/// Spec limit on a virtual disk.
const MAX_DISK_SIZE: u64 = 64 << 40;

const REGION_BAT: [u8; 16] = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
const REGION_METADATA: [u8; 16] = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const ITEM_FILE_PARAMETERS: [u8; 16] = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const ITEM_VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const ITEM_LOGICAL_SECTOR_SIZE: [u8; 16] = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
const ITEM_PHYSICAL_SECTOR_SIZE: [u8; 16] = guid(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
const ITEM_PAGE83: [u8; 16] = guid(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
const ITEM_PARENT_LOCATOR: [u8; 16] = guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

const FILE_PARAM_LEAVE_ALLOCATED: u32 = 1 << 0;
const FILE_PARAM_HAS_PARENT: u32 = 1 << 1;
const METADATA_IS_REQUIRED: u32 = 1 << 2;
const REGION_IS_REQUIRED: u32 = 1 << 0;

fn corrupt(what: impl std::fmt::Display) -> Problem {
    Problem::Refuse(Refusal::corrupt("vhdx", what))
}

fn refuse(msg: &str) -> Problem {
    Problem::Refuse(Refusal::new(msg))
}

/// A checksummed structure is valid when its CRC-32C, computed with the
/// checksum field (bytes 4..8) zeroed, matches the stored one.
fn checksum_ok(block: &[u8]) -> Result<bool, Problem> {
    let stored = le32(block, 4)?;
    Ok(crc32c_with_hole(block, 4..8) == stored)
}

/// The current header: the valid copy with the higher sequence number.
fn current_header(b: &[u8]) -> Result<&[u8], Problem> {
    let mut best: Option<(u64, &[u8])> = None;
    for off in HEADER_OFFSETS {
        let h = slice(b, off, HEADER_LEN)?;
        if has_at(h, 0, b"head") && checksum_ok(h)? {
            let seq = le64(h, 8)?;
            if best.is_none_or(|(s, _)| seq > s) {
                best = Some((seq, h));
            }
        }
    }
    best.map(|(_, h)| h)
        .ok_or_else(|| corrupt("neither header copy is valid"))
}

fn region_table(b: &[u8]) -> Result<&[u8], Problem> {
    for off in REGION_TABLE_OFFSETS {
        let t = slice(b, off, REGION_TABLE_LEN)?;
        if has_at(t, 0, b"regi") && checksum_ok(t)? {
            return Ok(t);
        }
    }
    Err(corrupt("neither region table copy is valid"))
}

#[derive(Default)]
struct Items {
    file_parameters: Option<(u32, u32)>,
    virtual_disk_size: Option<u64>,
    logical_sector_size: Option<u32>,
}

pub(crate) fn parse(b: &[u8], limit: u64) -> Result<Parsed, Problem> {
    let header = current_header(b)?;
    let version = le16(header, 0x42)?;
    if version != 1 {
        return Err(corrupt(format_args!("header version {version} is not 1")));
    }
    // A non-zero log GUID means the log may hold writes not yet applied to
    // the file; the bytes we would store are then not the disk.
    if bytes16(header, 0x30)? != [0; 16] {
        return Err(refuse(
            "vhdx image has a pending log (it was not closed cleanly); attach and detach it in Hyper-V, or run qemu-img check -r all on it, then upload it again",
        ));
    }

    let table = region_table(b)?;
    let count = u64::from(le32(table, 8)?);
    if count > MAX_ENTRIES {
        return Err(corrupt(format_args!("{count} region entries")));
    }
    let mut metadata: Option<(u64, u64)> = None;
    let mut bat: Option<(u64, u64)> = None;
    // The log is part of the file even when empty: a reader that opens it finds it there.
    let log_len = u64::from(le32(header, 0x44)?);
    let log_off = le64(header, 0x48)?;
    let mut min_len = if log_len == 0 {
        0
    } else {
        log_off
            .checked_add(log_len)
            .ok_or_else(|| corrupt("log offset overflows"))?
    };
    for i in 0..count {
        let e = 16 + i * 32;
        let id = bytes16(table, e)?;
        let off = le64(table, e + 16)?;
        let len = u64::from(le32(table, e + 24)?);
        let required = le32(table, e + 28)? & REGION_IS_REQUIRED != 0;
        if off < MIB || off % MIB != 0 || len % MIB != 0 {
            return Err(corrupt("region is not 1 MiB aligned"));
        }
        let end = off
            .checked_add(len)
            .ok_or_else(|| corrupt("region offset overflows"))?;
        min_len = min_len.max(end);
        if id == REGION_METADATA {
            if metadata.is_some() {
                return Err(corrupt("two metadata regions"));
            }
            metadata = Some((off, len));
        } else if id == REGION_BAT {
            if bat.is_some() {
                return Err(corrupt("two BAT regions"));
            }
            bat = Some((off, len));
        } else if required {
            return Err(refuse(
                "vhdx image has a required region tidepool does not know; convert it to qcow2 (qemu-img convert -O qcow2)",
            ));
        }
    }
    let (meta_off, meta_len) = metadata.ok_or_else(|| corrupt("no metadata region"))?;
    if meta_len < KIB64 {
        return Err(corrupt("metadata region is too small"));
    }

    let meta_table = slice(b, meta_off, KIB64)?;
    if !has_at(meta_table, 0, b"metadata") {
        return Err(corrupt("metadata table signature missing"));
    }
    let count = u64::from(le16(meta_table, 10)?);
    if count > MAX_ENTRIES {
        return Err(corrupt(format_args!("{count} metadata entries")));
    }
    let mut items = Items::default();
    for i in 0..count {
        let e = 32 + i * 32;
        let id = bytes16(meta_table, e)?;
        let item_off = u64::from(le32(meta_table, e + 16)?);
        let item_len = u64::from(le32(meta_table, e + 20)?);
        let flags = le32(meta_table, e + 24)?;
        if id == ITEM_PARENT_LOCATOR {
            return Err(refuse(
                "vhdx differencing disk (it has a parent locator); upload a standalone image (qemu-img convert -O vhdx)",
            ));
        }
        if item_len == 0 {
            continue;
        }
        if item_off < KIB64 || item_off + item_len > meta_len {
            return Err(corrupt("metadata item lies outside the metadata region"));
        }
        let at = meta_off + item_off;
        if id == ITEM_FILE_PARAMETERS {
            items.file_parameters = Some((le32(b, at)?, le32(b, at + 4)?));
        } else if id == ITEM_VIRTUAL_DISK_SIZE {
            items.virtual_disk_size = Some(le64(b, at)?);
        } else if id == ITEM_LOGICAL_SECTOR_SIZE {
            items.logical_sector_size = Some(le32(b, at)?);
        } else if id != ITEM_PHYSICAL_SECTOR_SIZE
            && id != ITEM_PAGE83
            && flags & METADATA_IS_REQUIRED != 0
        {
            return Err(refuse(
                "vhdx image has required metadata tidepool does not know; convert it to qcow2 (qemu-img convert -O qcow2)",
            ));
        }
    }

    let (block_size, fp_flags) = items
        .file_parameters
        .ok_or_else(|| corrupt("file parameters missing"))?;
    if fp_flags & FILE_PARAM_HAS_PARENT != 0 {
        return Err(refuse(
            "vhdx differencing disk (HasParent is set); upload a standalone image (qemu-img convert -O vhdx)",
        ));
    }
    if !block_size.is_power_of_two() || !(MIB..=256 * MIB).contains(&u64::from(block_size)) {
        return Err(corrupt(format_args!("block size {block_size} is invalid")));
    }
    let sector = items
        .logical_sector_size
        .ok_or_else(|| corrupt("logical sector size missing"))?;
    if sector != 512 && sector != 4096 {
        return Err(corrupt(format_args!("logical sector size {sector}")));
    }
    let size = items
        .virtual_disk_size
        .ok_or_else(|| corrupt("virtual disk size missing"))?;
    if size == 0 {
        return Err(corrupt("virtual disk size is zero"));
    }
    if size > limit {
        return Err(Problem::Refuse(Refusal::too_large(size, limit)));
    }
    if size > MAX_DISK_SIZE || size % u64::from(sector) != 0 {
        return Err(corrupt(format_args!("virtual disk size {size} is invalid")));
    }
    let (bat_off, bat_len) = bat.ok_or_else(|| corrupt("no BAT region"))?;
    // MS-VHDX 2.5: each chunk of chunk_ratio payload blocks is followed by the entry of its
    // sector bitmap block. Both sizes are checked powers of two, so the ratio is exact.
    let block = u64::from(block_size);
    let chunk_ratio = ((1u64 << 23) * u64::from(sector) / block).max(1);
    let payload_blocks = size.div_ceil(block);
    let entries = payload_blocks + (payload_blocks - 1) / chunk_ratio;
    let detail = if fp_flags & FILE_PARAM_LEAVE_ALLOCATED != 0 {
        "vhdx fixed"
    } else {
        "vhdx dynamic"
    };
    Ok(Parsed {
        format: DiskFormat::Vhdx,
        virtual_size: size,
        detail: detail.to_owned(),
        min_len,
        vmdk_footer_capacity: None,
        tables: Some(Plan {
            walker: Walker::Vhdx {
                block_size: block,
                chunk_ratio,
                entries,
            },
            tables: vec![(
                bat_off,
                bat_len.min(entries.saturating_mul(8)),
                Kind::VhdxBat,
            )],
        }),
    })
}
