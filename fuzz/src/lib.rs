//! What the fuzz targets share: the view of `examples/local` (its clients, scope, users and a
//! key generated once), as the standalone provider serves it.

use std::sync::LazyLock;

use kube_oidc_provider::config::View;

pub const ISSUER: &str = "http://127.0.0.1:8080";

pub static VIEW: LazyLock<View> = LazyLock::new(|| {
    kube_oidc_provider::install_crypto_provider();
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/local");
    kube_oidc_provider::manifests::load(&folder, "kube-oidc-users")
        .expect("examples/local loads")
        .view(ISSUER, Vec::new(), false)
});
