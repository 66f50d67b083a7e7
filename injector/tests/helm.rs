//! The Helm post-renderer contract, tested the way Helm calls it (no helm
//! binary here): Helm 4 runs the plugin's `platformCommand` with
//! `HELM_PLUGIN_DIR` set and the `--post-renderer-args` as arguments; Helm 3
//! runs the script itself. The rendered manifests go in on stdin; the result
//! must be the only thing on stdout; a failure must exit non-zero with its
//! message on stderr and nothing on stdout.

#[path = "../../tests/support/piped.rs"]
mod piped;

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

fn plugin_dir() -> PathBuf {
    root().join("deploy/helm-plugin/graceful-inject")
}

/// Runs the plugin's command as Helm does, with `args` after it.
fn post_render(stdin: &[u8], args: &[&str], env: &[(&str, &str)]) -> Output {
    // Helm expands ${HELM_PLUGIN_DIR} in platformCommand.
    let manifest = std::fs::read_to_string(plugin_dir().join("plugin.yaml")).unwrap();
    let command = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("- command: "))
        .expect("plugin.yaml names a command")
        .replace("${HELM_PLUGIN_DIR}", plugin_dir().to_str().unwrap());
    piped::with_stdin(
        Command::new(command)
            .args(args)
            .env("HELM_PLUGIN_DIR", plugin_dir())
            .env("GRACEFUL_INJECT", env!("CARGO_BIN_EXE_graceful-inject"))
            .envs(env.iter().copied()),
        stdin,
    )
}

fn case(name: &str, file: &str) -> String {
    root()
        .join("config/test")
        .join(name)
        .join(file)
        .display()
        .to_string()
}

#[test]
fn the_plugin_manifest_is_a_helm_4_post_renderer() {
    let text = std::fs::read_to_string(plugin_dir().join("plugin.yaml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(doc["apiVersion"], "v1");
    assert_eq!(doc["type"], "postrenderer/v1");
    assert_eq!(doc["runtime"], "subprocess");
    assert_eq!(doc["name"], "graceful-inject");
    assert!(doc["version"].is_string());
    assert_eq!(
        doc["runtimeConfig"]["platformCommand"][0]["command"],
        "${HELM_PLUGIN_DIR}/postrender.sh"
    );
}

#[test]
fn manifests_in_the_result_out_and_nothing_else_on_stdout() {
    let input = std::fs::read(case("seed-tcp", "input.yaml")).unwrap();
    let expected = std::fs::read_to_string(case("seed-tcp", "expected.yaml")).unwrap();
    // --post-renderer-args cfg.yml
    let out = post_render(&input, &[&case("seed-tcp", "config.yml")], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    // The config from the environment instead.
    let config = case("seed-tcp", "config.yml");
    let out = post_render(&input, &[], &[("GRACEFUL_INJECT_CONFIG", config.as_str())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn a_failure_exits_non_zero_with_its_message_on_stderr_only() {
    let input = std::fs::read(case("seed-tcp", "input.yaml")).unwrap();
    for (args, want) in [
        (vec![], "no config"),
        (vec!["/nonexistent/cfg.yml"], "/nonexistent/cfg.yml"),
    ] {
        let out = post_render(&input, &args, &[]);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: stdout must stay empty");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Manifests that cannot be read: the same.
    let out = post_render(b"a: [unclosed\n", &[&case("seed-tcp", "config.yml")], &[]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":1:"),
        "the place (line:col) of the error: {err}"
    );
}

/// Helm 4 does not show a plugin's stderr: with `GRACEFUL_INJECT_LOG` set,
/// every message (the summary, or why it failed) is also kept in that file.
#[test]
fn the_messages_are_kept_where_helm_4_does_not_show_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("post-render.log");
    let log_text = log.to_str().unwrap();
    let input = std::fs::read(case("seed-tcp", "input.yaml")).unwrap();
    let config = case("seed-tcp", "config.yml");
    let out = post_render(&input, &[&config], &[("GRACEFUL_INJECT_LOG", log_text)]);
    assert!(out.status.success());
    let kept = std::fs::read_to_string(&log).unwrap();
    assert!(!kept.is_empty());
    assert_eq!(
        kept,
        String::from_utf8_lossy(&out.stderr),
        "the same messages"
    );
    for (args, want) in [
        (vec!["/nonexistent/cfg.yml"], "/nonexistent/cfg.yml"),
        (vec![], "no config"),
    ] {
        std::fs::remove_file(&log).unwrap();
        let out = post_render(&input, &args, &[("GRACEFUL_INJECT_LOG", log_text)]);
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let kept = std::fs::read_to_string(&log).unwrap();
        assert!(kept.contains(want), "{args:?}: {kept}");
    }
}
