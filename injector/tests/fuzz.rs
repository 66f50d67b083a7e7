//! A bounded fuzz run on stable Rust, in every `cargo test`: the golden
//! inputs and configs (and, when present, the corpus in ../shared) mutated
//! at random — YAML's own punctuation inserted, lines deleted, duplicated and
//! re-indented, bytes flipped — through the same entry points as the
//! `cargo fuzz` targets in injector/fuzz/ (`graceful_inject::fuzzing`). The
//! invariant: a clear error, or an output the injector's own check proved.
//!
//! `PROPTEST_CASES=100000 cargo test --release -p graceful-inject --test fuzz`
//! runs longer; docs/testing.md says how to run the cargo-fuzz targets.

use graceful_inject::fuzzing;
use proptest::prelude::*;
use std::{fs, path::Path, sync::OnceLock};

const SNIPPETS: &[&str] = &[
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\n",
    "  ",
    "# c\n",
    "&a ",
    "*a",
    "<<: *a\n",
    "|\n",
    ">-\n",
    "'",
    "\"",
    "---\n",
    "...\n",
    "\t",
    "\r\n",
    "~",
    "!tag ",
    "? ",
    "lifecycle: ",
    "preStop: {exec: {command: [x]}}",
    "volumeMounts: []",
    "initContainers:\n- ",
    "name: istio-proxy",
    "name: app",
    "command: [a, b]",
    "é",
    "\u{feff}",
    "%YAML 1.2\n",
];

fn seeds(kind: &str) -> &'static [String] {
    static INPUTS: OnceLock<Vec<String>> = OnceLock::new();
    static CONFIGS: OnceLock<Vec<String>> = OnceLock::new();
    let read = |name: &str| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/test");
        let mut out: Vec<String> = fs::read_dir(root)
            .unwrap()
            .filter_map(|e| fs::read_to_string(e.unwrap().path().join(name)).ok())
            .collect();
        if name == "input.yaml" {
            let corpus =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/istio-kube-inject");
            if let Ok(dir) = fs::read_dir(corpus) {
                let mut files: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
                files.sort();
                out.extend(
                    files
                        .iter()
                        .take(20)
                        .filter_map(|p| fs::read_to_string(p).ok()),
                );
            }
        }
        out.sort();
        out
    };
    match kind {
        "input" => INPUTS.get_or_init(|| read("input.yaml")),
        _ => CONFIGS.get_or_init(|| read("config.yml")),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, usize),
    Delete(usize, usize),
    DuplicateLine(usize),
    Indent(usize, bool),
    Byte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..SNIPPETS.len()).prop_map(|(p, s)| Mutation::Insert(p, s)),
        (any::<usize>(), 1usize..40).prop_map(|(p, n)| Mutation::Delete(p, n)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<bool>()).prop_map(|(l, more)| Mutation::Indent(l, more)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Byte(p, b)),
    ]
}

fn mutate(seed: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Insert(p, s) => {
                let at = p % (bytes.len() + 1);
                bytes.splice(at..at, SNIPPETS[s].bytes());
            }
            Mutation::Delete(p, n) => {
                let at = p % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Mutation::DuplicateLine(l) | Mutation::Indent(l, _) => {
                let lines: Vec<usize> = std::iter::once(0)
                    .chain(
                        bytes
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| **b == b'\n')
                            .map(|(i, _)| i + 1),
                    )
                    .filter(|i| *i < bytes.len())
                    .collect();
                let Some(&start) = lines.get(l % lines.len().max(1)) else {
                    continue;
                };
                let end = bytes[start..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(bytes.len(), |i| start + i + 1);
                match *m {
                    Mutation::DuplicateLine(_) => {
                        let line = bytes[start..end].to_vec();
                        bytes.splice(start..start, line);
                    }
                    Mutation::Indent(_, true) => {
                        bytes.splice(start..start, *b"  ");
                    }
                    _ => {
                        if bytes[start..].starts_with(b"  ") {
                            bytes.drain(start..start + 2);
                        }
                    }
                }
            }
            Mutation::Byte(p, b) => {
                if !bytes.is_empty() {
                    let at = p % bytes.len();
                    bytes[at] = b;
                }
            }
        }
    }
    bytes
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200),
        // Nothing written into the repository; a failure prints its input.
        failure_persistence: None,
        // The same inputs on every run, so CI is reproducible; another seed
        // explores further: PROPTEST_RNG_SEED=7 (with PROPTEST_CASES).
        rng_seed: match std::env::var("PROPTEST_RNG_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            Some(seed) => proptest::test_runner::RngSeed::Fixed(seed),
            None => proptest::test_runner::RngSeed::Fixed(20261125),
        },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_whole_rewrite(seed in any::<usize>(), m in prop::collection::vec(mutation(), 0..6)) {
        let seeds = seeds("input");
        fuzzing::rewrite(&mutate(&seeds[seed % seeds.len()], &m));
    }

    #[test]
    fn the_yaml_reader(seed in any::<usize>(), m in prop::collection::vec(mutation(), 0..10)) {
        let seeds = seeds("input");
        fuzzing::yaml_reader(&mutate(&seeds[seed % seeds.len()], &m));
    }

    #[test]
    fn the_config_parser(seed in any::<usize>(), m in prop::collection::vec(mutation(), 0..6)) {
        let seeds = seeds("config");
        fuzzing::config(&mutate(&seeds[seed % seeds.len()], &m));
    }

    #[test]
    fn the_shell_loop_recogniser(
        words in prop::collection::vec(prop::sample::select(vec![
            "while", "until", "true", ";", "do", "done", "sleep 1", "nc -z", "localhost", "9000",
            "curl", "-sf", "localhost:3000/", "netstat -tln", "|", "grep", ":8080", "||", "break",
            "if", "!", "then", "fi", "[ $? -gt 0 ]", "$(x)", "&&", "'", "\"", "\n", "-w", "2",
        ]), 0..24)
    ) {
        fuzzing::shell_loop(words.join(" ").as_bytes());
    }
}
