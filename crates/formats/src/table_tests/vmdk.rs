//! vmdk: monolithicSparse and streamOptimized accepted; other subformats and bad fields refused.

use super::builders::*;
use crate::DiskFormat;

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
