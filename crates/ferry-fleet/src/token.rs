//! Secrets: device tokens and ids drawn from the OS's randomness, and the
//! SHA-256 under which a token is kept (the server never stores a token).
//!
//! Not for deciding who may do what: the API maps a token to its caller.

use rand::RngCore;

/// A new device token: 32 random bytes, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A new device id: `dev-` and 16 random bytes, hex.
pub fn device_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("dev-{}", hex(&bytes))
}

/// SHA-256 (hex) of a token, as stored and compared.
pub fn hash(token: &str) -> String {
    hash_bytes(token.as_bytes())
}

pub fn hash_bytes(bytes: &[u8]) -> String {
    ferry_fetch::sha256_hex(bytes)
}

/// Compares two hashes in time independent of where they differ, so the
/// answer's timing says nothing about the operator token's hash.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_to_64_hex_digits() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash(&a).len(), 64);
        assert!(same(&hash(&a), &hash(&a)));
        assert!(!same(&hash(&a), &hash(&b)));
        assert!(device_id().starts_with("dev-"));
    }
}
