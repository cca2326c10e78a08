//! The connection to an LDAP directory an `ldap` IdentityConnector names: over TLS only (LDAPS,
//! or StartTLS), checked against the connector's CA or the system's, bound as its service
//! account. The operator's test bind and the provider's sign-ins both start here.

use std::{sync::Arc, time::Duration};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};

use crate::connector::LdapConnector;

/// The longest a connection, or one operation on it, may take.
pub const LDAP_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS settings for a directory: its CA's certificates (PEM) when the connector has a
/// `caRef`; `None`: the system's (ldap3's default).
pub fn tls_config(ca_pem: Option<&str>) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let Some(pem) = ca_pem else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| format!("caRef: {e}"))?)
            .map_err(|e| format!("caRef: {e}"))?;
    }
    if roots.is_empty() {
        return Err("caRef: no PEM certificate in the Secret's key".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

/// A connection to the directory, bound as the service account. The error says what failed
/// (connection, TLS, or the bind).
pub async fn connect(
    settings: &LdapConnector,
    bind_password: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Ldap, String> {
    let mut conn_settings = LdapConnSettings::new()
        .set_conn_timeout(LDAP_TIMEOUT)
        .set_starttls(settings.start_tls);
    if let Some(tls) = tls {
        conn_settings = conn_settings.set_config(tls);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &settings.url)
        .await
        .map_err(|e| format!("{} cannot be reached: {e}", settings.url))?;
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection ended");
        }
    });
    ldap.with_timeout(LDAP_TIMEOUT)
        .simple_bind(&settings.bind_dn, bind_password)
        .await
        .and_then(ldap3::LdapResult::success)
        .map_err(|e| format!("the bind as {} was refused: {e}", settings.bind_dn))?;
    Ok(ldap)
}

/// The operator's check of a connector: the service account binds, and can read the base of
/// the user search. What it found, or what failed.
pub async fn test_bind(
    settings: &LdapConnector,
    bind_password: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<String, String> {
    let mut ldap = connect(settings, bind_password, tls).await?;
    let base = &settings.user_search.base_dn;
    let found = ldap
        .with_timeout(LDAP_TIMEOUT)
        .search(base, ldap3::Scope::Base, "(objectClass=*)", vec!["1.1"])
        .await
        .and_then(ldap3::SearchResult::success)
        .map_err(|e| format!("{} cannot read {base}: {e}", settings.bind_dn));
    let _ = ldap.unbind().await;
    match found?.0.len() {
        0 => Err(format!("{base} is not in the directory")),
        _ => Ok(format!(
            "bound to {} as {} and read {base}",
            settings.url, settings.bind_dn
        )),
    }
}
