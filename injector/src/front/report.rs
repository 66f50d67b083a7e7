//! The summary on stderr (which workloads and containers changed, which were
//! skipped and why), and the unified diff of `--diff`.
//!
//! A long stream's summary is folded: past [`LINES`] lines nobody reads
//! them all, so it keeps what needs a look (skipped, warnings; up to
//! [`LINES`] of them) and counts the rest, and its memory stays flat
//! however many objects go by.

use crate::plan::Note;
use crate::plan::Outcome;
use crate::stream::Outcomes;

/// The most lines a summary lists.
pub const LINES: usize = 1000;

/// A note's word in the summary, and its text.
pub fn tag(note: &Note) -> (&'static str, &str) {
    match note {
        Note::Changed(t) => ("changed", t),
        Note::Unchanged(t) => ("unchanged", t),
        Note::Skipped(t) => ("skipped", t),
        Note::Warning(t) => ("warning", t),
    }
}

/// One line a note: `  changed Deployment/web: istio-proxy: …`, folded
/// as [`Summary`] folds a long one.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut summary = Summary::default();
    for o in outcomes {
        summary.push(o.clone());
    }
    summary.text()
}

/// The summary, built as the outcomes go by.
#[derive(Default)]
pub struct Summary {
    /// The lines listed: every line until there are more than [`LINES`],
    /// then only the skipped and warning ones (up to [`LINES`]).
    lines: Vec<(usize, String)>,
    /// Lines a tag, in [`TAGS`]' order.
    counts: [usize; 4],
    folded: bool,
}

/// The tags, in the order the counts are given.
const TAGS: [&str; 4] = ["changed", "unchanged", "skipped", "warning"];

fn needs_a_look(tag: usize) -> bool {
    TAGS[tag] == "skipped" || TAGS[tag] == "warning"
}

impl Outcomes for Summary {
    fn push(&mut self, outcome: Outcome) {
        for note in &outcome.notes {
            let (word, text) = tag(note);
            let index = TAGS.iter().position(|t| *t == word).unwrap_or(0);
            self.counts[index] += 1;
            if self.folded && (!needs_a_look(index) || self.lines.len() >= LINES) {
                continue;
            }
            self.lines
                .push((index, format!("{word:>9} {}: {text}\n", outcome.object)));
            if !self.folded && self.lines.len() > LINES {
                self.folded = true;
                self.lines.retain(|(tag, _)| needs_a_look(*tag));
                self.lines.truncate(LINES);
            }
        }
    }

    fn reset(&mut self) {
        *self = Summary::default();
    }
}

impl Summary {
    /// What is printed: the lines, and when folded, the counts.
    pub fn text(&self) -> String {
        let mut out: String = self.lines.iter().map(|(_, l)| l.as_str()).collect();
        if self.folded {
            let listed = self.lines.len();
            let worth = self.counts[2] + self.counts[3];
            let counts: Vec<String> = TAGS
                .iter()
                .zip(self.counts)
                .map(|(t, n)| format!("{n} {t}"))
                .collect();
            out.push_str(&format!(
                "  summary: {} ({} lines; the skipped and warnings are listed{})\n",
                counts.join(", "),
                self.counts.iter().sum::<usize>(),
                if worth > listed {
                    format!(", the first {listed} of {worth}")
                } else {
                    String::new()
                }
            ));
        }
        out
    }
}

pub fn diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}
