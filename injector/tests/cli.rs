//! The command line as users and CI scripts meet it: in place, stdin/stdout,
//! --check, --diff, and bad input that must lose nothing.

#[path = "../../tests/support/piped.rs"]
mod piped;
#[path = "../../tests/support/skip.rs"]
mod skip;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

const MANIFEST: &str = "# keep me\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: example/web:1\n      - name: istio-proxy\n        image: docker.io/istio/proxyv2:1.20.0\n";
const CONFIG: &str = "deployment:\n  web:\n    istio-proxy: {tcp: 8080}\n";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn inject(args: &[&str], stdin: Option<&[u8]>) -> Run {
    inject_as(None, args, stdin)
}

/// Runs the injector, optionally as another user (setpriv), feeding stdin.
fn inject_as(user: Option<&str>, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let bin = env!("CARGO_BIN_EXE_graceful-inject");
    let mut cmd = match user {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
                bin,
            ]);
            c
        }
        None => Command::new(bin),
    };
    let out = piped::with_stdin(cmd.args(args), stdin.unwrap_or_default());
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn setup(manifest: &[u8]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("app.yaml");
    let config = dir.path().join("cfg.yml");
    fs::write(&source, manifest).unwrap();
    fs::write(&config, CONFIG).unwrap();
    (dir, source, config)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Nothing but the files we put there: no temporary file left behind.
fn assert_no_leftovers(dir: &Path) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["app.yaml", "cfg.yml"], "left behind: {names:?}");
}

#[test]
fn rewrites_in_place_atomically_keeping_the_mode() {
    let (dir, source, config) = setup(MANIFEST.as_bytes());
    fs::set_permissions(&source, fs::Permissions::from_mode(0o640)).unwrap();
    let r = inject(&[s(&source), s(&config)], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = fs::read_to_string(&source).unwrap();
    assert!(
        text.starts_with("# keep me\n") && text.contains("- --port=8080"),
        "{text}"
    );
    assert_eq!(
        fs::metadata(&source).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(
        r.stderr.contains("changed Deployment/web: istio-proxy"),
        "{}",
        r.stderr
    );
    assert_no_leftovers(dir.path());
    // In place again: nothing to change, the file is not rewritten.
    let before = fs::metadata(&source).unwrap().modified().unwrap();
    let r = inject(&[s(&source), s(&config)], None);
    assert_eq!(r.code, 0);
    assert_eq!(fs::metadata(&source).unwrap().modified().unwrap(), before);
}

#[test]
fn stdin_to_stdout_for_pipes_and_helm_post_renderer() {
    let (_dir, _source, config) = setup(MANIFEST.as_bytes());
    let r = inject(&["-", s(&config)], Some(MANIFEST.as_bytes()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("graceful-wait-install"), "{}", r.stdout);
    let r2 = inject(&["-q", "-", s(&config), "-"], Some(r.stdout.as_bytes()));
    assert_eq!(
        (r2.code, r2.stdout.as_str(), r2.stderr.as_str()),
        (0, r.stdout.as_str(), "")
    );
}

#[test]
fn check_and_diff_write_nothing() {
    let (dir, source, config) = setup(MANIFEST.as_bytes());
    let r = inject(&["--check", s(&source), s(&config)], None);
    assert_eq!(
        r.code, 1,
        "--check must report the pending change: {}",
        r.stderr
    );
    let r = inject(&["--diff", s(&source), s(&config)], None);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("+        lifecycle:") && r.stdout.contains("--- a/"),
        "{}",
        r.stdout
    );
    assert_eq!(fs::read_to_string(&source).unwrap(), MANIFEST);
    let out = dir.path().join("out.yaml");
    assert_eq!(inject(&[s(&source), s(&config), s(&out)], None).code, 0);
    assert_eq!(
        inject(&["--check", s(&out), s(&config)], None).code,
        0,
        "its own output needs no change"
    );
}

#[test]
fn bad_input_is_a_clear_error_and_loses_nothing() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: x\nspec: {}\n",
            "app.yaml:",
        ),
        (
            b"just a scalar\n",
            "app.yaml:1:1: this document is not a Kubernetes object",
        ),
        (
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: \xff\xfe\n",
            "app.yaml:4:9: not UTF-8",
        ),
        (
            b"kind: Pod\nkind: Service\n",
            "app.yaml:2:1: duplicate key 'kind'",
        ),
        // An unclosed construct: where parsing failed, and where it was opened.
        (
            b"kind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: a\n    image: [unclosed\n  - name: b\n",
            "(inside the [ opened at 7:12, which is not closed before this point)",
        ),
        (
            b"kind: Pod\nmetadata: *nowhere\n",
            "app.yaml:2:11: an alias (*) names an anchor (&) that is not defined before it",
        ),
    ];
    for (input, want) in cases {
        let (dir, source, config) = setup(input);
        let r = inject(&[s(&source), s(&config)], None);
        assert_eq!(r.code, 2, "{want}: {}", r.stderr);
        assert!(r.stderr.contains(want), "want {want:?} in: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "one clear line: {}", r.stderr);
        assert_eq!(&fs::read(&source).unwrap(), input, "the input changed");
        assert_no_leftovers(dir.path());
    }
}

#[test]
fn a_config_error_stops_before_any_manifest_is_touched() {
    let (dir, source, config) = setup(MANIFEST.as_bytes());
    fs::write(&config, "deployment:\n  web:\n    istio-proxy: {tcp: 0}\n").unwrap();
    let r = inject(&[s(&source), s(&config)], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cfg.yml:3:24: '0' is not a port"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read_to_string(&source).unwrap(), MANIFEST);
    assert_no_leftovers(dir.path());
}

#[test]
fn a_read_only_output_folder_is_an_error_and_leaves_no_temp_file() {
    let (dir, source, config) = setup(MANIFEST.as_bytes());
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&source, fs::Permissions::from_mode(0o644)).unwrap();
    let out = ro.join("out.yaml");
    // Root ignores folder permissions: run as nobody then.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let r = inject_as(
        root.then_some("65534"),
        &[s(&source), s(&config), s(&out)],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("out.yaml: cannot create a temporary file beside it")
            && r.stderr.contains("unchanged"),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs::read_dir(&ro).unwrap().count(),
        0,
        "a temporary file was left behind"
    );
    assert_eq!(fs::read_to_string(&source).unwrap(), MANIFEST);
}

#[test]
fn in_place_on_a_symlink_writes_through_and_keeps_the_link() {
    let (dir, target, config) = setup(MANIFEST.as_bytes());
    let link = dir.path().join("link.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = inject(&[s(&link), s(&config)], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by a file"
    );
    let text = fs::read_to_string(&target).unwrap();
    assert!(
        text.contains("--port=8080"),
        "the target was not updated: {text}"
    );
    // Nothing but the two names and the config are left in the folder.
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["app.yaml", "cfg.yml", "link.yaml"]);
}

#[test]
fn as_root_the_owner_of_a_rewritten_file_is_kept() {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip::skipped(
            "as_root_the_owner_of_a_rewritten_file_is_kept",
            "needs root",
        );
        return;
    }
    let (_dir, source, config) = setup(MANIFEST.as_bytes());
    std::os::unix::fs::chown(&source, Some(65534), Some(65534)).unwrap();
    let r = inject(&[s(&source), s(&config)], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = fs::metadata(&source).unwrap();
    assert!(fs::read_to_string(&source).unwrap().contains("--port=8080"));
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
}

/// The stub is opt-in and refused where Istio would add no sidecar: a pod
/// labelled `sidecar.istio.io/inject: "false"`, or a proxy whose value is a
/// command kept as written (a stub carries a graceful-wait call).
#[test]
fn the_istio_stub_is_opt_in_and_only_where_a_sidecar_will_come() {
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: example/web:1\n";
    let (dir, source, config) = setup(manifest.as_bytes());
    fs::write(&config, "pod:\n  web:\n    istio-proxy: {tcp: 8080}\n").unwrap();
    // Without the flag or the setting: not found, nothing written.
    let r = inject(&[s(&source), s(&config), "-"], None);
    assert_eq!((r.code, r.stdout.as_str()), (0, manifest), "{}", r.stderr);
    assert!(
        r.stderr.contains("istio-proxy: container not found"),
        "{}",
        r.stderr
    );
    // With it: a stub.
    let r = inject(&["--istio-stub", s(&source), s(&config), "-"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("  - name: istio-proxy\n    image: auto\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("--debug-port=15020"), "{}", r.stdout);
    // A label refusing injection: no stub.
    let labelled = manifest.replace(
        "  name: web\n",
        "  name: web\n  labels:\n    sidecar.istio.io/inject: \"false\"\n",
    );
    fs::write(&source, &labelled).unwrap();
    let r = inject(&["--istio-stub", s(&source), s(&config), "-"], None);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, labelled.as_str()),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("the pod's label says sidecar.istio.io/inject"),
        "{}",
        r.stderr
    );
    // A command kept as written: no stub.
    fs::write(&source, manifest).unwrap();
    fs::write(&config, "graceful-wait:\n  missing-proxy: stub\npod:\n  web:\n    istio-proxy: [\"sleep\", \"5\"]\n").unwrap();
    let r = inject(&[s(&source), s(&config), "-"], None);
    assert_eq!((r.code, r.stdout.as_str()), (0, manifest), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no stub written: a stub carries a graceful-wait call"),
        "{}",
        r.stderr
    );
    // A bad setting is a config error with its place.
    fs::write(&config, "graceful-wait:\n  missing-proxy: yes\n").unwrap();
    let r = inject(&[s(&source), s(&config), "-"], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("cfg.yml:2:18: missing-proxy: 'yes' is neither skip nor stub"),
        "{}",
        r.stderr
    );
    drop(dir);
}

/// JSON whose keys are sorted (`kubectl get -o json`, a webhook's patched
/// pod) and that already holds the hook, the mount, the volume and the
/// installer is left as it is: the order of keys means nothing.
#[test]
fn a_hooked_pod_with_sorted_keys_is_not_rewritten() {
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [{"name": "web", "image": "w"}, {"name": "istio-proxy", "image": "p"}]}}"#;
    let (dir, source, config) = setup(pod.as_bytes());
    fs::write(&config, "pod:\n  web:\n    istio-proxy: {tcp: 8080}\n").unwrap();
    let first = inject(&[s(&source), s(&config), "-"], None);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // The same pod as serde_json writes it: every mapping's keys sorted.
    let sorted: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let sorted = serde_json::to_string(&sorted).unwrap();
    fs::write(&source, &sorted).unwrap();
    let again = inject(&["--check", s(&source), s(&config)], None);
    assert_eq!(
        again.code, 0,
        "the sorted pod would be rewritten: {}",
        again.stderr
    );
    drop(dir);
}

/// Every exit status `--help` documents (graceful_inject::error::STATUSES)
/// is produced by a run that should produce it, and every kind of error
/// a user can cause ends in its status, with the input untouched.
#[test]
fn every_documented_exit_status_is_what_such_a_run_exits_with() {
    use graceful_inject::error::{CHANGES, ERROR, OK, STATUSES};
    let (dir, source, config) = setup(MANIFEST.as_bytes());
    let missing = dir.path().join("absent.yaml");
    let bad_config = dir.path().join("bad.yml");
    let bad_yaml = dir.path().join("bad.yaml");
    let cases: Vec<(&str, Vec<String>, i32)> = vec![
        (
            "--check, nothing to change",
            vec!["--check".into(), "-".into(), s(&config).into()],
            OK,
        ),
        (
            "--check, changes",
            vec!["--check".into(), s(&source).into(), s(&config).into()],
            CHANGES,
        ),
        (
            "an input error",
            vec![s(&bad_yaml).into(), s(&config).into()],
            ERROR,
        ),
        (
            "a config error",
            vec![s(&source).into(), s(&bad_config).into()],
            ERROR,
        ),
        (
            "a read error",
            vec![s(&missing).into(), s(&config).into()],
            ERROR,
        ),
        ("bad arguments", vec!["--no-such-flag".into()], ERROR),
        (
            "done",
            vec![
                s(&source).into(),
                s(&config).into(),
                dir.path().join("out.yaml").to_str().unwrap().into(),
            ],
            OK,
        ),
    ];
    fs::write(
        &bad_config,
        "deployment:\n  web:\n    istio-proxy: {tcp: 0}\n",
    )
    .unwrap();
    fs::write(&bad_yaml, "kind: [unclosed\n").unwrap();
    for (status, _) in STATUSES {
        assert!(
            cases.iter().any(|(_, _, want)| want == status),
            "exit status {status} is documented but no case here produces it"
        );
    }
    for (what, args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = inject(
            &args,
            Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
        );
        assert_eq!(run.code, *want, "{what}: {}", run.stderr);
        if *want == ERROR {
            assert!(run.stderr.contains("error"), "{what}: {}", run.stderr);
        }
    }
    assert_eq!(
        fs::read_to_string(&source).unwrap(),
        MANIFEST,
        "the input changed"
    );
}
