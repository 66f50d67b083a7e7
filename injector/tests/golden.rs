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
    assert!(cases.len() >= 15, "golden cases went missing: {cases:?}");
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
