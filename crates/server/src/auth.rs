//! Tokens and scopes. A token is shown to its owner once; the catalog keeps only its SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix of DigitalOcean's personal access tokens, so that tools which look at the
/// shape of a token accept ours.
const TOKEN_PREFIX: &str = "dop_v1_";

/// A new random token secret: 256 bits from the thread-local CSPRNG, seeded by the OS.
pub fn generate_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!("{TOKEN_PREFIX}{}", hex(&raw))
}

/// What the catalog stores for a token. A fast hash is enough: the secret has 256 bits of
/// entropy, so there is nothing to brute-force that a slow hash would protect.
pub fn token_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Lowercase hex. Not through `format!` a byte at a time: that was a tenth of what a request
/// cost, as every request hashes its token.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_hashed() {
        let a = generate_token();
        assert!(a.starts_with("dop_v1_") && a.len() == 7 + 64);
        assert_ne!(a, generate_token());
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
