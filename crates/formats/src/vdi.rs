//! VirtualBox VDI, version 1.1. Little-endian. Offsets follow VirtualBox's
//! VDICore.h: a 0x40-byte free-text banner, signature, version, then the
//! VDIHEADER1PLUS structure starting at 0x48.

use crate::bytes::{bytes16, le32, le64};
use crate::tables::{Kind, Plan, Walker};
use crate::{DiskFormat, Parsed, Problem, Refusal};

const VERSION_1_1: u32 = 0x0001_0001;

const OFF_VERSION: u64 = 0x44;
const OFF_CB_HEADER: u64 = 0x48;
const OFF_TYPE: u64 = 0x4c;
const OFF_BLOCKS: u64 = 0x154;
const OFF_DATA: u64 = 0x158;
const OFF_SECTOR_SIZE: u64 = 0x168; // LegacyGeometry.cbSector
const OFF_CB_DISK: u64 = 0x170;
const OFF_CB_BLOCK: u64 = 0x178;
const OFF_CB_BLOCK_EXTRA: u64 = 0x17c;
const OFF_C_BLOCKS: u64 = 0x180;
const OFF_C_BLOCKS_ALLOCATED: u64 = 0x184;
const OFF_UUID_LINKAGE: u64 = 0x1a8;
const OFF_UUID_PARENT_MODIFY: u64 = 0x1b8;

/// sizeof(VDIHEADER1): the v1.1 header without the LCHS geometry that
/// VDIHEADER1PLUS appends. qemu writes exactly this much.
const MIN_CB_HEADER: u32 = 0x180;

const TYPE_NORMAL: u32 = 1;
const TYPE_FIXED: u32 = 2;
const TYPE_UNDO: u32 = 3;
const TYPE_DIFF: u32 = 4;

/// VirtualBox and qemu only ever use 1 MiB blocks; qemu refuses others.
const BLOCK_SIZE: u32 = 1 << 20;

fn corrupt(what: impl std::fmt::Display) -> Problem {
    Problem::Refuse(Refusal::corrupt("vdi", what))
}

pub(crate) fn parse(b: &[u8], limit: u64) -> Result<Parsed, Problem> {
    match le32(b, OFF_VERSION)? {
        VERSION_1_1 => {}
        v => {
            return Err(Problem::Refuse(Refusal::new(format!(
                "vdi version {}.{} is not supported; tidepool accepts vdi 1.1 (convert with VBoxManage clonemedium or qemu-img convert -O vdi)",
                v >> 16,
                v & 0xffff
            ))))
        }
    }
    let cb_header = le32(b, OFF_CB_HEADER)?;
    if cb_header < MIN_CB_HEADER {
        return Err(corrupt(format_args!(
            "header size {cb_header} is too small"
        )));
    }
    let image_type = le32(b, OFF_TYPE)?;
    let cb_disk = le64(b, OFF_CB_DISK)?;
    if cb_disk == 0 {
        return Err(corrupt("disk size is zero"));
    }
    if cb_disk > limit {
        return Err(Problem::Refuse(Refusal::too_large(cb_disk, limit)));
    }
    let detail = match image_type {
        TYPE_NORMAL => "vdi dynamic",
        TYPE_FIXED => "vdi fixed",
        TYPE_UNDO | TYPE_DIFF => {
            return Err(Problem::Refuse(Refusal::new(
                "vdi image is a differencing (undo/diff) image; upload a standalone image (VBoxManage clonemedium)",
            )))
        }
        t => return Err(corrupt(format_args!("unknown image type {t}"))),
    };
    if bytes16(b, OFF_UUID_LINKAGE)? != [0; 16] || bytes16(b, OFF_UUID_PARENT_MODIFY)? != [0; 16] {
        return Err(Problem::Refuse(Refusal::new(
            "vdi image has a parent; upload a standalone image (VBoxManage clonemedium)",
        )));
    }

    let off_blocks = u64::from(le32(b, OFF_BLOCKS)?);
    let off_data = u64::from(le32(b, OFF_DATA)?);
    let sector_size = le32(b, OFF_SECTOR_SIZE)?;
    let cb_block = le32(b, OFF_CB_BLOCK)?;
    let cb_block_extra = le32(b, OFF_CB_BLOCK_EXTRA)?;
    let c_blocks = le32(b, OFF_C_BLOCKS)?;
    let c_allocated = le32(b, OFF_C_BLOCKS_ALLOCATED)?;

    if sector_size != 512 {
        return Err(corrupt(format_args!(
            "sector size {sector_size} is not 512"
        )));
    }
    if cb_block != BLOCK_SIZE || cb_block_extra != 0 {
        return Err(corrupt(format_args!(
            "block size {cb_block} (+{cb_block_extra}) is not 1 MiB"
        )));
    }
    if u64::from(c_blocks) * u64::from(cb_block) < cb_disk {
        return Err(corrupt("block count does not cover the disk size"));
    }
    if c_allocated > c_blocks {
        return Err(corrupt("more blocks allocated than exist"));
    }
    let header_end = OFF_CB_HEADER + u64::from(cb_header);
    if off_blocks % 512 != 0 || off_data % 512 != 0 || off_blocks < header_end {
        return Err(corrupt("block map or data offset is misplaced"));
    }
    if off_blocks + u64::from(c_blocks) * 4 > off_data {
        return Err(corrupt("block map overlaps the data area"));
    }
    // A dynamic image may end right after the block map; a fixed one holds
    // every block.
    let mut min_len = off_data;
    if image_type == TYPE_FIXED {
        min_len = off_data + u64::from(c_blocks) * u64::from(cb_block);
    } else {
        min_len += u64::from(c_allocated) * u64::from(cb_block);
    }
    Ok(Parsed {
        format: DiskFormat::Vdi,
        virtual_size: cb_disk,
        detail: detail.to_owned(),
        min_len,
        vmdk_footer_capacity: None,
        // The allocated count is the writer's word; the block map says where each block is.
        tables: Some(Plan {
            walker: Walker::Vdi {
                data_offset: off_data,
                block_size: u64::from(cb_block),
            },
            tables: vec![(off_blocks, u64::from(c_blocks) * 4, Kind::VdiBlockMap)],
        }),
    })
}
