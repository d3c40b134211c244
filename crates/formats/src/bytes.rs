//! Bounds-checked readers. Every read reports the end offset it would have
//! needed, so a short buffer becomes "need more bytes" instead of a panic.

/// The buffer ended before `0` (an absolute end offset) was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need(pub u64);

pub(crate) fn slice(b: &[u8], off: u64, len: u64) -> Result<&[u8], Need> {
    let end = off.checked_add(len).ok_or(Need(u64::MAX))?;
    let (Ok(s), Ok(e)) = (usize::try_from(off), usize::try_from(end)) else {
        return Err(Need(end));
    };
    b.get(s..e).ok_or(Need(end))
}

fn array<const N: usize>(b: &[u8], off: u64) -> Result<[u8; N], Need> {
    let s = slice(b, off, N as u64)?;
    let mut out = [0u8; N];
    out.copy_from_slice(s);
    Ok(out)
}

pub(crate) fn u8_at(b: &[u8], off: u64) -> Result<u8, Need> {
    Ok(array::<1>(b, off)?[0])
}
pub(crate) fn le16(b: &[u8], off: u64) -> Result<u16, Need> {
    array(b, off).map(u16::from_le_bytes)
}
pub(crate) fn le32(b: &[u8], off: u64) -> Result<u32, Need> {
    array(b, off).map(u32::from_le_bytes)
}
pub(crate) fn le64(b: &[u8], off: u64) -> Result<u64, Need> {
    array(b, off).map(u64::from_le_bytes)
}
pub(crate) fn be32(b: &[u8], off: u64) -> Result<u32, Need> {
    array(b, off).map(u32::from_be_bytes)
}
pub(crate) fn be64(b: &[u8], off: u64) -> Result<u64, Need> {
    array(b, off).map(u64::from_be_bytes)
}
pub(crate) fn bytes16(b: &[u8], off: u64) -> Result<[u8; 16], Need> {
    array(b, off)
}

/// True when `pat` sits at `off`; a short buffer is simply "no match".
pub(crate) fn has_at(b: &[u8], off: u64, pat: &[u8]) -> bool {
    slice(b, off, pat.len() as u64).is_ok_and(|s| s == pat)
}

/// Microsoft GUIDs store their first three fields little-endian and the last
/// eight bytes as written, so the on-disk bytes differ from the text form.
pub(crate) const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

const CRC32C_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32C (Castagnoli), as VHDX uses for its headers and region tables.
/// `zero` is a byte range treated as zeros: the stored checksum field itself.
pub(crate) fn crc32c_with_hole(data: &[u8], zero: core::ops::Range<usize>) -> u32 {
    let mut crc = !0u32;
    for (i, &byte) in data.iter().enumerate() {
        let b = if zero.contains(&i) { 0 } else { byte };
        let idx = usize::from((crc as u8) ^ b);
        crc = (crc >> 8) ^ CRC32C_TABLE.get(idx).copied().unwrap_or(0);
    }
    !crc
}

/// Round up to a multiple of 8 without overflow.
pub(crate) fn align8(v: u64) -> Option<u64> {
    v.checked_add(7).map(|x| x & !7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_report_needed_end() {
        let b = [1u8, 2, 3];
        assert_eq!(le16(&b, 0), Ok(0x0201));
        assert_eq!(le32(&b, 0), Err(Need(4)));
        assert_eq!(le64(&b, u64::MAX), Err(Need(u64::MAX)));
        assert!(!has_at(&b, 2, b"\x03\x04"));
    }

    #[test]
    fn crc32c_known_vector() {
        assert_eq!(crc32c_with_hole(b"123456789", 0..0), 0xe306_9283);
    }

    #[test]
    fn guid_is_mixed_endian() {
        let g = guid(
            0x8B7C_A206,
            0x4790,
            0x4B9A,
            [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
        );
        assert_eq!(&g[..4], &[0x06, 0xa2, 0x7c, 0x8b]);
        assert_eq!(&g[4..8], &[0x90, 0x47, 0x9a, 0x4b]);
    }
}
