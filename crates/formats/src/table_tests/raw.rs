//! Raw images, and the size limit on them.

use super::builders::*;
use crate::{DiskFormat, Inspector};

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
fn raw_needs_a_partition_table_when_required() {
    let required = |bytes: &[u8]| partitioned_verdict(bytes);
    let accepted = |bytes: &[u8], detail: &str| {
        let got = required(bytes).unwrap_or_else(|r| panic!("{detail}: refused: {r}"));
        assert_eq!((got.format, got.detail.as_str()), (DiskFormat::Raw, detail));
    };
    accepted(&mbr_disk(2 << 20), "raw (MBR)");
    accepted(&gpt_disk(2 << 20), "raw (GPT)");
    // A GPT header without a protective MBR is still a GPT.
    accepted(&at(2 << 20, 512, b"EFI PART"), "raw (GPT)");
    // An MBR whose only partition is in the last slot.
    let last_slot = with(vec![0u8; 1 << 20], |v| {
        mbr_entry(v, 3, 0, 0x0c, 1, 100);
        put(v, 510, &[0x55, 0xaa]);
    });
    accepted(&last_slot, "raw (MBR)");

    let refused = |name: &str, bytes: &[u8], needle: &str| match required(bytes) {
        Ok(i) => panic!("{name}: accepted {i:?}"),
        Err(r) => {
            assert!(
                r.message().starts_with(
                    "a raw image must start with an MBR or GPT partition table, as DigitalOcean requires; "
                ),
                "{name}: {r}"
            );
            assert!(
                r.message().contains(needle),
                "{name}: {r:?} lacks {needle:?}"
            );
        }
    };
    let noise: Vec<u8> = (0u32..5 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(!noise[510..520].starts_with(&[0x55, 0xaa]));
    refused("noise", &noise, "this one has neither");
    refused("zeros", &vec![0u8; 1 << 20], "this one has neither");
    refused("tiny", b"hello", "this one has neither");
    let signature_only = with(vec![0u8; 1 << 20], |v| put(v, 510, &[0x55, 0xaa]));
    refused(
        "signature only",
        &signature_only,
        "no partition in its table",
    );
    let bad_boot_flag = with(mbr_disk(1 << 20), |v| put(v, 446 + 16, &[0x12]));
    refused("bad boot flag", &bad_boot_flag, "no partition in its table");
    // A FAT file system's boot sector has the MBR signature but is no partition table.
    let fat = with(mbr_disk(1 << 20), |v| {
        put(v, 0x10, &[2]);
        put(v, 0x15, &[0xf8]);
    });
    refused("fat boot sector", &fat, "no partition in its table");

    // Trailers are checked first: a fixed VHD is told it is one.
    let vhd = with(vec![0u8; 1 << 20], |v| put(v, (1 << 20) - 512, b"conectix"));
    let r = required(&vhd).unwrap_err();
    assert!(r.message().contains("VHD (vpc) is not supported"), "{r}");
    // So is the size limit, as the bytes arrive.
    let mut ins = Inspector::new(4 << 20).require_partition_table(true);
    ins.push(&noise[..4 << 20]).unwrap();
    let r = ins.push(&[0]).unwrap_err();
    assert!(r.message().contains("larger than the limit"), "{r}");
    // Other formats need no partition table of their own.
    let qcow = partitioned_verdict(&qcow2(3)).unwrap();
    assert_eq!(qcow.format, DiskFormat::Qcow2);
}

#[test]
fn bare_raw_accepted_unless_required() {
    let noise: Vec<u8> = (0u32..1 << 20).map(|i| (i % 251) as u8).collect();
    ok(&noise, DiskFormat::Raw, 1 << 20, "raw");
    let mut ins = Inspector::new(LIMIT).require_partition_table(false);
    ins.push(&noise).unwrap();
    assert_eq!(ins.finish().unwrap().detail, "raw");
}
