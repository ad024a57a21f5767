//! Password hashing (argon2id, PHC strings with a random salt) and the random secrets of
//! API and node tokens (`paas_…`, `paasnode_…`), stored only as their sha256.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// The prefix of every user API token, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "paas_";
/// The prefix of per-node tokens.
pub const NODE_TOKEN_PREFIX: &str = "paasnode_";

/// Shortest password `users:add` and password changes accept.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Hashes `password` with argon2id and a fresh salt. Slow on purpose (tens of ms): call it
/// from `spawn_blocking` in async code.
pub fn hash_password(password: &str) -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let Ok(salt) = SaltString::encode_b64(&raw) else {
        return String::new();
    };
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        // Hashing only fails for out-of-range parameters, and the defaults are in range.
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// True when `password` matches the PHC string `hash`. A malformed hash matches nothing.
pub fn verify_hash(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A real argon2 hash of a password nobody knows, computed once: verifying against it costs
/// the same as against a user's hash, so unknown user names take as long as known ones.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&crate::util::random_hex(16)))
}

/// A new high-entropy secret with `prefix` (256 random bits, hex).
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}", crate::util::random_hex(32))
}

/// The hex sha256 of a token: what the store keeps. Tokens carry 256 random bits, so a
/// plain hash is enough (no salt, no slow hash needed).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_hash_verifies_only_the_right_password() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_hash(&h, "correct horse"));
        assert!(!verify_hash(&h, "correct horsf"));
        assert!(!verify_hash(&h, ""));
        assert!(!verify_hash("not a hash", "correct horse"));
        // Same password, different salt.
        assert_ne!(h, hash_password("correct horse"));
    }

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = new_secret(TOKEN_PREFIX);
        let b = new_secret(TOKEN_PREFIX);
        assert!(a.starts_with("paas_") && a.len() == 5 + 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash("x"), token_hash("x"));
    }
}
