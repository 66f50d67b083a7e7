//! The Argo CD config management plugin (deploy/argocd/): its definition is
//! what Argo CD reads, and its `generate` script — run as the repo server's
//! sidecar runs it, in the Application's folder with ARGOCD_* set — prints
//! the injected manifests and nothing else, or fails without printing any.
//! (Helm and kustomize are not here; the plain-manifests path runs for real,
//! and each output is checked by kubernetes-validate in .ci/run.)

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The ConfigManagementPlugin inside the ConfigMap.
fn plugin() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("deploy/argocd/cmp-plugin.yaml")).unwrap();
    let map: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(map["kind"], "ConfigMap");
    serde_saphyr::from_str(map["data"]["plugin.yaml"].as_str().unwrap()).unwrap()
}

fn generate(dir: &Path, env: &[(&str, &str)]) -> Output {
    let p = plugin();
    let command: Vec<&str> = p["spec"]["generate"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let args: Vec<&str> = p["spec"]["generate"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_graceful-inject"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(command[0])
        .args(&command[1..])
        .args(&args)
        .current_dir(dir)
        .env("PATH", path)
        .env("ARGOCD_APP_NAME", "shop")
        .env("ARGOCD_APP_NAMESPACE", "shop")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// An Application folder of plain manifests and a graceful-inject.yml.
fn app_folder(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let case = root().join("config/test/original-tcp");
    std::fs::copy(case.join("input.yaml"), dir.path().join("deployment.yaml")).unwrap();
    std::fs::copy(case.join(config), dir.path().join("graceful-inject.yml")).unwrap();
    dir
}

#[test]
fn the_definition_is_a_sidecar_plugin_named_graceful_inject() {
    let p = plugin();
    assert_eq!(p["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(p["kind"], "ConfigManagementPlugin");
    assert_eq!(p["metadata"]["name"], "graceful-inject");
    assert_eq!(p["spec"]["discover"]["fileName"], "./graceful-inject.yml");
}

#[test]
fn generate_prints_the_injected_manifests() {
    let dir = app_folder("config.yml");
    let out = generate(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let expected =
        std::fs::read_to_string(root().join("config/test/original-tcp/expected.yaml")).unwrap();
    // The same manifests as the golden case, after the separator the script
    // puts before each file.
    assert_eq!(text.trim_start_matches("---\n"), expected);
}

#[test]
fn a_failure_fails_the_generation_and_prints_no_manifest() {
    let dir = app_folder("config.yml");
    std::fs::write(
        dir.path().join("graceful-inject.yml"),
        "deployment: [unclosed\n",
    )
    .unwrap();
    let out = generate(dir.path(), &[]);
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("graceful-inject.yml:"));
    // A config named elsewhere through the Application's env.
    let out = generate(
        dir.path(),
        &[("ARGOCD_ENV_GRACEFUL_INJECT_CONFIG", "missing.yml")],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
