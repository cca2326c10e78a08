//! JWS signing with keys parsed once (aws-lc-rs: constant time, and no per-token key parsing),
//! and verification of our own tokens (jsonwebtoken) against the published keys.

use std::collections::HashMap;

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::KeyPair as RsaKeyPair,
    signature::{self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use crds::{Algorithm, PublicJwk};
use serde::{Serialize, de::DeserializeOwned};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("key {kid}: {reason}")]
    BadKey { kid: String, reason: String },
    #[error("signing failed")]
    Sign,
    #[error("claims could not be serialized: {0}")]
    Claims(#[from] serde_json::Error),
}

enum Key {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key that signs tokens, parsed once.
pub struct Signer {
    pub kid: String,
    pub alg: Algorithm,
    key: Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
}

impl Signer {
    pub fn from_pem(alg: Algorithm, kid: &str, pkcs8_pem: &str) -> Result<Self, SigningError> {
        let bad = |reason: String| SigningError::BadKey {
            kid: kid.to_string(),
            reason,
        };
        let der = crds::keys::pkcs8_der(alg, pkcs8_pem).map_err(|e| bad(e.to_string()))?;
        let key = match alg {
            Algorithm::RS256 => Key::Rsa(
                RsaKeyPair::from_pkcs8(&der).map_err(|e| bad(e.to_string()))?,
                &signature::RSA_PKCS1_SHA256,
            ),
            Algorithm::PS256 => Key::Rsa(
                RsaKeyPair::from_pkcs8(&der).map_err(|e| bad(e.to_string()))?,
                &signature::RSA_PSS_SHA256,
            ),
            Algorithm::ES256 => Key::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|e| bad(e.to_string()))?,
            ),
            Algorithm::EdDSA => {
                Key::Ed25519(Ed25519KeyPair::from_pkcs8(&der).map_err(|e| bad(e.to_string()))?)
            }
        };
        Ok(Self {
            kid: kid.to_string(),
            alg,
            key,
            rng: SystemRandom::new(),
        })
    }

    /// Signs `claims` as a compact JWS with this key's `kid`.
    pub fn sign<C: Serialize>(
        &self,
        typ: Option<&str>,
        claims: &C,
    ) -> Result<String, SigningError> {
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            kid: &self.kid,
            typ,
        })?;
        let payload = serde_json::to_vec(claims)?;
        let mut out = String::with_capacity(64 + payload.len() * 4 / 3 + 400);
        B64.encode_string(&header, &mut out);
        out.push('.');
        B64.encode_string(&payload, &mut out);
        let signature = match &self.key {
            Key::Rsa(key, encoding) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(*encoding, &self.rng, out.as_bytes(), &mut sig)
                    .map_err(|_| SigningError::Sign)?;
                sig
            }
            Key::Ecdsa(key) => key
                .sign(&self.rng, out.as_bytes())
                .map_err(|_| SigningError::Sign)?
                .as_ref()
                .to_vec(),
            Key::Ed25519(key) => key.sign(out.as_bytes()).as_ref().to_vec(),
        };
        out.push('.');
        B64.encode_string(&signature, &mut out);
        Ok(out)
    }
}

/// The published public keys, for verifying tokens this provider issued.
#[derive(Clone, Default)]
pub struct Verifier {
    keys: HashMap<String, (jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>,
}

fn jwt_alg(alg: &str) -> Option<jsonwebtoken::Algorithm> {
    Some(match alg {
        "RS256" => jsonwebtoken::Algorithm::RS256,
        "PS256" => jsonwebtoken::Algorithm::PS256,
        "ES256" => jsonwebtoken::Algorithm::ES256,
        "EdDSA" => jsonwebtoken::Algorithm::EdDSA,
        _ => return None,
    })
}

/// The verification key of a public JWK (RSA, EC or OKP).
pub fn decoding_key(jwk: &PublicJwk) -> Option<jsonwebtoken::DecodingKey> {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    match jwk.kty.as_str() {
        "RSA" => jsonwebtoken::DecodingKey::from_rsa_components(&s(&jwk.n), &s(&jwk.e)),
        "EC" => jsonwebtoken::DecodingKey::from_ec_components(&s(&jwk.x), &s(&jwk.y)),
        "OKP" => jsonwebtoken::DecodingKey::from_ed_components(&s(&jwk.x)),
        _ => return None,
    }
    .ok()
}

impl Verifier {
    pub fn new<'a>(jwks: impl IntoIterator<Item = &'a PublicJwk>) -> Self {
        let mut keys = HashMap::new();
        for jwk in jwks {
            let Some(alg) = jwk.alg.as_deref().and_then(jwt_alg) else {
                continue;
            };
            let key = decoding_key(jwk);
            if let Some(key) = key {
                keys.insert(jwk.kid.clone(), (key, alg));
            }
        }
        Self { keys }
    }

    /// Verifies signature, issuer and (unless `allow_expired`) expiry; returns the claims and the
    /// header's `typ`.
    pub fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        allow_expired: bool,
    ) -> Option<(C, Option<String>)> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let (key, alg) = self.keys.get(header.kid.as_deref()?)?;
        if header.alg != *alg {
            return None;
        }
        let mut validation = jsonwebtoken::Validation::new(*alg);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_exp = !allow_expired;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["iss", "exp"]);
        let data = jsonwebtoken::decode::<C>(token, key, &validation).ok()?;
        Some((data.claims, header.typ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for alg in [
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            let key = crds::keys::generate(alg, 2048).unwrap();
            let signer = Signer::from_pem(alg, &key.jwk.kid, &key.pkcs8_pem).unwrap();
            let claims =
                serde_json::json!({"iss": "https://i", "sub": "a", "exp": 4_000_000_000u64});
            let token = signer.sign(Some("at+jwt"), &claims).unwrap();
            let verifier = Verifier::new([&key.jwk]);
            let (got, typ): (serde_json::Value, _) =
                verifier.verify(&token, "https://i", false).unwrap();
            assert_eq!(got["sub"], "a", "{alg:?}");
            assert_eq!(typ.as_deref(), Some("at+jwt"));
            assert!(
                verifier
                    .verify::<serde_json::Value>(&token, "https://other", false)
                    .is_none()
            );
            let mut tampered = token.clone();
            tampered.replace_range(token.len() - 5..token.len() - 4, "A");
            let tampered = if tampered == token {
                token.replace(".", ".A")
            } else {
                tampered
            };
            assert!(
                verifier
                    .verify::<serde_json::Value>(&tampered, "https://i", false)
                    .is_none()
            );
        }
    }
}
