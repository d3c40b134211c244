//! The byte builders (a minimal valid image per format, changed one field at a time by the
//! tests) and the verdict helpers every table test uses.

use crate::bytes::crc32c_with_hole;
use crate::{inspect, DiskFormat, Inspection, Inspector, Refusal};

const MIB: u64 = 1 << 20;
pub(super) const SIZE: u64 = 64 * MIB;
pub(super) const LIMIT: u64 = 1 << 40;

pub(super) fn put(v: &mut Vec<u8>, off: usize, bytes: &[u8]) {
    if v.len() < off + bytes.len() {
        v.resize(off + bytes.len(), 0);
    }
    v[off..off + bytes.len()].copy_from_slice(bytes);
}
pub(super) fn be32(v: &mut Vec<u8>, off: usize, x: u32) {
    put(v, off, &x.to_be_bytes());
}
pub(super) fn be64(v: &mut Vec<u8>, off: usize, x: u64) {
    put(v, off, &x.to_be_bytes());
}
pub(super) fn le16(v: &mut Vec<u8>, off: usize, x: u16) {
    put(v, off, &x.to_le_bytes());
}
pub(super) fn le32(v: &mut Vec<u8>, off: usize, x: u32) {
    put(v, off, &x.to_le_bytes());
}
pub(super) fn le64(v: &mut Vec<u8>, off: usize, x: u64) {
    put(v, off, &x.to_le_bytes());
}

// ---------------------------------------------------------------- qcow2

/// 64 KiB clusters: header, refcount table, refcount block, L1 table.
pub(super) fn qcow2(version: u32) -> Vec<u8> {
    let mut v = vec![0u8; 0x40000];
    put(&mut v, 0, b"QFI\xfb");
    be32(&mut v, 4, version);
    be32(&mut v, 20, 16);
    be64(&mut v, 24, SIZE);
    be32(&mut v, 36, 1);
    be64(&mut v, 40, 0x30000);
    be64(&mut v, 48, 0x10000);
    be32(&mut v, 56, 1);
    // refcount block at 0x20000, an L2 table at 0x30000 + one cluster is
    // not there: the single L1 entry stays unallocated.
    be64(&mut v, 0x10000, 0x20000);
    if version == 3 {
        be32(&mut v, 96, 4);
        be32(&mut v, 100, 112);
    }
    v
}

// ---------------------------------------------------------------- vmdk

pub(super) fn descriptor(create_type: &str, extents: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n# Extent description\n{extents}\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\n"
    )
}

pub(super) fn vmdk_with(desc: &str) -> Vec<u8> {
    let mut v = vec![0u8; 128 * 512];
    put(&mut v, 0, b"KDMV");
    le32(&mut v, 4, 1);
    le32(&mut v, 8, 3);
    le64(&mut v, 12, SIZE / 512);
    le64(&mut v, 20, 128);
    le64(&mut v, 28, 1);
    le64(&mut v, 36, 20);
    le32(&mut v, 44, 512);
    le64(&mut v, 48, 21);
    le64(&mut v, 56, 30);
    le64(&mut v, 64, 128);
    put(&mut v, 73, b"\n \r\n");
    put(&mut v, 512, desc.as_bytes());
    v
}

pub(super) fn vmdk() -> Vec<u8> {
    vmdk_with(&descriptor(
        "monolithicSparse",
        "RW 131072 SPARSE \"disk.vmdk\"",
    ))
}

/// streamOptimized as VMware writes it: grain directory at the end, the
/// real header in a footer.
pub(super) fn vmdk_stream_gd_at_end() -> Vec<u8> {
    let mut v = vmdk_with(&descriptor(
        "streamOptimized",
        "RW 131072 SPARSE \"disk.vmdk\"",
    ));
    le32(&mut v, 4, 3);
    le32(&mut v, 8, 0x30001);
    le64(&mut v, 48, 0);
    le64(&mut v, 56, u64::MAX);
    le16(&mut v, 77, 1);
    let header: Vec<u8> = v[..512].to_vec();
    // footer marker, footer (a header with the real gd offset), end of stream.
    let marker = v.len();
    le64(&mut v, marker, 1);
    le32(&mut v, marker + 12, 3);
    let footer = marker + 512;
    put(&mut v, footer, &header);
    le64(&mut v, footer + 56, 128);
    put(&mut v, footer + 512, &[0u8; 512]);
    v
}

// ---------------------------------------------------------------- vhdx

pub(super) const META: usize = 3 << 20;

fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    crate::bytes::guid(d1, d2, d3, d4)
}
fn g_file_params() -> [u8; 16] {
    guid(
        0xCAA16737,
        0xFA36,
        0x4D43,
        [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
    )
}
fn g_size() -> [u8; 16] {
    guid(
        0x2FA54224,
        0xCD1B,
        0x4876,
        [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
    )
}
fn g_logical() -> [u8; 16] {
    guid(
        0x8141BF1D,
        0xA96F,
        0x4709,
        [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
    )
}
pub(super) fn g_parent_locator() -> [u8; 16] {
    guid(
        0xA8D35F2D,
        0xB30B,
        0x454D,
        [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
    )
}
fn g_metadata_region() -> [u8; 16] {
    guid(
        0x8B7CA206,
        0x4790,
        0x4B9A,
        [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
    )
}
fn g_bat_region() -> [u8; 16] {
    guid(
        0x2DC27766,
        0xF623,
        0x4200,
        [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
    )
}

/// Recompute the CRC-32C of both headers and both region tables, so a test
/// can change a field and still present a well-formed file.
pub(super) fn vhdx_fix_checksums(v: &mut Vec<u8>) {
    for (off, len) in [
        (0x10000, 4096),
        (0x20000, 4096),
        (0x30000, 0x10000),
        (0x40000, 0x10000),
    ] {
        let crc = crc32c_with_hole(&v[off..off + len], 4..8);
        le32(v, off + 4, crc);
    }
}

pub(super) fn vhdx_add_item(v: &mut Vec<u8>, id: [u8; 16], value_off: u32, len: u32, flags: u32) {
    let count = u16::from_le_bytes([v[META + 10], v[META + 11]]);
    let e = META + 32 + usize::from(count) * 32;
    put(v, e, &id);
    le32(v, e + 16, value_off);
    le32(v, e + 20, len);
    le32(v, e + 24, flags);
    le16(v, META + 10, count + 1);
}

pub(super) fn vhdx() -> Vec<u8> {
    let mut v = vec![0u8; 4 << 20];
    put(&mut v, 0, b"vhdxfile");
    for (off, seq) in [(0x10000, 2u64), (0x20000, 1)] {
        put(&mut v, off, b"head");
        le64(&mut v, off + 8, seq);
        le16(&mut v, off + 0x42, 1);
        le32(&mut v, off + 0x44, 1 << 20);
        le64(&mut v, off + 0x48, 1 << 20);
    }
    for off in [0x30000, 0x40000] {
        put(&mut v, off, b"regi");
        le32(&mut v, off + 8, 2);
        put(&mut v, off + 16, &g_bat_region());
        le64(&mut v, off + 32, 2 << 20);
        le32(&mut v, off + 40, 1 << 20);
        le32(&mut v, off + 44, 1);
        put(&mut v, off + 48, &g_metadata_region());
        le64(&mut v, off + 64, META as u64);
        le32(&mut v, off + 72, 1 << 20);
        le32(&mut v, off + 76, 1);
    }
    put(&mut v, META, b"metadata");
    let vals = META + 0x10000;
    vhdx_add_item(&mut v, g_file_params(), 0x10000, 8, 4);
    le32(&mut v, vals, 32 << 20);
    vhdx_add_item(&mut v, g_size(), 0x10008, 8, 6);
    le64(&mut v, vals + 8, SIZE);
    vhdx_add_item(&mut v, g_logical(), 0x10010, 4, 6);
    le32(&mut v, vals + 16, 512);
    vhdx_fix_checksums(&mut v);
    v
}

// ---------------------------------------------------------------- vdi

pub(super) fn vdi() -> Vec<u8> {
    let mut v = vec![0u8; 0x400];
    put(&mut v, 0, b"<<< Oracle VM VirtualBox Disk Image >>>\n");
    le32(&mut v, 0x40, 0xbeda107f);
    le32(&mut v, 0x44, 0x0001_0001);
    le32(&mut v, 0x48, 0x190);
    le32(&mut v, 0x4c, 1);
    le32(&mut v, 0x154, 0x200);
    le32(&mut v, 0x158, 0x400);
    le32(&mut v, 0x168, 512);
    le64(&mut v, 0x170, SIZE);
    le32(&mut v, 0x178, 1 << 20);
    le32(&mut v, 0x180, 64);
    put(&mut v, 0x188, &[0x11; 16]);
    put(&mut v, 0x198, &[0x22; 16]);
    for i in 0..64 {
        le32(&mut v, 0x200 + 4 * i, u32::MAX);
    }
    v
}

// ---------------------------------------------------------------- helpers

pub(super) fn chunked(bytes: &[u8], chunk: usize, limit: u64) -> Result<Inspection, Refusal> {
    let mut ins = Inspector::new(limit);
    for c in bytes.chunks(chunk.max(1)) {
        ins.push(c)?;
    }
    ins.finish()
}

/// Verdict of one-shot inspection, checked against a few chunkings.
pub(super) fn verdict(bytes: &[u8], limit: u64) -> Result<Inspection, Refusal> {
    let whole = inspect(bytes, limit);
    for chunk in [1usize << 20, 65537, 7919, 4096] {
        assert_eq!(chunked(bytes, chunk, limit), whole, "chunk size {chunk}");
    }
    whole
}

#[track_caller]
pub(super) fn ok(bytes: &[u8], format: DiskFormat, size: u64, detail: &str) {
    let got = verdict(bytes, LIMIT).unwrap_or_else(|r| panic!("refused: {r}"));
    assert_eq!(
        (got.format, got.virtual_size, got.detail.as_str()),
        (format, size, detail)
    );
}

#[track_caller]
pub(super) fn no(bytes: &[u8], needle: &str) {
    no_with_limit(bytes, LIMIT, needle);
}

#[track_caller]
pub(super) fn no_with_limit(bytes: &[u8], limit: u64, needle: &str) {
    match verdict(bytes, limit) {
        Ok(i) => panic!("accepted {i:?}, expected refusal mentioning {needle:?}"),
        Err(r) => assert!(
            r.message().contains(needle),
            "{r:?} does not mention {needle:?}"
        ),
    }
}

pub(super) fn with(mut v: Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    f(&mut v);
    v
}

pub(super) fn at(len: usize, off: usize, pat: &[u8]) -> Vec<u8> {
    with(vec![0u8; len], |v| put(v, off, pat))
}

// ---------------------------------------------------------------- partition tables

/// One MBR partition entry (slot 0..4): boot flag, type, first LBA, sectors.
pub(super) fn mbr_entry(v: &mut Vec<u8>, slot: usize, boot: u8, kind: u8, lba: u32, sectors: u32) {
    let e = 446 + 16 * slot;
    put(v, e, &[boot]);
    put(v, e + 4, &[kind]);
    le32(v, e + 8, lba);
    le32(v, e + 12, sectors);
}

/// A `len`-byte raw disk with an MBR holding one Linux partition from 1 MiB on.
pub(super) fn mbr_disk(len: usize) -> Vec<u8> {
    with(vec![0u8; len], |v| {
        mbr_entry(v, 0, 0x80, 0x83, 2048, (len / 512) as u32 - 2048);
        put(v, 510, &[0x55, 0xaa]);
    })
}

/// A `len`-byte raw disk with a protective MBR and a GPT header at LBA 1.
pub(super) fn gpt_disk(len: usize) -> Vec<u8> {
    with(vec![0u8; len], |v| {
        mbr_entry(v, 0, 0, 0xee, 1, (len / 512) as u32 - 1);
        put(v, 510, &[0x55, 0xaa]);
        put(v, 512, b"EFI PART");
    })
}

/// The verdict with the partition table required (as the importer asks by default), checked
/// against a few chunkings as [`verdict`] is.
pub(super) fn partitioned_verdict(bytes: &[u8]) -> Result<Inspection, Refusal> {
    let whole = crate::inspector::inspect_whole_with(bytes, LIMIT, true);
    for chunk in [1usize << 20, 65537, 7919, 4096] {
        let mut ins = Inspector::new(LIMIT).require_partition_table(true);
        let streamed = bytes
            .chunks(chunk)
            .try_for_each(|c| ins.push(c))
            .and_then(|()| ins.finish());
        assert_eq!(streamed, whole, "chunk size {chunk}");
    }
    whole
}
