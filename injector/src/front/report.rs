//! The summary on stderr (which workloads and containers changed, which were
//! skipped and why), and the unified diff of `--diff`.

use crate::plan::Note;
use crate::plan::Outcome;

/// A note's word in the summary, and its text.
pub fn tag(note: &Note) -> (&'static str, &str) {
    match note {
        Note::Changed(t) => ("changed", t),
        Note::Unchanged(t) => ("unchanged", t),
        Note::Skipped(t) => ("skipped", t),
        Note::Warning(t) => ("warning", t),
    }
}

/// One line a note: `  changed Deployment/web: istio-proxy: …`.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        for note in &o.notes {
            let (tag, text) = tag(note);
            out.push_str(&format!("{tag:>9} {}: {text}\n", o.object));
        }
    }
    out
}

pub fn diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}
