//! `kube-oidc-provider`: serves OpenID Connect from watched resources or a folder of manifests.

use clap::Parser;
use kube_oidc_provider::{Args, Command, users};

fn hash_password() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "no password on stdin");
    println!(
        "{}",
        users::hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kube_oidc_provider::install_crypto_provider();
    let args = Args::parse();
    if let Some(Command::HashPassword) = args.command {
        return hash_password();
    }
    kube_oidc_provider::init_tracing(args.log_format);
    Ok(kube_oidc_provider::run(args).await?)
}
