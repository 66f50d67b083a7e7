//! **Wider than YAML 1.2, as kubectl is.** Kubernetes reads YAML with go-yaml
//! (sigs.k8s.io/yaml), which, like libyaml, accepts a flow collection whose
//! closing `]` or `}` stands on its own line at a lower indentation than its
//! items (`args: [\n    "-a",\n]`, as in some of Istio's own docs). A strict
//! YAML 1.2 reader refuses that. [`tolerant`] makes the same stream readable
//! without moving a byte: the line break before such a bracket is read as a
//! space (inside a flow collection a line break is only white space).
//!
//! go-yaml also reads a quoted scalar whose continuation lines stand at (or
//! below) the indentation of the key it belongs to (`description: 'a long\n
//! text'` at the key's own column, as some operators' release manifests
//! write it); a strict reader refuses it. There, the line breaks inside that
//! scalar are read as spaces: the text reads, every byte stays where it was,
//! and only that scalar's white space reads differently (the fold of a line
//! break and the next line's indentation is one space to go-yaml, an empty
//! line a line break) — a text
//! the injector never edits or plans from. Nothing else is relaxed; the
//! table in docs/injector.md lists each widening with the case that shows it.

use super::lines::{self, Pos};
use super::tree::{Documents, YamlError};
use std::borrow::Cow;

/// How a text is read: as written, or as go-yaml (kubectl) reads it where
/// the strict reader refuses what go-yaml takes. The caller knows which it
/// chose, and says so with this instead of the reader comparing texts.
#[derive(Clone, Copy, Debug)]
pub enum Read<'a> {
    /// As written: strict YAML 1.2.
    AsWritten,
    /// With go-yaml's tolerance: this text (the same bytes but for line
    /// breaks read as spaces, [`tolerant`]) is read in the source's place.
    AsGoYaml(&'a str),
}

impl<'a> Read<'a> {
    /// How [`tolerant`]'s answer says to read: as written where it left the
    /// text alone.
    #[allow(clippy::ptr_arg)] // whether it is borrowed is the question
    pub fn of(readable: &'a Cow<'_, str>) -> Read<'a> {
        match readable {
            Cow::Borrowed(_) => Read::AsWritten,
            Cow::Owned(text) => Read::AsGoYaml(text),
        }
    }

    /// The text the reader is given for `src`.
    pub fn text(self, src: &'a str) -> &'a str {
        match self {
            Read::AsWritten => src,
            Read::AsGoYaml(text) => text,
        }
    }

    pub fn tolerant(self) -> bool {
        matches!(self, Read::AsGoYaml(_))
    }
}

/// The stream as go-yaml reads it, for the strict reader: each line break
/// before a closing bracket that stands at too low an indentation is turned
/// into a space (a `\r` before it too), so every byte stays where it was.
/// Returns the text unchanged when it reads as it is, or when the failure is
/// of another kind (which the caller then reports).
pub fn tolerant(src: &str) -> Cow<'_, str> {
    // Without a line that starts with a closing bracket, or a quote, there
    // is nothing to tolerate, and no reason to read the stream an extra time.
    let closing_line = src
        .lines()
        .any(|l| matches!(l.trim_start().as_bytes().first(), Some(b']' | b'}')));
    if !closing_line && !src.contains(['\'', '"']) {
        return Cow::Borrowed(src);
    }
    let mut text = Cow::Borrowed(src);
    tolerate(&mut text);
    text
}

/// [`tolerant`], for a caller whose strict read of `src` failed with `err`:
/// the tolerant text when that failure is go-yaml's wider tolerance, None
/// when it is a real error (to be reported as it is).
pub fn tolerated<'s>(src: &'s str, err: &YamlError) -> Option<Cow<'s, str>> {
    if low_closing_bracket(src, err).is_none() && under_indented_quote(src, err).is_none() {
        return None;
    }
    let mut text = Cow::Borrowed(src);
    tolerate(&mut text);
    Some(text)
}

fn tolerate(text: &mut Cow<'_, str>) {
    // Each round fixes one bracket; a stream has few of them.
    for _ in 0..1000 {
        let Some(err) = Documents::new(text).find_map(Result::err) else {
            return;
        };
        let bytes = match low_closing_bracket(text, &err) {
            Some(bytes) => bytes,
            None => match under_indented_quote(text, &err) {
                Some(newlines) => newlines,
                None => return,
            },
        };
        // ASCII for ASCII: every offset stays where it was.
        let owned = text.to_mut();
        for at in bytes {
            let newline = owned.as_bytes()[at] == b'\n';
            owned.replace_range(at..at + 1, " ");
            if newline && at > 0 && owned.as_bytes()[at - 1] == b'\r' {
                owned.replace_range(at - 1..at, " ");
            }
        }
    }
}

/// The bytes to read as spaces where the error is go-yaml's wider
/// tolerance of a closing bracket: a line holding only white space and `]`
/// or `}` (and what follows it), inside an open flow collection. The line
/// break before it is read as a space; where comment lines stand between
/// the items and the bracket (which would swallow it), their text is read
/// as white space too — a comment holds no value, and in the source it
/// stays as written. An item line that ends in a comment is not taken (a
/// `#` there may be a scalar's), nor a comment that is not ASCII (one
/// byte, one space: no offset moves).
fn low_closing_bracket(text: &str, err: &YamlError) -> Option<Vec<usize>> {
    let line_start = lines::offset(text, Pos { col: 1, ..err.pos? })?;
    let line = lines::text(&text[line_start..lines::after(text, line_start)]);
    let trimmed = line.trim_start();
    if !(trimmed.starts_with(']') || trimmed.starts_with('}')) || line_start == 0 {
        return None;
    }
    // The reader says the bracket's collection is not closed before the
    // bracket, or (a `[` alone on its line, deeper than the bracket) only
    // that the bracket's indentation is invalid; either way the bracket
    // joins the line before, and a read that still fails is refused.
    if !err.message.contains("not closed before this point")
        && !err.message.starts_with("invalid indentation")
    {
        return None;
    }
    let mut bytes = vec![line_start - 1];
    // The lines before the bracket's, back to the last that holds an item.
    let mut end = line_start - 1;
    loop {
        let start = lines::start(text, end);
        let line = lines::text(&text[start..end]);
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            if !trimmed.is_ascii() {
                return None;
            }
            let from = start + (line.len() - trimmed.len());
            bytes.extend(from..start + line.len());
        } else if trimmed.contains('#') {
            return None;
        } else if !trimmed.is_empty() || start == 0 {
            return Some(bytes);
        }
        if start == 0 {
            return Some(bytes);
        }
        end = start - 1;
    }
}

/// The line breaks inside the quoted scalar the error is about, if the
/// error is go-yaml's wider tolerance: a quoted scalar whose continuation
/// lines are not indented more than its block. The error stands at the
/// scalar's opening quote; its line breaks run to the closing quote.
fn under_indented_quote(text: &str, err: &YamlError) -> Option<Vec<usize>> {
    if !err.message.contains("invalid indentation in quoted scalar") {
        return None;
    }
    let opening = lines::offset(text, err.pos?)?;
    let quote = text[opening..]
        .chars()
        .next()
        .filter(|c| matches!(c, '\'' | '"'))?;
    let bytes = text.as_bytes();
    let mut at = opening + 1;
    let mut newlines = Vec::new();
    loop {
        match (*bytes.get(at)?, quote) {
            (b'\'', '\'') if bytes.get(at + 1) == Some(&b'\'') => at += 2,
            (b'\\', '"') => at += 2,
            (b'\'', '\'') | (b'"', '"') => break,
            (b'\n', _) => {
                newlines.push(at);
                at += 1;
            }
            _ => at += 1,
        }
    }
    (!newlines.is_empty()).then_some(newlines)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comment line between the last item and a closing bracket that
    /// stands too low (go-yaml reads it): the comment is read as white
    /// space, the bracket joins it, and the items are what go-yaml reads.
    /// A comment at the end of an item's line is not taken.
    #[test]
    fn a_comment_before_a_low_closing_bracket_is_read_as_white_space() {
        let src = "spec:\n  args: [\n   \n        \"proxy\",\n      \"sidecar\",\n # a note\r\n  ]\n  x: 1\n";
        let err = Documents::new(src)
            .find_map(Result::err)
            .expect("strict read fails");
        let text = tolerated(src, &err).expect("go-yaml's tolerance");
        assert_eq!(text.len(), src.len(), "no byte moved");
        let root = Documents::new(&text).next().unwrap().unwrap().root.unwrap();
        let args: Vec<&str> = root
            .path(&["spec", "args"])
            .unwrap()
            .as_seq()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(args, ["proxy", "sidecar"]);
        assert_eq!(root.path(&["spec", "x"]).unwrap().as_str(), Some("1"));
        // A `[` alone on the line after its key (a chart's toYaml of an
        // empty list, edited), its `]` far lower.
        let alone = "spec:\n  mounts:\n    [\n ]\n  x: 1\n";
        let err = Documents::new(alone).find_map(Result::err).unwrap();
        let text = tolerated(alone, &err).expect("go-yaml's tolerance");
        let root = Documents::new(&text).next().unwrap().unwrap().root.unwrap();
        let mounts = root.path(&["spec", "mounts"]).unwrap();
        assert_eq!(mounts.as_seq().map(|s| s.len()), Some(0));
        let trailing = "spec:\n  args: [\n      \"proxy\", # a note\n  ]\n";
        let err = Documents::new(trailing).find_map(Result::err).unwrap();
        assert!(tolerated(trailing, &err).is_none());
    }

    /// A double-quoted scalar with an escaped quote on each of its lines (an
    /// even number of `"` on every line) and its continuation at the key's
    /// column: a strict read fails, and the failure is tolerated as go-yaml
    /// does.
    #[test]
    fn an_under_indented_continuation_is_tolerated_whatever_its_quotes() {
        let src = "spec:\n  description: \"say \\\"hi\n  there\\\" you\"\n  x: 1\n";
        let err = Documents::new(src)
            .find_map(Result::err)
            .expect("strict read fails");
        let text = tolerated(src, &err).expect("go-yaml's tolerance");
        assert_eq!(text.len(), src.len(), "no byte moved");
        let doc = Documents::new(&text).next().unwrap().unwrap();
        let root = doc.root.unwrap();
        let description = root
            .path(&["spec", "description"])
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(
            description.split_whitespace().collect::<Vec<_>>(),
            ["say", "\"hi", "there\"", "you"]
        );
    }
}
