//! VMDK hosted sparse extents (monolithicSparse, streamOptimized).
//! Little-endian "KDMV" header; a text descriptor embedded in the file says
//! what kind of disk this is and which extent files make it up. Anything that
//! makes a reader open another file (split extents, flat extents, a parent) is
//! refused.

use crate::bytes::{has_at, le16, le32, le64, slice, u8_at};
use crate::tables::{Kind, Plan, Walker};
use crate::{DiskFormat, Parsed, Problem, Refusal};

const SECTOR: u64 = 512;
/// streamOptimized writers that cannot seek put the real header in a footer.
const GD_AT_END: u64 = u64::MAX;
const FLAG_NL_DETECT: u32 = 1 << 0;
const FLAG_COMPRESSED: u32 = 1 << 16;
/// qemu refuses bigger grains and grain tables; so do we.
const MAX_GRANULARITY: u64 = 0x20_0000;
const MAX_GTES: u32 = 512;
/// Descriptors are a few hundred bytes; qemu caps them at 1 MiB.
const MAX_DESCRIPTOR: u64 = 1 << 20;

const MARKER_EOS: u32 = 0;
const MARKER_FOOTER: u32 = 3;

fn corrupt(what: impl std::fmt::Display) -> Problem {
    Problem::Refuse(Refusal::corrupt("vmdk", what))
}

fn refuse(msg: impl Into<String>) -> Problem {
    Problem::Refuse(Refusal::new(msg))
}

/// What a split disk's data extents look like when uploaded on their own.
fn no_descriptor() -> Problem {
    refuse("vmdk sparse extent has no embedded descriptor (one extent of a split disk?); upload a monolithicSparse or streamOptimized vmdk")
}

struct Header {
    version: u32,
    flags: u32,
    capacity: u64,
    gd_offset: u64,
}

fn header(b: &[u8]) -> Result<Header, Problem> {
    Ok(Header {
        version: le32(b, 4)?,
        flags: le32(b, 8)?,
        capacity: le64(b, 12)?,
        gd_offset: le64(b, 56)?,
    })
}

pub(crate) fn parse(b: &[u8], limit: u64) -> Result<Parsed, Problem> {
    let h = header(b)?;
    if !(1..=3).contains(&h.version) {
        return Err(refuse(format!(
            "vmdk sparse extent version {} is not supported; convert it to a monolithicSparse or streamOptimized vmdk, or to qcow2",
            h.version
        )));
    }
    if h.capacity == 0 {
        return Err(corrupt("capacity is zero"));
    }
    let size = h
        .capacity
        .checked_mul(SECTOR)
        .ok_or_else(|| corrupt("capacity overflows"))?;
    if size > limit {
        return Err(Problem::Refuse(Refusal::too_large(size, limit)));
    }
    let granularity = le64(b, 20)?;
    let desc_offset = le64(b, 28)?;
    let desc_size = le64(b, 36)?;
    let gtes = le32(b, 44)?;
    let rgd_offset = le64(b, 48)?;
    let grain_offset = le64(b, 64)?;
    let compress = le16(b, 77)?;

    if h.flags & FLAG_NL_DETECT != 0 && !has_at(b, 73, b"\n \r\n") {
        return Err(corrupt(
            "newline check bytes are damaged (was it transferred in text mode?)",
        ));
    }
    if granularity == 0 || granularity > MAX_GRANULARITY || !granularity.is_power_of_two() {
        return Err(corrupt(format_args!("grain size {granularity} is invalid")));
    }
    if gtes == 0 || gtes > MAX_GTES {
        return Err(corrupt(format_args!("{gtes} grain table entries")));
    }
    if h.flags & FLAG_COMPRESSED != 0 && compress != 1 {
        return Err(corrupt(format_args!("compression algorithm {compress}")));
    }
    let _ = u8_at(b, 78)?;
    if desc_offset == 0 || desc_size == 0 {
        return Err(no_descriptor());
    }
    let desc_start = desc_offset
        .checked_mul(SECTOR)
        .ok_or_else(|| corrupt("descriptor offset overflows"))?;
    let desc_len = desc_size
        .checked_mul(SECTOR)
        .filter(|&l| l <= MAX_DESCRIPTOR)
        .ok_or_else(|| corrupt("descriptor is too large"))?;
    let raw = slice(b, desc_start, desc_len)?;
    // The descriptor is NUL-padded to whole sectors.
    let text = raw.split(|&c| c == 0).next().unwrap_or(&[]);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(no_descriptor());
    }
    let create_type = check_descriptor(text, h.capacity)?;

    let stream = create_type == "streamOptimized";
    let gd_at_end = h.gd_offset == GD_AT_END;
    if gd_at_end && !stream {
        return Err(corrupt(
            "grain directory at end outside a streamOptimized vmdk",
        ));
    }
    let mut min_len = desc_start.saturating_add(desc_len);
    for sectors in [rgd_offset, grain_offset]
        .into_iter()
        .chain((!gd_at_end).then_some(h.gd_offset))
    {
        // Grain directories and the first grain must lie inside the file;
        // a zero offset means "absent".
        if sectors != 0 {
            let at = sectors
                .checked_mul(SECTOR)
                .ok_or_else(|| corrupt("table offset overflows"))?;
            min_len = min_len.max(at);
        }
    }
    // With the grain directory named in the header (qemu writes both subformats so), it and
    // its grain tables come before the grains. One at the end (in the footer) follows its
    // compressed grains, so such a file is held to its footer and end-of-stream marker instead.
    let tables = (!gd_at_end && h.gd_offset != 0).then(|| {
        let grain_sectors = u64::from(gtes) * granularity;
        Plan {
            walker: Walker::Vmdk {
                grain_table_len: u64::from(gtes) * 4,
                // A compressed grain's length is in its marker, which is not read: the marker
                // (lba, size) and one byte of data must be there.
                grain_size: if stream { 13 } else { granularity * SECTOR },
                grain_tables: Vec::new(),
            },
            tables: vec![(
                h.gd_offset.saturating_mul(SECTOR),
                h.capacity.div_ceil(grain_sectors).saturating_mul(4),
                Kind::VmdkGrainDirectory,
            )],
        }
    });
    Ok(Parsed {
        format: DiskFormat::Vmdk,
        virtual_size: size,
        detail: format!("vmdk {create_type}"),
        min_len,
        vmdk_footer_capacity: gd_at_end.then_some(h.capacity),
        tables,
    })
}

/// Returns the createType. Descriptor syntax: `key = "value"` lines, extent
/// lines `ACCESS SECTORS TYPE ["file" [OFFSET]]`, `#` comments.
fn check_descriptor(text: &[u8], capacity: u64) -> Result<&'static str, Problem> {
    let text = std::str::from_utf8(text).map_err(|_| corrupt("descriptor is not text"))?;
    let mut create_type: Option<&str> = None;
    let mut extents = 0u32;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if matches!(first, "RW" | "RDONLY" | "NOACCESS") {
            extents += 1;
            if extents > 1 {
                return Err(refuse(
                    "vmdk descriptor lists more than one extent (a split disk); upload a monolithicSparse or streamOptimized vmdk",
                ));
            }
            let sectors = words.next().unwrap_or("");
            let kind = words.next().unwrap_or("");
            if kind != "SPARSE" {
                return Err(refuse(format!(
                    "vmdk extent type {kind} is not supported; upload a monolithicSparse or streamOptimized vmdk"
                )));
            }
            if sectors.parse::<u64>().ok() != Some(capacity) {
                return Err(corrupt(
                    "descriptor extent size differs from the header capacity",
                ));
            }
            let name = line.split('"').nth(1).unwrap_or("");
            // The extent of a monolithic disk is the file itself; a path
            // would point a reader at some other file.
            if name.is_empty() || name.contains(['/', '\\']) {
                return Err(refuse(
                    "vmdk extent names another file; upload a monolithicSparse or streamOptimized vmdk",
                ));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "createType" => create_type = Some(value),
            "parentCID" if !value.eq_ignore_ascii_case("ffffffff") => {
                return Err(refuse(
                    "vmdk image is a delta disk with a parent (parentCID); upload a standalone image",
                ))
            }
            "parentFileNameHint" => {
                return Err(refuse(
                    "vmdk image is a delta disk with a parent (parentFileNameHint); upload a standalone image",
                ))
            }
            _ => {}
        }
    }
    let create_type = match create_type {
        Some("monolithicSparse") => "monolithicSparse",
        Some("streamOptimized") => "streamOptimized",
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(refuse(format!(
                "vmdk createType \"{shown}\" is not supported; convert to a monolithicSparse or streamOptimized vmdk (qemu-img convert -O vmdk -o subformat=streamOptimized)"
            )));
        }
        None => return Err(corrupt("descriptor has no createType")),
    };
    if extents == 0 {
        return Err(corrupt("descriptor lists no extent"));
    }
    Ok(create_type)
}

/// streamOptimized with the grain directory at the end: the last three
/// sectors are a footer marker, a copy of the header with the real grain
/// directory offset, and an end-of-stream marker.
pub(crate) fn check_footer(tail: &[u8], total: u64, capacity: u64) -> Result<(), Refusal> {
    let bad = |what: &str| {
        Refusal::new(format!(
            "streamOptimized vmdk footer is {what}; the upload is truncated or damaged, upload the complete file"
        ))
    };
    let base = tail.len() as u64;
    let (Some(marker), Some(footer), Some(eos)) = (
        base.checked_sub(3 * SECTOR),
        base.checked_sub(2 * SECTOR),
        base.checked_sub(SECTOR),
    ) else {
        return Err(bad("missing"));
    };
    if total < 4 * SECTOR {
        return Err(bad("missing"));
    }
    let ok_marker = le32(tail, marker + 12).is_ok_and(|t| t == MARKER_FOOTER);
    let ok_eos = le64(tail, eos).is_ok_and(|v| v == 0)
        && le32(tail, eos + 8).is_ok_and(|v| v == 0)
        && le32(tail, eos + 12).is_ok_and(|t| t == MARKER_EOS);
    if !ok_marker || !ok_eos || !has_at(tail, footer, b"KDMV") {
        return Err(bad("missing"));
    }
    let fh = tail
        .get(usize::try_from(footer).unwrap_or(usize::MAX)..)
        .unwrap_or(&[]);
    let h = header(fh).map_err(|_| bad("missing"))?;
    if h.capacity != capacity {
        return Err(bad("inconsistent with the header (capacity differs)"));
    }
    if h.gd_offset == GD_AT_END || h.gd_offset == 0 {
        return Err(bad("inconsistent (no grain directory)"));
    }
    let gd = h.gd_offset.saturating_mul(SECTOR);
    if gd >= total {
        return Err(bad("inconsistent (grain directory past the end)"));
    }
    Ok(())
}
