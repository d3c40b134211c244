//! Table tests over hand-built headers: a minimal valid image per format,
//! then one field changed per case.

use crate::bytes::crc32c_with_hole;
use crate::{inspect, DiskFormat, Inspection, Inspector, Refusal};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 64 * MIB;
const LIMIT: u64 = 1 << 40;

fn put(v: &mut Vec<u8>, off: usize, bytes: &[u8]) {
    if v.len() < off + bytes.len() {
        v.resize(off + bytes.len(), 0);
    }
    v[off..off + bytes.len()].copy_from_slice(bytes);
}
fn be32(v: &mut Vec<u8>, off: usize, x: u32) {
    put(v, off, &x.to_be_bytes());
}
fn be64(v: &mut Vec<u8>, off: usize, x: u64) {
    put(v, off, &x.to_be_bytes());
}
fn le16(v: &mut Vec<u8>, off: usize, x: u16) {
    put(v, off, &x.to_le_bytes());
}
fn le32(v: &mut Vec<u8>, off: usize, x: u32) {
    put(v, off, &x.to_le_bytes());
}
fn le64(v: &mut Vec<u8>, off: usize, x: u64) {
    put(v, off, &x.to_le_bytes());
}

// ---------------------------------------------------------------- qcow2

/// 64 KiB clusters: header, refcount table, refcount block, L1 table.
fn qcow2(version: u32) -> Vec<u8> {
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

fn descriptor(create_type: &str, extents: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n# Extent description\n{extents}\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\n"
    )
}

fn vmdk_with(desc: &str) -> Vec<u8> {
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

fn vmdk() -> Vec<u8> {
    vmdk_with(&descriptor(
        "monolithicSparse",
        "RW 131072 SPARSE \"disk.vmdk\"",
    ))
}

/// streamOptimized as VMware writes it: grain directory at the end, the
/// real header in a footer.
fn vmdk_stream_gd_at_end() -> Vec<u8> {
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

const META: usize = 3 << 20;

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
fn g_parent_locator() -> [u8; 16] {
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
fn vhdx_fix_checksums(v: &mut Vec<u8>) {
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

fn vhdx_add_item(v: &mut Vec<u8>, id: [u8; 16], value_off: u32, len: u32, flags: u32) {
    let count = u16::from_le_bytes([v[META + 10], v[META + 11]]);
    let e = META + 32 + usize::from(count) * 32;
    put(v, e, &id);
    le32(v, e + 16, value_off);
    le32(v, e + 20, len);
    le32(v, e + 24, flags);
    le16(v, META + 10, count + 1);
}

fn vhdx() -> Vec<u8> {
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

fn vdi() -> Vec<u8> {
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

fn chunked(bytes: &[u8], chunk: usize, limit: u64) -> Result<Inspection, Refusal> {
    let mut ins = Inspector::new(limit);
    for c in bytes.chunks(chunk.max(1)) {
        ins.push(c)?;
    }
    ins.finish()
}

/// Verdict of one-shot inspection, checked against a few chunkings.
fn verdict(bytes: &[u8], limit: u64) -> Result<Inspection, Refusal> {
    let whole = inspect(bytes, limit);
    for chunk in [1usize << 20, 65537, 7919, 4096] {
        assert_eq!(chunked(bytes, chunk, limit), whole, "chunk size {chunk}");
    }
    whole
}

#[track_caller]
fn ok(bytes: &[u8], format: DiskFormat, size: u64, detail: &str) {
    let got = verdict(bytes, LIMIT).unwrap_or_else(|r| panic!("refused: {r}"));
    assert_eq!(
        (got.format, got.virtual_size, got.detail.as_str()),
        (format, size, detail)
    );
}

#[track_caller]
fn no(bytes: &[u8], needle: &str) {
    no_with_limit(bytes, LIMIT, needle);
}

#[track_caller]
fn no_with_limit(bytes: &[u8], limit: u64, needle: &str) {
    match verdict(bytes, limit) {
        Ok(i) => panic!("accepted {i:?}, expected refusal mentioning {needle:?}"),
        Err(r) => assert!(
            r.message().contains(needle),
            "{r:?} does not mention {needle:?}"
        ),
    }
}

fn with(mut v: Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    f(&mut v);
    v
}

// ---------------------------------------------------------------- tests

#[test]
fn empty_and_raw() {
    no(b"", "image is empty");
    assert_eq!(
        Inspector::new(LIMIT).finish().unwrap_err().message(),
        "image is empty; upload a disk image"
    );
    ok(b"hello", DiskFormat::Raw, 5, "raw");
    let mbr = with(vec![0u8; 1 << 20], |v| put(v, 510, &[0x55, 0xaa]));
    ok(&mbr, DiskFormat::Raw, 1 << 20, "raw (MBR)");
    let gpt = with(mbr.clone(), |v| put(v, 512, b"EFI PART"));
    ok(&gpt, DiskFormat::Raw, 1 << 20, "raw (GPT)");
    // Magic-looking prefixes that are too short to be a signature.
    ok(b"QFI", DiskFormat::Raw, 3, "raw");
    ok(b"BZh9 not really", DiskFormat::Raw, 15, "raw");
}

#[test]
fn raw_size_limit() {
    let v = vec![7u8; 5 << 20];
    no_with_limit(&v, 4 << 20, "raw image is larger than the limit of 4 MiB");
    // The streaming inspector says so while the bytes arrive.
    let mut ins = Inspector::new(4 << 20);
    ins.push(&v[..4 << 20]).unwrap();
    assert!(ins.push(&v[..1]).is_err());
    ok(&v, DiskFormat::Raw, 5 << 20, "raw");
}

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

#[test]
fn vmdk_accepted() {
    ok(&vmdk(), DiskFormat::Vmdk, SIZE, "vmdk monolithicSparse");
    ok(
        &vmdk_stream_gd_at_end(),
        DiskFormat::Vmdk,
        SIZE,
        "vmdk streamOptimized",
    );
    // Descriptor spacing and CRLF line ends as VMware tools write them.
    let d = descriptor("monolithicSparse", "RW 131072 SPARSE \"disk.vmdk\"")
        .replace('\n', "\r\n")
        .replace("createType=", "createType = ");
    ok(
        &vmdk_with(&d),
        DiskFormat::Vmdk,
        SIZE,
        "vmdk monolithicSparse",
    );
}

#[test]
fn vmdk_refusals() {
    let ext = "RW 131072 SPARSE \"disk.vmdk\"";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "twoGb",
            vmdk_with(&descriptor("twoGbMaxExtentSparse", ext)),
            "vmdk createType \"twoGbMaxExtentSparse\" is not supported",
        ),
        (
            "flat type",
            vmdk_with(&descriptor("monolithicFlat", ext)),
            "createType \"monolithicFlat\"",
        ),
        (
            "vmfs",
            vmdk_with(&descriptor("vmfs", ext)),
            "createType \"vmfs\"",
        ),
        (
            "flat extent",
            vmdk_with(&descriptor(
                "monolithicSparse",
                "RW 131072 FLAT \"disk-flat.vmdk\" 0",
            )),
            "extent type FLAT",
        ),
        (
            "zero extent",
            vmdk_with(&descriptor("monolithicSparse", "RW 131072 ZERO")),
            "extent type ZERO",
        ),
        (
            "vmfs extent",
            vmdk_with(&descriptor("monolithicSparse", "RW 131072 VMFS \"x.vmdk\"")),
            "extent type VMFS",
        ),
        (
            "two extents",
            vmdk_with(&descriptor(
                "monolithicSparse",
                "RW 131072 SPARSE \"a.vmdk\"\nRW 131072 SPARSE \"b.vmdk\"",
            )),
            "more than one extent",
        ),
        (
            "no extent",
            vmdk_with(&descriptor("monolithicSparse", "")),
            "lists no extent",
        ),
        (
            "extent size",
            vmdk_with(&descriptor(
                "monolithicSparse",
                "RW 100 SPARSE \"disk.vmdk\"",
            )),
            "extent size differs",
        ),
        (
            "extent path",
            vmdk_with(&descriptor(
                "monolithicSparse",
                "RW 131072 SPARSE \"../other.vmdk\"",
            )),
            "extent names another file",
        ),
        (
            "parentCID",
            vmdk_with(
                &descriptor("monolithicSparse", ext)
                    .replace("parentCID=ffffffff", "parentCID=abcdef01"),
            ),
            "parentCID",
        ),
        (
            "parent hint",
            vmdk_with(
                &(descriptor("monolithicSparse", ext) + "parentFileNameHint=\"base.vmdk\"\n"),
            ),
            "parentFileNameHint",
        ),
        (
            "no createType",
            vmdk_with(&descriptor("monolithicSparse", ext).replace("createType", "kind")),
            "no createType",
        ),
        (
            "binary descriptor",
            with(vmdk(), |v| put(v, 520, &[0xff, 0xfe])),
            "descriptor is not text",
        ),
        (
            "no descriptor",
            with(vmdk(), |v| le64(v, 28, 0)),
            "no embedded descriptor",
        ),
        (
            "empty descriptor",
            with(vmdk(), |v| put(v, 512, &[0u8; 1024])),
            "no embedded descriptor",
        ),
        (
            "capacity zero",
            with(vmdk(), |v| le64(v, 12, 0)),
            "capacity is zero",
        ),
        (
            "capacity overflow",
            with(vmdk(), |v| le64(v, 12, u64::MAX)),
            "capacity overflows",
        ),
        (
            "too big",
            with(vmdk(), |v| le64(v, 12, (200 << 30) / 512)),
            "virtual size 200 GiB exceeds the limit of 100 GiB",
        ),
        (
            "version",
            with(vmdk(), |v| le32(v, 4, 4)),
            "version 4 is not supported",
        ),
        (
            "newline damage",
            with(vmdk(), |v| put(v, 73, b"\n \n\n")),
            "text mode",
        ),
        (
            "granularity",
            with(vmdk(), |v| le64(v, 20, 3)),
            "grain size 3",
        ),
        (
            "gtes",
            with(vmdk(), |v| le32(v, 44, 4096)),
            "grain table entries",
        ),
        (
            "descriptor huge",
            with(vmdk(), |v| le64(v, 36, 1 << 40)),
            "descriptor is too large",
        ),
        (
            "descriptor far",
            with(vmdk(), |v| le64(v, 28, 1 << 50)),
            "vmdk image is truncated",
        ),
        (
            "gd at end, not stream",
            with(vmdk(), |v| le64(v, 56, u64::MAX)),
            "grain directory at end",
        ),
        (
            "grain past end",
            with(vmdk(), |v| le64(v, 64, 1 << 20)),
            "vmdk image is truncated",
        ),
        (
            "descriptor file",
            descriptor("monolithicFlat", "RW 131072 FLAT \"x-flat.vmdk\" 0").into_bytes(),
            "vmdk descriptor without data; upload a monolithicSparse or streamOptimized vmdk",
        ),
        (
            "cowd",
            with(vec![0u8; 4096], |v| put(v, 0, b"COWD")),
            "COWD",
        ),
        (
            "footer missing",
            {
                let v = vmdk_stream_gd_at_end();
                v[..v.len() - 512].to_vec()
            },
            "footer is missing",
        ),
        (
            "footer capacity",
            with(vmdk_stream_gd_at_end(), |v| {
                let n = v.len();
                le64(v, n - 1024 + 12, 8);
            }),
            "capacity differs",
        ),
        (
            "footer gd",
            with(vmdk_stream_gd_at_end(), |v| {
                let n = v.len();
                le64(v, n - 1024 + 56, u64::MAX);
            }),
            "no grain directory",
        ),
        (
            "footer gd past end",
            with(vmdk_stream_gd_at_end(), |v| {
                let n = v.len();
                le64(v, n - 1024 + 56, 1 << 30);
            }),
            "grain directory past the end",
        ),
        (
            "footer magic",
            with(vmdk_stream_gd_at_end(), |v| {
                let n = v.len();
                put(v, n - 1024, b"XXXX");
            }),
            "footer is missing",
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

fn at(len: usize, off: usize, pat: &[u8]) -> Vec<u8> {
    with(vec![0u8; len], |v| put(v, off, pat))
}

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

#[test]
fn tail_ring_buffer_in_any_chunking() {
    // A fixed VHD is raw data plus a footer: only the tail can tell.
    let mut v = vec![1u8; (5 << 20) + 1000];
    let n = v.len();
    put(&mut v, n - 512, b"conectix");
    for chunk in [
        3usize,
        511,
        512,
        65535,
        65536,
        65537,
        100_000,
        5 << 20,
        6 << 20,
    ] {
        let r = chunked(&v, chunk, LIMIT).unwrap_err();
        assert!(r.message().contains("VHD"), "chunk {chunk}: {r}");
    }
    v[n - 512] = b'C';
    for chunk in [3usize, 65536, 65537] {
        assert_eq!(chunked(&v, chunk, LIMIT).unwrap().virtual_size, n as u64);
    }
}

#[test]
fn prefix_boundary() {
    let exact = vec![0u8; Inspector::PREFIX_LEN];
    ok(&exact, DiskFormat::Raw, exact.len() as u64, "raw");
    let plus = vec![0u8; Inspector::PREFIX_LEN + 1];
    ok(&plus, DiskFormat::Raw, plus.len() as u64, "raw");
}

/// Every truncation of every valid sample: no panic, one-shot and chunked
/// agree, and nothing cut inside its header structures passes as the same
/// image. (A cut among data clusters cannot be seen from headers alone.)
#[test]
fn truncations_never_panic() {
    let samples = [
        (qcow2(2), 0x30008),
        (qcow2(3), 0x30008),
        (vmdk(), 128 * 512),
        (vmdk_stream_gd_at_end(), usize::MAX),
        (vdi(), 0x400),
        (vhdx(), 4 << 20),
    ];
    for (s, min_len) in samples {
        let full = inspect(&s, LIMIT).unwrap();
        let mut len = 0;
        while len < s.len() {
            let cut = &s[..len];
            let whole = inspect(cut, LIMIT);
            assert_eq!(chunked(cut, 4093, LIMIT), whole, "len {len}");
            if let Ok(i) = whole {
                assert!(
                    len >= min_len || i.format != full.format,
                    "{full:?} truncated to {len} accepted as {i:?}"
                );
            }
            len += if len < 2048 {
                1
            } else if len < 0x11000 {
                97
            } else {
                40_009
            };
        }
    }
}

/// The fuzzers (about 6.5 min in all, with overflow checks) found no crash;
/// these are the hostile shapes they spent most time on, kept as a guard.
#[test]
fn fuzz_regressions() {
    let ff = |magic: &[u8], n: usize| {
        let mut v = magic.to_vec();
        v.resize(n, 0xff);
        v
    };
    let cases = [
        ff(b"QFI\xfb", 200),
        ff(b"QFI\xfb\0\0\0\x03", 70_000),
        ff(b"KDMV", 4096),
        ff(b"KDMV\x03\0\0\0", 70_000),
        ff(b"vhdxfile", 300_000),
        ff(&[0; 0x40], 0x44),
        with(ff(&[0; 0x40], 0x400), |v| le32(v, 0x40, 0xbeda107f)),
        with(vmdk(), |v| le64(v, 36, u64::MAX)),
        with(vmdk(), |v| le64(v, 56, u64::MAX - 1)),
        with(qcow2(3), |v| be64(v, 0x30000, u64::MAX)),
    ];
    for c in &cases {
        let _ = verdict(c, LIMIT);
        let _ = verdict(c, 1 << 20);
    }
}
