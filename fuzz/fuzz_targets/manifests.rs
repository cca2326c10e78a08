//! The manifests loader: one file's multi-document YAML, checked as `kube-oidc-provider check`
//! and the standalone mode check it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kube_oidc_provider::manifests::check_text("fuzz.yaml", text, "kube-oidc-users");
    }
});
