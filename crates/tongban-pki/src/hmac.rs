//! HMAC-SHA256 for carrier pushes: a carrier signs the request body with a
//! secret shared with the node, and the node checks it in constant time.

use ring::hmac;

/// The lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body);
    hex::encode(tag.as_ref())
}

/// Whether `signature_hex` is the HMAC-SHA256 of `body` under `secret`
/// (compared in constant time).
pub fn verify_hex(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(tag) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), body, &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_its_own_signature_and_nothing_else() {
        let sig = sign_hex(b"secret", b"body");
        assert!(verify_hex(b"secret", b"body", &sig));
        assert!(!verify_hex(b"secret", b"body!", &sig));
        assert!(!verify_hex(b"other", b"body", &sig));
        assert!(!verify_hex(b"secret", b"body", "zz"));
    }
}
