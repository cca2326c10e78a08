//! Writes the generated CRD YAML to `crds/yaml/` and to the chart's `crds/` (or to the directory
//! given as the first argument).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = crds::workspace_root();
    let dirs = match std::env::args_os().nth(1) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![root.join("crds/yaml"), root.join("charts/kube-oidc/crds")],
    };
    for dir in dirs {
        std::fs::create_dir_all(&dir)?;
        for (file, body) in crds::crd_yaml_files()? {
            let path = dir.join(file);
            std::fs::write(&path, body)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
