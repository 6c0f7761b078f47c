//! Content digests: computing `sha256:<hex>` and checking that a string is one.

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Checks `algorithm:hex` with a sha256/sha512 length check.
pub fn validate_digest(digest: &str) -> Result<(), String> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("digest {digest:?} must look like sha256:<64 hex digits>"))?;
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("digest algorithm {alg:?} is not supported")),
    };
    if hex.len() != want || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!(
            "digest {digest:?} must have {want} lowercase hex digits"
        ));
    }
    Ok(())
}
