//! A stream read a document at a time (`stream::inject_from`, what the
//! command line does) gives byte for byte what reading it whole gives, with
//! the same outcomes and errors placed on the stream's own lines; and the
//! summary of a long stream is folded, its memory flat.

use graceful_inject::{
    config,
    front::report::{Summary, LINES},
    plan::{Note, Options, Outcome},
    stream::{inject, inject_from, Destination, Outcomes},
};
use std::{fs, path::PathBuf};

const CONFIG: &str = "graceful-wait:\n  native-sidecars: wait\ndeployment:\n  \"*\":\n    istio-proxy: {tcp: 15090}\n    app: {wrap: {done-file: /graceful-wait-done/app.done}}\nstatefulset:\n  \"*\":\n    istio-proxy: auto\ndaemonset:\n  \"*\":\n    istio-proxy: {http: localhost:15021/healthz/ready}\npod:\n  \"*\":\n    istio-proxy: {tcp: 15090}\n";

/// Every golden input, and the corpus when it is there, as one stream.
fn long_stream() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<PathBuf> = fs::read_dir(root.join("config/test"))
        .unwrap()
        .map(|e| e.unwrap().path().join("input.yaml"))
        .collect();
    if let Ok(dir) = fs::read_dir(root.join("../shared/corpus/istio-kube-inject")) {
        files.extend(
            dir.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "injected")),
        );
    }
    files.sort();
    let mut stream = String::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        // Streams with a directive, JSON or CRLF are their own cases below.
        if text.lines().any(|l| l.starts_with('%'))
            || text.contains('\r')
            || text.starts_with('\u{feff}')
        {
            continue;
        }
        if !stream.is_empty() {
            stream.push_str("---\n");
        }
        stream.push_str(&text);
        if !stream.ends_with('\n') {
            stream.push('\n');
        }
    }
    stream
}

/// `src` read a document at a time: one after the other, and several at
/// once (three threads, whatever the machine), which must give the same.
fn streamed(src: &str, cfg: &str) -> Result<(String, Vec<Outcome>, bool), String> {
    let config = config::parse(cfg).unwrap();
    let run = |threads| {
        let mut out = String::new();
        let mut outcomes = Vec::new();
        let changed = inject_from(
            &mut src.as_bytes(),
            &config,
            &Options::default(),
            threads,
            Destination {
                sink: &mut out,
                outcomes: &mut outcomes,
            },
        )
        .map_err(|e| e.to_string())?;
        Ok((out, outcomes, changed))
    };
    let one_at_a_time = run(1);
    assert_eq!(
        run(3),
        one_at_a_time,
        "several at once differ from one at a time"
    );
    one_at_a_time
}

fn whole(src: &str, cfg: &str) -> Result<(String, Vec<Outcome>, bool), String> {
    let config = config::parse(cfg).unwrap();
    inject(src, &config, &Options::default())
        .map(|i| (i.text, i.outcomes, i.changed))
        .map_err(|e| e.to_string())
}

#[test]
fn a_document_at_a_time_gives_what_the_whole_stream_gives() {
    let stream = long_stream();
    assert!(stream.matches("\n---\n").count() > 30, "a long stream");
    let (a, b) = (streamed(&stream, CONFIG), whole(&stream, CONFIG));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.2 && b.2, "something changed");
    assert_eq!(a.1, b.1, "the same outcomes");
    assert!(a.0 == b.0, "the same output");
}

#[test]
fn directives_json_crlf_and_comments_between_documents_too() {
    let cases = [
        // A directive applies across a cut: the stream is read whole.
        "%YAML 1.2\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: istio-proxy\n    image: p\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: istio-proxy\n    image: p\n",
        "# head\n---\n# before b\n{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"b\"}, \"spec\": {\"containers\": [{\"name\": \"istio-proxy\", \"image\": \"p\"}]}}\n...\n# after the end marker\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec:\n  containers: [{name: istio-proxy, image: p}]\n# tail",
        "apiVersion: v1\r\nkind: Pod\r\nmetadata: {name: a}\r\nspec:\r\n  containers:\r\n  - name: istio-proxy\r\n    image: p\r\n---\r\napiVersion: v1\r\nkind: Pod\r\nmetadata: {name: b}\r\nspec:\r\n  containers:\r\n  - name: istio-proxy\r\n    image: p\r\n",
        "",
        "---\n---\n",
    ];
    for src in cases {
        assert_eq!(streamed(src, CONFIG), whole(src, CONFIG), "{src:?}");
    }
}

#[test]
fn an_error_is_placed_on_the_stream_s_own_line() {
    let src = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n---\nkind: [unclosed\n";
    let (a, b) = (streamed(src, CONFIG), whole(src, CONFIG));
    assert_eq!(a.clone().unwrap_err(), b.unwrap_err());
    let e = a.unwrap_err();
    assert!(
        e.starts_with("10:1:") && e.contains("opened at 9:7"),
        "the stream's lines: {e}"
    );
    // Invalid UTF-8 on the third line, fifth byte.
    let bytes = b"kind: Pod\nmetadata: {name: a}\nspec\xff: x\n";
    let e = streamed_error(bytes, 0);
    assert!(e.starts_with("3:5: not UTF-8"), "{e}");
}

/// The error of `bytes` read a document at a time on `threads` threads.
fn streamed_error(bytes: &[u8], threads: usize) -> String {
    let config = config::parse(CONFIG).unwrap();
    inject_from(
        &mut &bytes[..],
        &config,
        &Options::default(),
        threads,
        Destination {
            sink: &mut String::new(),
            outcomes: &mut Vec::new(),
        },
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn a_long_summary_is_folded_and_its_memory_stays_flat() {
    let outcome = |i: usize, note: Note| Outcome {
        object: format!("Deployment/app-{i}"),
        notes: vec![note],
    };
    let mut short = Summary::default();
    for i in 0..10 {
        short.push(outcome(i, Note::Changed("istio-proxy: preStop ← x".into())));
    }
    assert_eq!(short.text().lines().count(), 10, "a short one is whole");
    let mut long = Summary::default();
    for i in 0..50_000 {
        let note = match i % 10_000 {
            7 => Note::Skipped("istio-proxy: container not found".into()),
            8 => Note::Warning("timeout too long".into()),
            _ => Note::Changed("istio-proxy: preStop ← x".into()),
        };
        long.push(outcome(i, note));
    }
    let text = long.text();
    assert!(
        text.lines().count() <= LINES + 1,
        "{}",
        text.lines().count()
    );
    assert!(
        text.contains("skipped Deployment/app-40007"),
        "every skip listed"
    );
    assert!(text.contains("warning Deployment/app-40008"));
    assert!(
        !text.contains("changed Deployment/app-"),
        "changes counted, not listed"
    );
    assert!(
        text.ends_with("  summary: 49990 changed, 0 unchanged, 5 skipped, 5 warning (50000 lines; the skipped and warnings are listed)\n"),
        "{}",
        text.lines().last().unwrap()
    );
}

/// Pieces are handled on several threads at once; the run still ends at the
/// first error in the stream's order: a YAML error early on comes before
/// later ones, and before bad UTF-8 further down, however quickly the later
/// pieces are handled.
#[test]
fn the_first_error_in_the_stream_s_order_is_the_one_reported() {
    let pod = |i: usize| {
        format!("---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  containers:\n  - name: app\n    image: a\n  - name: proxy\n    image: p\n")
    };
    // Then a later YAML error, or bad UTF-8 read while the piece with the
    // first error may still be in a worker's hands.
    for after in [
        &b"---\nkind: [unclosed too\n"[..],
        &b"---\nkind: Pod\nbad\xff: x\n"[..],
    ] {
        let mut bytes = Vec::new();
        for i in 0..400 {
            bytes.extend_from_slice(pod(i).as_bytes());
            if i == 120 {
                bytes.extend_from_slice(b"---\nkind: [unclosed\n");
                bytes.extend_from_slice(after);
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let first = text.find("kind: [unclosed\n").unwrap();
        let want = format!("{}:", text[..first].matches('\n').count() + 2);
        let e = streamed_error(&bytes, 3);
        assert!(
            e.starts_with(&want),
            "want the error on line {want} first: {e}"
        );
    }
}
