//! Byte counts in words, for messages about limits.

/// `100000000000` → "100 GB", `1048576` → "1 MiB": the largest unit that divides exactly, since a
/// limit is configured as a round number in one system or the other.
pub fn in_words(bytes: u64) -> String {
    const UNITS: &[(&str, u64)] = &[
        ("TiB", 1 << 40),
        ("TB", 1_000_000_000_000),
        ("GiB", 1 << 30),
        ("GB", 1_000_000_000),
        ("MiB", 1 << 20),
        ("MB", 1_000_000),
        ("KiB", 1 << 10),
        ("kB", 1_000),
    ];
    UNITS
        .iter()
        .find(|(_, unit)| bytes >= *unit && bytes % unit == 0)
        .map(|(name, unit)| format!("{} {name}", bytes / unit))
        .unwrap_or_else(|| format!("{bytes} bytes"))
}

#[cfg(test)]
mod tests {
    use super::in_words;

    #[test]
    fn words() {
        assert_eq!(in_words(100_000_000_000), "100 GB");
        assert_eq!(in_words(100 << 30), "100 GiB");
        assert_eq!(in_words(1 << 20), "1 MiB");
        assert_eq!(in_words(3_000_000), "3 MB");
        assert_eq!(in_words(1234), "1234 bytes");
    }
}
