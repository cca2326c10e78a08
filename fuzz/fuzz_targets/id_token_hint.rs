//! The JWT parser and verifier used for `id_token_hint` (and access tokens at /userinfo).
#![no_main]

use kube_oidc_fuzz::{ISSUER, VIEW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = VIEW
            .verifier
            .verify::<serde_json::Value>(token, ISSUER, true);
    }
});
