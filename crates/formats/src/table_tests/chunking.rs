//! Verdicts that must not depend on how the bytes arrive: chunkings, the tail ring buffer,
//! the prefix boundary, truncations, and the fuzzers' hostile shapes.

use super::builders::*;
use crate::{inspect, DiskFormat, Inspector};

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
