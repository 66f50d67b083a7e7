//! The proof that reads again only the lines around the edits (windows)
//! accepts nothing the full proof refuses.
//!
//! Over the golden cases and the Istio corpus: undamaged, both ways of
//! proving write the same text; damaged on purpose (lines lost, doubled,
//! moved left or right, characters added or removed, near the added text
//! where windows are read), whatever the windowed run writes passes the full
//! proof, which reads every document again whole.

use graceful_inject::{
    config, fuzzing,
    plan::Options,
    stream::{inject_with, Faults},
};
use std::cell::Cell;
use std::path::Path;

#[path = "../../tests/support/skip.rs"]
mod skip;

thread_local! {
    /// The damage to do next (a seed): `fn` sabotage hooks hold no state.
    static SEED: Cell<u64> = const { Cell::new(0) };
}

fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// One damage, chosen by the seed, near a line the injector added.
fn damage(text: &str) -> String {
    let mut seed = SEED.with(Cell::get);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let near: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("graceful-wait"))
        .map(|(i, _)| i)
        .collect();
    if near.is_empty() || lines.len() < 3 {
        return text.to_string();
    }
    let around = near[next(&mut seed) as usize % near.len()];
    let at = (around + (next(&mut seed) as usize % 7))
        .saturating_sub(3)
        .min(lines.len() - 1);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let line = out[at].clone();
    let col = if line.is_empty() {
        0
    } else {
        next(&mut seed) as usize % line.len()
    };
    let col = (0..=col)
        .rev()
        .find(|c| line.is_char_boundary(*c))
        .unwrap_or(0);
    match next(&mut seed) % 9 {
        0 => {
            out.remove(at);
        }
        1 => out.insert(at, line),
        2 => out[at] = format!(" {line}"),
        3 => out[at] = format!("  {line}"),
        4 => out[at] = line.strip_prefix("  ").unwrap_or(&line).to_string(),
        5 => {
            let c = [":", "\"", "'", "#", "- ", " ", "|", "[", "{", "&a ", "*a"];
            let c = c[next(&mut seed) as usize % c.len()];
            out[at] = format!("{}{c}{}", &line[..col], &line[col..]);
        }
        6 => {
            let mut l = line;
            if col < l.len() {
                l.remove(col);
            }
            out[at] = l;
        }
        7 => {
            if at + 1 < out.len() {
                let l = out.remove(at);
                out.insert(at + 1, l);
            }
        }
        _ => out[at] = line.trim_end_matches('\n').to_string(),
    }
    out.concat()
}

fn cases() -> Vec<(String, String, String)> {
    // Documents whose root is indented, as YAML allows: windows that reach
    // the root's first line start before the root's first key.
    let indented = "  apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n  spec:\n    containers:\n    - name: app\n      image: a\n    - name: proxy\n      image: p\n---\n    kind: Pod\n    spec:\n      containers:\n      - name: proxy\n        image: p\n    metadata: {name: p}\n";
    let mut cases = vec![(
        "an indented root".to_string(),
        indented.to_string(),
        "pod:\n  p:\n    proxy: {tcp: 15090}\n".to_string(),
    )];
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/test");
    let mut dirs: Vec<_> = std::fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let args = std::fs::read_to_string(dir.join("args")).unwrap_or_default();
        if !args.trim().is_empty() {
            continue; // options of their own; the default run is tried here
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        cases.push((
            dir.file_name().unwrap().to_string_lossy().into_owned(),
            read("input.yaml"),
            read("config.yml"),
        ));
    }
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/istio-kube-inject");
    let mut config = String::from("graceful-wait:\n  native-sidecars: wait\n");
    for kind in [
        "deployment",
        "statefulset",
        "daemonset",
        "replicaset",
        "job",
        "cronjob",
        "pod",
    ] {
        config.push_str(&format!(
            "{kind}:\n  \"*\":\n    istio-proxy: {{tcp: 15090}}\n"
        ));
    }
    if let Ok(entries) = std::fs::read_dir(&corpus) {
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "injected"))
        {
            let text = std::fs::read_to_string(f).unwrap();
            cases.push((f.display().to_string(), text, config.clone()));
        }
    } else {
        skip::skipped(
            "windows_accept_nothing_the_full_proof_refuses (the corpus part)",
            &format!(
                "{} is absent; the golden cases were tried",
                corpus.display()
            ),
        );
    }
    cases
}

#[test]
fn windows_accept_nothing_the_full_proof_refuses() {
    let options = Options::default();
    let (mut tried, mut written, mut refused) = (0, 0, 0);
    for (name, input, config) in cases() {
        let config = config::parse(&config).unwrap();
        let run = |sabotage, read_all| {
            let faults = Faults {
                sabotage,
                read_all,
                ..Faults::default()
            };
            inject_with(&input, &config, &options, faults).map(|i| i.text)
        };
        // Undamaged: the same text both ways.
        let by_windows = run(None, false).map_err(|e| e.to_string());
        let whole = run(None, true).map_err(|e| e.to_string());
        assert_eq!(by_windows, whole, "{name}: the two proofs differ");
        let Ok(clean) = by_windows else { continue };
        if clean == input {
            continue;
        }
        for round in 0..40u64 {
            SEED.with(|s| s.set(round * 7919 + name.len() as u64));
            tried += 1;
            match run(Some(damage), false) {
                Ok(text) => {
                    written += 1;
                    if let Err(e) = fuzzing::proved(&input, &text, &config, &options) {
                        panic!("{name}, damage {round}: written after the windows' proof, but the full proof refuses it: {e}\n--- written:\n{text}");
                    }
                }
                Err(_) => refused += 1,
            }
        }
    }
    println!("{tried} damaged runs: {refused} refused, {written} written (each one passes the full proof)");
    assert!(
        refused > tried / 2,
        "the damage should mostly be caught: {refused} of {tried}"
    );
}
