//! The authorization request parser and validator (`/authorize`'s query or form).
#![no_main]

use kube_oidc_fuzz::VIEW;
use kube_oidc_provider::protocol::{authorize, params::parse_params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = parse_params(data) {
        let _ = authorize::validate(&VIEW, &params);
    }
});
