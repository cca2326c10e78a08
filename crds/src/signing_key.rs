//! `SigningKey`: a rotating set of token signing keys.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema, core::Duration};
use serde::{Deserialize, Serialize};

/// A signing key that the operator generates and rotates. Private keys live only in Secrets
/// labelled `kubeoidc.dev/signing-key=<name>`; public keys are published in status and at /jwks.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubeoidc.dev",
    version = "v1alpha1",
    kind = "SigningKey",
    namespaced,
    doc = "Token signing keys that the kube-oidc operator generates and rotates.",
    status = "SigningKeyStatus",
    shortname = "oidcsk",
    category = "kube-oidc",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Algorithm", type_ = "string", json_path = ".spec.algorithm"),
    printcolumn(name = "Active-KID", type_ = "string", json_path = ".status.activeKid"),
    // `date` columns render as an age, and a time in the future as `<invalid>`.
    printcolumn(
        name = "Next-Rotation",
        type_ = "string",
        json_path = ".status.nextRotation"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::key_size_rsa_only())]
pub struct SigningKeySpec {
    /// JWS algorithm of the keys (RFC 7518, RFC 8037).
    #[serde(default)]
    pub algorithm: Algorithm,

    /// RSA modulus length in bits: 2048 (default), 3072 or 4096. Only for RS256 and PS256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = crate::cel::key_size())]
    pub key_size: Option<u32>,

    /// When keys are published, used and retired.
    #[serde(default)]
    #[schemars(extend("default" = {"interval": "720h", "prepublish": "24h", "retain": "48h"}))]
    pub rotation: Rotation,
}

/// The key schedule: every `interval` a new key takes over signing. It is published
/// `prepublish` before that, and the key it replaces stays published for `retain` afterwards.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::prepublish_lt_interval())]
#[x_kube(validation = crate::cel::retain_lt_interval())]
pub struct Rotation {
    /// How long a key signs before the next one takes over.
    #[serde(default = "default_interval")]
    #[schemars(length(max = 64), extend("default" = "720h"))]
    #[x_kube(validation = crate::cel::positive_duration("interval"))]
    pub interval: Duration,

    /// How long a new key is in the JWKS before it signs, so that relying parties that cache the
    /// JWKS know it in time.
    #[serde(default = "default_prepublish")]
    #[schemars(length(max = 64), extend("default" = "24h"))]
    #[x_kube(validation = crate::cel::positive_duration("prepublish"))]
    pub prepublish: Duration,

    /// How long a key stays in the JWKS after it stopped signing; at least the longest token
    /// lifetime, so tokens it signed still verify.
    #[serde(default = "default_retain")]
    #[schemars(length(max = 64), extend("default" = "48h"))]
    #[x_kube(validation = crate::cel::positive_duration("retain"))]
    pub retain: Duration,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            prepublish: default_prepublish(),
            retain: default_retain(),
        }
    }
}

fn hours(h: u64) -> Duration {
    std::time::Duration::from_secs(h * 3600).into()
}

fn default_interval() -> Duration {
    hours(720)
}

fn default_prepublish() -> Duration {
    hours(24)
}

fn default_retain() -> Duration {
    hours(48)
}

/// JWS signing algorithms kube-oidc issues tokens with.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash,
)]
pub enum Algorithm {
    #[default]
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, Self::RS256 | Self::PS256)
    }
}

impl SigningKeySpec {
    /// The effective RSA key size (2048 unless set); None for non-RSA algorithms.
    pub fn rsa_bits(&self) -> Option<u32> {
        self.algorithm
            .is_rsa()
            .then(|| self.key_size.unwrap_or(2048))
    }
}

/// The keys of a SigningKey and where they are in their life.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Current state; `Ready` is True while exactly one key is Active.
    #[serde(default)]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Every key that is published: Next (published, not yet signing), Active (signing) and
    /// Retired (published until retain has passed).
    #[serde(default)]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["kid".into()]))]
    pub keys: Vec<SigningKeyStatusKey>,

    /// kid of the Active key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_kid: Option<String>,

    /// When the next scheduled transition (publish, activate or delete) happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<Time>,

    /// The last `kubeoidc.dev/rotate` annotation value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_rotate: Option<String>,
}

/// One key of a SigningKey.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyStatusKey {
    /// Key ID: the RFC 7638 JWK thumbprint of the public key.
    pub kid: String,
    /// Next, Active or Retired.
    pub state: KeyState,
    /// When the key was generated.
    pub created_at: Time,
    /// When the key started signing (or is scheduled to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<Time>,
    /// When the key stopped signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Time>,
    /// The public key as a JWK (RFC 7517).
    pub public_jwk: PublicJwk,
    /// The Secret holding the private key.
    pub secret_name: String,
}

/// Where a key is in its life.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

/// A public JSON Web Key (RFC 7517 §4, RFC 7518 §6).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicJwk {
    /// Key type: RSA, EC or OKP.
    pub kty: String,
    /// Key ID.
    pub kid: String,
    /// Intended use: sig.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Algorithm the key signs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve of an EC or OKP key (P-256, Ed25519).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or OKP public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}
