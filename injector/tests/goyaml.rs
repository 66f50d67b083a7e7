//! go-yaml is the oracle: kubectl reads manifests with go-yaml v2
//! (sigs.k8s.io/yaml), and what it reads, users apply. Over the golden
//! cases, the corpus and variants of them made the way people and tools edit
//! manifests (indentation, quoting, continuation lines, comments, tabs, CRLF,
//! document markers, flow brackets), with a fixed seed: **where go-yaml reads
//! a stream, graceful-inject's reader reads the same values**, or refuses
//! one of its documented forms by name (a duplicate key). Where graceful-inject
//! reads what go-yaml refuses, the count is printed (docs/injector.md's table
//! lists the widenings).
//!
//! The Go side (`goyaml/read.go`) is built offline in GOPATH mode against
//! Debian's golang-gopkg-yaml.v2-dev, as the Istio template test's renderer is.

#[path = "../../tests/support/skip.rs"]
mod skip;

use graceful_inject::fuzzing::go_yaml_view;
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

const GOPATH: &str = "/usr/share/gocode";

/// The Go reader, built into `dir`; None (and a skip said) without Go or
/// go-yaml v2.
fn go_reader(dir: &Path) -> Option<PathBuf> {
    let have_go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_go || !Path::new(GOPATH).join("src/gopkg.in/yaml.v2").is_dir() {
        skip::skipped(
            "goyaml",
            "needs go and golang-gopkg-yaml.v2-dev; tests/run installs them as root",
        );
        return None;
    }
    let bin = dir.join("read");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goyaml/read.go");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(&source)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", dir.join("cache"))
        .output()
        .expect("go runs");
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(bin)
}

fn go_view(reader: &Path, src: &str) -> Vec<String> {
    let mut child = Command::new(reader)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = src.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A small deterministic generator (xorshift): the same variants every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// One edit of the kind people and tools make, somewhere in `src`.
fn mutate(src: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return src.to_string();
    }
    let i = rng.below(lines.len());
    let indent = lines[i].len() - lines[i].trim_start().len();
    let pad = |n: usize| " ".repeat(n);
    match rng.below(9) {
        // Indent a line and the lines under it by two more.
        0 => {
            let end = (i + 1..lines.len())
                .find(|&j| {
                    let l = &lines[j];
                    !l.trim().is_empty() && l.len() - l.trim_start().len() <= indent
                })
                .unwrap_or(lines.len());
            for l in &mut lines[i..end] {
                l.insert_str(0, "  ");
            }
        }
        // Quote a plain value, single or double.
        1 | 2 => {
            if let Some((key, value)) = lines[i].split_once(": ") {
                let v = value.trim();
                if !v.is_empty()
                    && !v.starts_with(['\'', '"', '{', '[', '|', '>', '&', '*', '#'])
                    && !v.contains(['\'', '"', '#'])
                {
                    let q = if rng.below(2) == 0 { '\'' } else { '"' };
                    lines[i] = format!("{key}: {q}{v}{q}");
                }
            }
        }
        // A quoted value broken onto a continuation line, at the key's
        // indentation, below it, or deeper.
        3 => {
            if let Some((key, value)) = lines[i].split_once(": ") {
                let v = value.trim();
                if !v.is_empty()
                    && !v.starts_with(['\'', '"', '{', '[', '|', '>', '&', '*', '#', '-'])
                    && !v.contains(['\'', '"', '#', ':'])
                {
                    let at = rng.below(3);
                    let cont = match at {
                        0 => indent,
                        1 => indent + 2,
                        _ => indent.saturating_sub(2),
                    };
                    let q = if rng.below(2) == 0 { '\'' } else { '"' };
                    lines[i] = format!("{key}: {q}{v} and more");
                    lines.insert(i + 1, format!("{}words here{q}", pad(cont)));
                }
            }
        }
        // A comment: on its own line at some indentation, or after a value.
        4 => {
            if rng.below(2) == 0 {
                lines.insert(i, format!("{}# a note", pad(rng.below(indent + 3))));
            } else if !lines[i].contains(['#', '\'', '"', '|', '>']) && !lines[i].trim().is_empty()
            {
                lines[i].push_str("  # a note");
            }
        }
        // Tabs: after a value, or on an empty line.
        5 => {
            if !lines[i].contains(['|', '>', '\'', '"']) {
                lines[i].push('\t');
            }
        }
        // Document markers.
        6 => {
            if indent == 0 && !lines[i].starts_with([' ', '-', '#']) {
                lines.insert(
                    i,
                    if rng.below(2) == 0 {
                        "---".into()
                    } else {
                        "...\n---".into()
                    },
                );
            }
        }
        // A flow list's closing bracket on a line of its own, low.
        7 => {
            if let Some(at) = lines[i].rfind(']') {
                if lines[i].contains('[') && lines[i].ends_with(']') {
                    let inner = lines[i][..at].trim_end().to_string();
                    lines[i] = inner;
                    lines.insert(i + 1, format!("{}]", pad(rng.below(indent + 1))));
                }
            }
        }
        // Blank lines with trailing spaces.
        _ => lines.insert(i, pad(rng.below(6))),
    }
    let mut out = lines.join("\n");
    out.push('\n');
    if rng.below(12) == 0 {
        out = out.replace('\n', "\r\n");
    }
    out
}

/// Squeezes white space runs in every JSON string (for a stream read with
/// a documented widening that folds differently). A line break go-yaml
/// folds out of an empty line inside such a scalar is white space too: it is
/// `\n` in the JSON.
fn squeezed(line: &str) -> String {
    line.replace("\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Default)]
struct Tally {
    same: usize,
    documented: usize,
    wider: usize,
    wider_examples: Vec<String>,
    both_refuse: usize,
    differ: Vec<String>,
}

fn compare(reader: &Path, name: &str, src: &str, tally: &mut Tally) {
    let go = go_view(reader, src);
    let ours = go_yaml_view(src);
    let go_failed = go.last().is_some_and(|l| l.starts_with("ERROR"));
    let ours_failed = ours.last().is_some_and(|l| l.starts_with("ERROR"));
    match (go_failed, ours_failed) {
        (true, true) => tally.both_refuse += 1,
        (true, false) => {
            tally.wider += 1;
            if std::env::var_os("GOYAML_SHOW").is_some() {
                println!("---- {name}\n{src}");
            }
            if tally.wider_examples.len() < 3 {
                tally
                    .wider_examples
                    .push(format!("{name}: go-yaml says {}", go.last().unwrap()));
            }
        }
        (false, true) => {
            let why = ours.last().unwrap();
            if why.contains("duplicate key") || src.contains("<<:") {
                tally.documented += 1;
            } else {
                tally.differ.push(format!(
                    "{name}: go-yaml reads it, graceful-inject says {why}\n{src}"
                ));
            }
        }
        (false, false) => {
            let widened = graceful_inject::yaml::tolerant(src) != src;
            let same = if widened {
                go.iter()
                    .map(|l| squeezed(l))
                    .eq(ours.iter().map(|l| squeezed(l)))
            } else {
                go == ours
            };
            if same {
                tally.same += 1;
            } else if src.contains("<<:") {
                tally.documented += 1;
            } else {
                let (g, o) = (go.join("\n"), ours.join("\n"));
                let at = g.bytes().zip(o.bytes()).take_while(|(a, b)| a == b).count();
                let window = |s: &str| {
                    let from = s.floor_char_boundary(at.saturating_sub(120));
                    let to = s.ceil_char_boundary((at + 120).min(s.len()));
                    s[from..to].to_string()
                };
                tally.differ.push(format!(
                    "{name}: the values differ at byte {at}\n go-yaml: …{}…\n   ours: …{}…\n{src}",
                    window(&g),
                    window(&o)
                ));
            }
        }
    }
}

fn real_manifests() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<PathBuf> = Vec::new();
    for case in fs::read_dir(root.join("config/test")).unwrap() {
        let case = case.unwrap().path();
        files.push(case.join("input.yaml"));
        files.push(case.join("expected.yaml"));
    }
    for dir in ["istio-kube-inject", "istio-kube-inject-inputs"] {
        if let Ok(entries) = fs::read_dir(root.join("../shared/corpus").join(dir)) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|f| Some((f.display().to_string(), fs::read_to_string(&f).ok()?)))
        .collect()
}

#[test]
fn where_go_yaml_reads_a_stream_graceful_inject_reads_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reader) = go_reader(dir.path()) else {
        return;
    };
    let manifests = real_manifests();
    let mut tally = Tally::default();
    for (name, src) in &manifests {
        compare(&reader, name, src, &mut tally);
    }
    let real = tally.same;
    // Variants: a fixed seed and a fixed number, one to three edits each.
    let variants: usize = std::env::var("GOYAML_VARIANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for n in 0..variants {
        let (name, base) = &manifests[rng.below(manifests.len())];
        let mut src = base.clone();
        for _ in 0..=rng.below(3) {
            src = mutate(&src, &mut rng);
        }
        compare(&reader, &format!("variant {n} of {name}"), &src, &mut tally);
    }
    println!(
        "go-yaml differential: {} real manifests, {variants} variants; the same values {} ({real} real), a documented refusal {}, both refuse {}, graceful-inject reads what go-yaml refuses {}",
        manifests.len(),
        tally.same,
        tally.documented,
        tally.both_refuse,
        tally.wider
    );
    for example in &tally.wider_examples {
        println!("  read, where go-yaml refuses: {example}");
    }
    assert!(
        tally.differ.is_empty(),
        "{} streams go-yaml reads differently; the first:\n{}",
        tally.differ.len(),
        tally.differ[0]
    );
}
