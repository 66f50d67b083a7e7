//! Golden cases in config/test/<case>/: input.yaml, config.yml, optional
//! `args` (extra flags, one line), expected.yaml and summary.txt. Each case
//! runs the real binary; the output and the summary must match, and running
//! it again on its own output must change nothing.
//!
//! To (re)write the expected files after a deliberate change:
//! `GOLDEN_BLESS=1 cargo test -p graceful-inject --test golden`, then review
//! the diff of config/test/ before committing it.

use std::{fs, path::Path, process::Command};

fn inject(args: &[&str], input: &Path, config: &Path, output: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_graceful-inject"))
        .args(args)
        .arg(input)
        .arg(config)
        .arg(output)
        .output()
        .expect("run graceful-inject");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/test");
    let bless = std::env::var_os("GOLDEN_BLESS").is_some();
    let tmp = tempfile::tempdir().unwrap();
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    // Every case, whole: a case that went missing, or lost one of its files,
    // fails here rather than passing as one test fewer. Change the count
    // when you add or remove a case.
    assert_eq!(cases.len(), 40, "golden cases added or gone: {cases:?}");
    for case in &cases {
        for file in ["input.yaml", "config.yml", "expected.yaml", "summary.txt"] {
            assert!(case.join(file).is_file(), "{}: no {file}", case.display());
        }
    }
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let extra = fs::read_to_string(case.join("args")).unwrap_or_default();
        let args: Vec<&str> = extra.split_whitespace().collect();
        let out = tmp.path().join(format!("{name}.yaml"));
        let (code, summary) = inject(
            &args,
            &case.join("input.yaml"),
            &case.join("config.yml"),
            &out,
        );
        assert_eq!(code, 0, "{name}: {summary}");
        let got = fs::read_to_string(&out).unwrap();
        if bless {
            fs::write(case.join("expected.yaml"), &got).unwrap();
            fs::write(case.join("summary.txt"), &summary).unwrap();
        }
        let want = fs::read_to_string(case.join("expected.yaml")).unwrap_or_default();
        // JSON in gives JSON out.
        let input = fs::read_to_string(case.join("input.yaml")).unwrap();
        if serde_json::from_str::<serde_json::Value>(&input).is_ok() {
            assert!(
                serde_json::from_str::<serde_json::Value>(&got).is_ok(),
                "{name}: the input is JSON, the output is not"
            );
        }
        if got != want {
            failures.push(format!(
                "{name}: output differs from expected.yaml:\n{}",
                diff(&want, &got)
            ));
        }
        let want_summary = fs::read_to_string(case.join("summary.txt")).unwrap_or_default();
        if summary != want_summary {
            failures.push(format!(
                "{name}: summary differs:\n{}",
                diff(&want_summary, &summary)
            ));
        }
        // Idempotent: its own output goes through unchanged.
        let again = tmp.path().join(format!("{name}.again.yaml"));
        let (code, _) = inject(&args, &out, &case.join("config.yml"), &again);
        assert_eq!(code, 0, "{name}: second run failed");
        if fs::read_to_string(&again).unwrap() != got {
            failures.push(format!("{name}: a second run changed the output"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn diff(a: &str, b: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .header("expected", "got")
        .to_string()
}

/// `git diff input expected` of every case touches nothing but hooks, the
/// volume, mounts and the init container (and a `command` the config asks to
/// wrap): each line the injector removed lies inside an existing `preStop` it
/// replaced or a `command` it wrapped, or is an empty `initContainers: []` /
/// `volumes: []` / `volumeMounts: []` / `lifecycle: {}` it filled. No
/// untouched line is reformatted.
#[test]
fn diffs_touch_only_hooks_volumes_mounts_and_init_containers() {
    use graceful_inject::yaml::{for_each_document, tolerant, Node};
    fn allowed(node: &Node, out: &mut Vec<(usize, usize)>) {
        for (k, v) in node.as_map().unwrap_or_default() {
            match k.as_str() {
                Some("preStop" | "command") => out.push((k.start, v.end)),
                // A flow collection of these gains an item or entry inside its line.
                Some("initContainers" | "volumes" | "volumeMounts" | "lifecycle") if v.flow => {
                    out.push((k.start, v.end))
                }
                _ => {}
            }
            allowed(v, out);
        }
        for i in node.as_seq().unwrap_or_default() {
            allowed(i, out);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/test");
    let mut checked = 0;
    for case in fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()) {
        let input = fs::read_to_string(case.join("input.yaml")).unwrap();
        let expected = fs::read_to_string(case.join("expected.yaml")).unwrap();
        let mut ranges = Vec::new();
        for_each_document(&tolerant(&input), |d| {
            if let Some(r) = d.root {
                allowed(&r, &mut ranges);
            }
            Ok(())
        })
        .unwrap();
        let new_lines: Vec<&str> = expected.split_inclusive('\n').collect();
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(input.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        for op in similar::TextDiff::from_lines(&input, &expected).ops() {
            if let similar::DiffOp::Delete {
                old_index, old_len, ..
            }
            | similar::DiffOp::Replace {
                old_index, old_len, ..
            } = *op
            {
                // A flow entry appended to a line (`"image": "p", "lifecycle": …`
                // in JSON) leaves the old text as it was.
                if let similar::DiffOp::Replace {
                    old_len: 1,
                    new_index,
                    ..
                } = *op
                {
                    let old = input.split_inclusive('\n').nth(old_index).unwrap_or("");
                    let old = old.trim_end_matches(['\r', '\n']);
                    if new_lines[new_index].starts_with(&format!("{old}, ")) {
                        checked += 1;
                        continue;
                    }
                }
                for line in old_index..old_index + old_len {
                    let (a, b) = (
                        line_starts[line],
                        line_starts.get(line + 1).copied().unwrap_or(input.len()),
                    );
                    assert!(
                        ranges.iter().any(|&(s, e)| a < e && s < b),
                        "{}: line {} was changed but is no hook, volume, mount or init container: {:?}",
                        case.display(),
                        line + 1,
                        &input[a..b]
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no case replaces anything: the check would prove nothing"
    );
}

/// No container but the installer can write the binary's volume: every other
/// mount of it is read-only, in every golden output (the wrapped app writes
/// its done marker on a volume of its own).
#[test]
fn the_binary_volume_is_read_only_outside_the_installer() {
    use graceful_inject::yaml::{for_each_document, tolerant, Node};
    fn mounts<'n, 'a>(node: &'n Node<'a>, out: &mut Vec<&'n Node<'a>>) {
        for (k, v) in node.as_map().unwrap_or_default() {
            if k.as_str() == Some("volumeMounts") {
                out.extend(v.as_seq().unwrap_or_default());
            }
            mounts(v, out);
        }
        for i in node.as_seq().unwrap_or_default() {
            mounts(i, out);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/test");
    let mut checked = 0;
    for case in fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()) {
        let expected = fs::read_to_string(case.join("expected.yaml")).unwrap();
        for_each_document(&tolerant(&expected), |d| {
            let Some(r) = d.root else { return Ok(()) };
            let mut found = Vec::new();
            mounts(&r, &mut found);
            for m in found {
                let path = m.get("mountPath").and_then(Node::as_str).unwrap_or("");
                let name = m.get("name").and_then(Node::as_str).unwrap_or("");
                if name.starts_with("graceful-wait")
                    && !name.ends_with("-done")
                    && path != "/install"
                {
                    assert_eq!(
                        m.get("readOnly").and_then(Node::as_str),
                        Some("true"),
                        "{}: a writable mount of the binary's volume at {path}",
                        case.display()
                    );
                    checked += 1;
                }
            }
            Ok(())
        })
        .unwrap();
    }
    assert!(checked > 10, "only {checked} mounts checked");
}
