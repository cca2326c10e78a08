//! The token request parser (`/token`'s form).
#![no_main]

use kube_oidc_provider::protocol::{params::parse_params, token::TokenRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = parse_params(data) {
        let _ = TokenRequest::parse(&params);
    }
});
