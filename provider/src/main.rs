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
async fn main() -> std::process::ExitCode {
    kube_oidc_provider::install_crypto_provider();
    let args = Args::parse();
    let result = if let Some(Command::HashPassword) = args.command {
        hash_password()
    } else if let Some(Command::Check { dir }) = &args.command {
        let problems = kube_oidc_provider::manifests::check(dir, &args.users_secret);
        for p in &problems {
            println!("{p}");
        }
        if problems.is_empty() {
            println!("{}: ok", dir.display());
            return std::process::ExitCode::SUCCESS;
        }
        return std::process::ExitCode::FAILURE;
    } else {
        kube_oidc_provider::init_tracing(args.log_format);
        kube_oidc_provider::run(args)
            .await
            .map_err(anyhow::Error::from)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: what is wrong, and (in the error's own words) which flag or file to fix.
            eprintln!("kube-oidc-provider: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
