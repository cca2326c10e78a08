//! Request parameters, scope lists and random tokens.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

/// The parameters of a request (query or form body).
pub type Params = HashMap<String, String>;

/// Request parameters; a parameter sent twice is an error (RFC 6749 §3.1).
pub fn parse_params(raw: &[u8]) -> Result<Params, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(raw).map_err(|_| "malformed parameters".to_string())?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if out.insert(k.clone(), v).is_some() {
            return Err(format!("parameter {k} is repeated"));
        }
    }
    Ok(out)
}

/// A space-separated list (RFC 6749 §3.3), without duplicates, in order.
pub fn split_scopes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_string());
        }
    }
    out
}

/// A random token: 256 bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    if aws_lc_rs::rand::SecureRandom::fill(&rng, &mut bytes).is_err() {
        // aws-lc aborts rather than fail here; keep the type honest anyway.
        panic!("system random number generator failed");
    }
    B64.encode(bytes)
}

/// Constant-time equality of two secrets.
pub fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_params(b"a=1&b=2").is_ok());
        assert!(parse_params(b"a=1&a=2").unwrap_err().contains("repeated"));
    }

    #[test]
    fn scopes_split_and_dedupe() {
        assert_eq!(split_scopes("openid  email openid"), ["openid", "email"]);
    }
}
