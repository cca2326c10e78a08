//! `kube-oidc-provider`: serves OpenID Connect from watched resources or a folder of manifests.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Serves the OpenID Connect endpoints for the clients, scopes and signing keys defined as
/// kube-oidc resources, watched in a cluster or read from a folder of manifests.
#[derive(Parser, Debug)]
#[command(name = "kube-oidc-provider", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Issuer URL; defaults to `http://<listen>`.
    #[arg(long, env = "KUBE_OIDC_ISSUER")]
    issuer: Option<String>,

    /// Address the OpenID Connect endpoints listen on.
    #[arg(long, env = "KUBE_OIDC_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,

    /// Read OidcClient, OidcScope, SigningKey and Secret manifests from this folder instead of a
    /// cluster (standalone mode).
    #[arg(long, env = "KUBE_OIDC_MANIFESTS")]
    manifests: Option<PathBuf>,

    /// Where codes, refresh tokens and sessions live: `memory` (one replica) or
    /// `redis://HOST:PORT` (many).
    #[arg(long, env = "KUBE_OIDC_STORE", default_value = "memory")]
    store: String,

    /// The provider's namespace: SigningKeys, OidcScopes and the users Secret.
    #[arg(long, env = "KUBE_OIDC_NAMESPACE", default_value = "kube-oidc")]
    namespace: String,

    /// Namespaces whose OidcClients are served: a comma-separated list, or `*` for all.
    #[arg(
        long,
        env = "KUBE_OIDC_CLIENT_NAMESPACES",
        default_value = "*",
        value_delimiter = ','
    )]
    client_namespaces: Vec<String>,

    /// The Secret (key `users.yaml`) that holds the users directory.
    #[arg(
        long,
        env = "KUBE_OIDC_USERS_SECRET",
        default_value = "kube-oidc-users"
    )]
    users_secret: String,

    /// TLS certificate (PEM) to serve https.
    #[arg(long, env = "KUBE_OIDC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) to serve https.
    #[arg(long, env = "KUBE_OIDC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Address of /metrics.
    #[arg(long, env = "KUBE_OIDC_METRICS_LISTEN")]
    metrics_listen: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read a password on stdin and print its argon2id PHC string for the users file.
    HashPassword,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::HashPassword) => anyhow::bail!("hash-password is not implemented yet"),
        None => {
            use clap::CommandFactory;
            Args::command().print_help()?;
            println!();
            eprintln!(
                "kube-oidc-provider: serving is not implemented yet (manifests: {:?}, listen {}, store {}, namespace {}, client namespaces {:?}, users secret {})",
                args.manifests,
                args.listen,
                args.store,
                args.namespace,
                args.client_namespaces,
                args.users_secret,
            );
            Ok(())
        }
    }
}
