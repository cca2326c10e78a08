//! Dynamic client registration metadata (RFC 7591), mapped onto an OidcClient and validated.
//! URLs are checked by form only (no name resolution while fuzzing).
#![no_main]

use std::sync::LazyLock;

use crds::OidcClient;
use kube_oidc_provider::protocol::registration::{self, Policy, Settings};
use libfuzzer_sys::fuzz_target;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
});

fuzz_target!(|data: &[u8]| {
    let Ok(metadata) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let settings = Settings {
        policy: Policy::Open,
        allow_private_urls: true,
        consent: crds::ConsentPolicy::Once,
        quota: 1,
    };
    if let Ok(spec) = RUNTIME.block_on(registration::spec_from_metadata(&settings, &metadata)) {
        let _ = registration::validate(&OidcClient::new("dcr-fuzz", spec));
    }
});
