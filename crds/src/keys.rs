//! Signing key material: generation, PKCS#8 PEM, public JWKs and RFC 7638 thumbprints.
//!
//! aws-lc-rs does the cryptography: constant-time, and fast enough that key generation never
//! stalls a reconcile.

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{KeyPair as RsaKeyPair, KeySize},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

use crate::{Algorithm, PublicJwk};

/// Data key of the PKCS#8 PEM private key in a SigningKey's key Secret.
pub const PRIVATE_KEY: &str = "private.pem";

/// Why key material could not be made or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("unsupported RSA key size {0}; use 2048, 3072 or 4096")]
    UnsupportedKeySize(u32),
    #[error("key generation failed")]
    Generation,
    #[error("the private key is not a PEM-encoded PKCS#8 {0} key: {1}")]
    Malformed(&'static str, String),
}

/// A freshly generated private key and its public JWK (with `kid` set to its thumbprint).
pub struct GeneratedKey {
    pub pkcs8_pem: String,
    pub jwk: PublicJwk,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private key material.
        f.debug_struct("GeneratedKey")
            .field("kid", &self.jwk.kid)
            .finish()
    }
}

/// Generates a key for `alg`; `rsa_bits` is used for RS256 and PS256.
pub fn generate(alg: Algorithm, rsa_bits: u32) -> Result<GeneratedKey, KeyError> {
    let der: Vec<u8> = match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            let size = match rsa_bits {
                2048 => KeySize::Rsa2048,
                3072 => KeySize::Rsa3072,
                4096 => KeySize::Rsa4096,
                other => return Err(KeyError::UnsupportedKeySize(other)),
            };
            let key = RsaKeyPair::generate(size).map_err(|_| KeyError::Generation)?;
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec()
        }
        Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
        Algorithm::EdDSA => Ed25519KeyPair::generate()
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
    };
    let jwk = public_jwk_from_der(alg, &der)?;
    Ok(GeneratedKey {
        pkcs8_pem: pem::encode(&pem::Pem::new("PRIVATE KEY", der)),
        jwk,
    })
}

/// PKCS#8 DER from PEM.
pub fn pkcs8_der(alg: Algorithm, pkcs8_pem: &str) -> Result<Vec<u8>, KeyError> {
    let parsed =
        pem::parse(pkcs8_pem).map_err(|e| KeyError::Malformed(alg.as_str(), e.to_string()))?;
    if parsed.tag() != "PRIVATE KEY" {
        return Err(KeyError::Malformed(
            alg.as_str(),
            format!("PEM block is {:?}, expected \"PRIVATE KEY\"", parsed.tag()),
        ));
    }
    Ok(parsed.into_contents())
}

/// Reads a PKCS#8 PEM private key and derives its public JWK (with `kid`).
pub fn public_jwk(alg: Algorithm, pkcs8_pem: &str) -> Result<PublicJwk, KeyError> {
    public_jwk_from_der(alg, &pkcs8_der(alg, pkcs8_pem)?)
}

fn public_jwk_from_der(alg: Algorithm, der: &[u8]) -> Result<PublicJwk, KeyError> {
    let malformed =
        |e: aws_lc_rs::error::KeyRejected| KeyError::Malformed(alg.as_str(), e.to_string());
    let mut jwk = match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            let key = RsaKeyPair::from_pkcs8(der).map_err(malformed)?;
            let public = key.public_key();
            PublicJwk {
                kty: "RSA".into(),
                n: Some(B64.encode(public.modulus().big_endian_without_leading_zero())),
                e: Some(B64.encode(public.exponent().big_endian_without_leading_zero())),
                ..Default::default()
            }
        }
        Algorithm::ES256 => {
            let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map_err(malformed)?;
            // Uncompressed point: 0x04 || x || y (SEC 1 §2.3.3).
            let point = key.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(KeyError::Malformed(
                    alg.as_str(),
                    "unexpected EC point".into(),
                ));
            }
            PublicJwk {
                kty: "EC".into(),
                crv: Some("P-256".into()),
                x: Some(B64.encode(&point[1..33])),
                y: Some(B64.encode(&point[33..])),
                ..Default::default()
            }
        }
        Algorithm::EdDSA => {
            let key = Ed25519KeyPair::from_pkcs8(der).map_err(malformed)?;
            PublicJwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(B64.encode(key.public_key().as_ref())),
                ..Default::default()
            }
        }
    };
    jwk.use_ = Some("sig".into());
    jwk.alg = Some(alg.as_str().into());
    jwk.kid = thumbprint(&jwk);
    Ok(jwk)
}

/// The size in bits of an RSA key's modulus.
pub fn rsa_modulus_bits(jwk: &PublicJwk) -> Option<u32> {
    let n = B64.decode(jwk.n.as_deref()?).ok()?;
    let first = *n.first()?;
    u32::try_from(n.len() * 8)
        .ok()?
        .checked_sub(first.leading_zeros())
}

/// Why a published JWK cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("JWK {kid:?} is malformed: {why}")]
pub struct MalformedJwk {
    pub kid: String,
    pub why: String,
}

/// Checks a public JWK the way a relying party will use it: a known algorithm, every member its
/// key type requires (RFC 7518 §6, RFC 8037 §2), of the right length, and `kid` its RFC 7638
/// thumbprint.
pub fn check_public_jwk(jwk: &PublicJwk) -> Result<Algorithm, MalformedJwk> {
    let alg = jwk
        .alg
        .as_deref()
        .and_then(|a| serde_json::from_value::<Algorithm>(a.into()).ok())
        .ok_or_else(|| malformed(jwk, format!("unknown or missing alg {:?}", jwk.alg)))?;
    let expected = match alg {
        Algorithm::RS256 | Algorithm::PS256 => ("RSA", None),
        Algorithm::ES256 => ("EC", Some("P-256")),
        Algorithm::EdDSA => ("OKP", Some("Ed25519")),
    };
    if jwk.kty != expected.0 || jwk.crv.as_deref() != expected.1 {
        return Err(malformed(
            jwk,
            format!(
                "kty {:?} crv {:?} do not fit alg {}",
                jwk.kty,
                jwk.crv,
                alg.as_str()
            ),
        ));
    }
    check_key_members(jwk)?;
    if thumbprint(jwk) != jwk.kid {
        return Err(malformed(
            jwk,
            "kid is not the key's RFC 7638 thumbprint".into(),
        ));
    }
    Ok(alg)
}

/// A client's public JWK from JSON; one without `kid` is named by its RFC 7638 thumbprint
/// (clients often publish a single key without one).
pub fn client_jwk(value: &serde_json::Value) -> Result<PublicJwk, String> {
    let mut value = value.clone();
    if let Some(o) = value.as_object_mut() {
        o.entry("kid").or_insert_with(|| "".into());
    }
    let mut jwk: PublicJwk = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if jwk.kid.is_empty() {
        jwk.kid = thumbprint(&jwk);
    }
    Ok(jwk)
}

/// Every JWS algorithm a client's key may sign with (client assertions, request objects).
pub const CLIENT_KEY_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The JWS algorithms a client's public key may sign client assertions with (RFC 7523): by its
/// key type and curve, narrowed to its `alg` when it names one. Checks the key like
/// [`check_public_jwk`], except that `alg` is optional and `kid` any non-empty name.
pub fn client_key_algorithms(jwk: &PublicJwk) -> Result<Vec<&'static str>, MalformedJwk> {
    if jwk.kid.is_empty() {
        return Err(malformed(jwk, "kid is missing".into()));
    }
    let family: &[&'static str] = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", None) => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        ("EC", Some("P-256")) => &["ES256"],
        ("EC", Some("P-384")) => &["ES384"],
        ("OKP", Some("Ed25519")) => &["EdDSA"],
        (kty, crv) => {
            return Err(malformed(
                jwk,
                format!(
                    "kty {kty:?} with crv {crv:?} is not supported: use RSA, EC P-256 or P-384, or OKP Ed25519"
                ),
            ));
        }
    };
    check_key_members(jwk)?;
    match jwk.alg.as_deref() {
        None => Ok(family.to_vec()),
        Some(alg) => family
            .iter()
            .find(|a| **a == alg)
            .map(|a| vec![*a])
            .ok_or_else(|| malformed(jwk, format!("alg {alg} does not fit kty {}", jwk.kty))),
    }
}

fn malformed(jwk: &PublicJwk, why: String) -> MalformedJwk {
    MalformedJwk {
        kid: jwk.kid.clone(),
        why,
    }
}

/// Every member the key's type requires (RFC 7518 §6, RFC 8037 §2), base64url, of the right
/// length; RSA moduli of at least 2048 bits.
fn check_key_members(jwk: &PublicJwk) -> Result<(), MalformedJwk> {
    let member = |name: &str, value: &Option<String>, len: Option<usize>| {
        let bytes = value
            .as_deref()
            .ok_or_else(|| malformed(jwk, format!("member {name} is missing")))
            .and_then(|v| {
                B64.decode(v)
                    .map_err(|_| malformed(jwk, format!("member {name} is not base64url")))
            })?;
        match len {
            Some(len) if bytes.len() != len => Err(malformed(
                jwk,
                format!("member {name} has {} bytes, not {len}", bytes.len()),
            )),
            _ if bytes.is_empty() => Err(malformed(jwk, format!("member {name} is empty"))),
            _ => Ok(()),
        }
    };
    match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            member("n", &jwk.n, None)?;
            member("e", &jwk.e, None)?;
            if rsa_modulus_bits(jwk).is_none_or(|bits| bits < 2048) {
                return Err(malformed(
                    jwk,
                    "the RSA modulus is shorter than 2048 bits".into(),
                ));
            }
            Ok(())
        }
        ("EC", Some("P-384")) => {
            member("x", &jwk.x, Some(48))?;
            member("y", &jwk.y, Some(48))
        }
        ("EC", _) => {
            member("x", &jwk.x, Some(32))?;
            member("y", &jwk.y, Some(32))
        }
        _ => member("x", &jwk.x, Some(32)),
    }
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order,
/// base64url without padding.
pub fn thumbprint(jwk: &PublicJwk) -> String {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    let canonical = match jwk.kty.as_str() {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&jwk.e), s(&jwk.n)),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s(&jwk.crv),
            s(&jwk.x),
            s(&jwk.y)
        ),
        _ => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
            s(&jwk.crv),
            jwk.kty,
            s(&jwk.x)
        ),
    };
    B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn malformed_jwks_are_named() {
        for alg in [
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            let good = generate(alg, 2048).unwrap().jwk;
            assert_eq!(check_public_jwk(&good), Ok(alg));
            if matches!(alg, Algorithm::RS256 | Algorithm::PS256) {
                assert_eq!(rsa_modulus_bits(&good), Some(2048));
            }
            let required: &[&str] = match alg {
                Algorithm::RS256 | Algorithm::PS256 => &["n", "e"],
                Algorithm::ES256 => &["x", "y"],
                Algorithm::EdDSA => &["x"],
            };
            for name in required {
                let mut bad = good.clone();
                match *name {
                    "n" => bad.n = None,
                    "e" => bad.e = None,
                    "x" => bad.x = None,
                    _ => bad.y = None,
                }
                let err = check_public_jwk(&bad).unwrap_err();
                assert!(err.why.contains(&format!("member {name}")), "{err}");
            }
            let mut other_kid = good.clone();
            other_kid.kid = "not-the-thumbprint".into();
            assert!(check_public_jwk(&other_kid).is_err());
            let mut no_alg = good.clone();
            no_alg.alg = None;
            assert!(check_public_jwk(&no_alg).is_err());
        }
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = PublicJwk {
            kty: "RSA".into(),
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            ..Default::default()
        };
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn every_algorithm_round_trips() {
        for (alg, kty) in [
            (Algorithm::RS256, "RSA"),
            (Algorithm::PS256, "RSA"),
            (Algorithm::ES256, "EC"),
            (Algorithm::EdDSA, "OKP"),
        ] {
            let key = generate(alg, 2048).unwrap();
            assert_eq!(key.jwk.kty, kty);
            assert_eq!(key.jwk.alg.as_deref(), Some(alg.as_str()));
            assert_eq!(key.jwk.kid, thumbprint(&key.jwk));
            assert_eq!(public_jwk(alg, &key.pkcs8_pem).unwrap(), key.jwk);
        }
        assert_eq!(
            generate(Algorithm::RS256, 1024).unwrap_err(),
            KeyError::UnsupportedKeySize(1024)
        );
    }

    #[test]
    fn rsa_sizes() {
        for bits in [3072u32, 4096] {
            let key = generate(Algorithm::RS256, bits).unwrap();
            let n = B64.decode(key.jwk.n.unwrap()).unwrap();
            assert_eq!(n.len() * 8, bits as usize);
        }
    }

    #[test]
    fn corrupted_pem_is_rejected() {
        assert!(matches!(
            public_jwk(Algorithm::RS256, "not a key"),
            Err(KeyError::Malformed("RS256", _))
        ));
        let ec = generate(Algorithm::ES256, 0).unwrap();
        assert!(public_jwk(Algorithm::RS256, &ec.pkcs8_pem).is_err());
    }
}
