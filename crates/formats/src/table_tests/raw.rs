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
