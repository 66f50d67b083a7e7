//! The injector never writes a manifest it has not verified. Before a byte is
//! written, the output is read back with the same YAML reader and proved to be
//! the input plus the planned changes ([`crate::plan`]) and nothing else:
//!
//! - it parses, into the same number of documents;
//! - each document equals its input with the planned changes applied: the
//!   same keys in the same order, the same values and types, except at the
//!   planned paths, which hold exactly the planned values;
//! - a document with nothing planned is byte for byte its input;
//! - every comment line of the input is still there, and the line endings
//!   are the input's.
//!
//! - planning again on the output plans nothing (a second run changes
//!   nothing).
//!
//! It walks the input and the output side by side, one document at a time,
//! planning each input document again rather than keeping every plan, so its
//! memory follows the largest document. Any difference is an internal error:
//! nothing is written, and the message names the document and the path.

use crate::emit::Value;
use crate::inject::Planned;
use crate::plan::{Change, ContainerRef, PodPlan, Seg};
use crate::yaml_tree::{tolerant, Documents, Kind, Node, Pos, YamlError};
use saphyr_parser::ScalarStyle;
use std::collections::HashMap;

/// A document as the check compares it: structure, text and type of every
/// scalar, without positions or styles that do not change what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
enum M {
    Map(Vec<(M, M)>),
    Seq(Vec<M>),
    /// A string (quoted, block, or plain text no YAML reader takes for anything else).
    Str(String),
    /// A plain scalar that reads as a boolean, number or null.
    Typed(String),
    Alias,
}

impl M {
    fn text(&self) -> Option<&str> {
        match self {
            M::Str(s) | M::Typed(s) => Some(s),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut M> {
        match self {
            M::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&M> {
        match self {
            M::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Replaces `key`'s value where it stands, or adds it last: what the
    /// editor's `set_key` does.
    fn set_key(&mut self, key: &str, value: M) -> Result<(), String> {
        let M::Map(entries) = self else {
            return Err(format!("cannot set {key}: not a mapping"));
        };
        match entries.iter_mut().find(|(k, _)| k.text() == Some(key)) {
            Some((_, v)) => *v = value,
            None => entries.push((M::Str(key.to_string()), value)),
        }
        Ok(())
    }

    /// The list under `key` holds `item`: in place of the item named
    /// `replaces`, or else of the one named `name`; added first or last when
    /// there is neither; the list created when there is none (the patch's
    /// find-or-replace-or-create).
    fn ensure_item(
        &mut self,
        key: &str,
        name: &str,
        replaces: Option<&str>,
        item: M,
        first: bool,
    ) -> Result<(), String> {
        match self.get_mut(key) {
            Some(M::Seq(items)) => {
                let named = |n: &str| {
                    items
                        .iter()
                        .position(|i| i.get("name").and_then(M::text) == Some(n))
                };
                match replaces.and_then(named).or_else(|| named(name)) {
                    Some(i) => items[i] = item,
                    None if first => items.insert(0, item),
                    None => items.push(item),
                }
                Ok(())
            }
            _ => self.set_key(key, M::Seq(vec![item])),
        }
    }
}

fn of_node(node: &Node) -> M {
    match &node.kind {
        Kind::Map(entries) => M::Map(
            entries
                .iter()
                .map(|(k, v)| (of_node(k), of_node(v)))
                .collect(),
        ),
        Kind::Seq(items) => M::Seq(items.iter().map(of_node).collect()),
        Kind::Scalar(text, ScalarStyle::Plain) if reads_as_non_string(text) => {
            M::Typed(text.to_string())
        }
        Kind::Scalar(text, _) => M::Str(text.to_string()),
        Kind::Alias(_) => M::Alias,
    }
}

/// Whether `node` already says exactly what `value` says. The order of a
/// mapping's keys says nothing (JSON from `kubectl get -o json`, or a
/// webhook's patched pod, has them sorted): an item that differs only there
/// is left as it is, so a second run changes nothing.
pub fn same(node: &Node, value: &Value) -> bool {
    same_meaning(&of_node(node), &of_value(value))
}

fn same_meaning(a: &M, b: &M) -> bool {
    match (a, b) {
        (M::Map(x), M::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(k2, _)| k2 == k)
                        .is_some_and(|(_, v2)| same_meaning(v, v2))
                })
        }
        (M::Seq(x), M::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_meaning(p, q))
        }
        _ => a == b,
    }
}

fn of_value(value: &Value) -> M {
    match value {
        Value::Str(s) => M::Str(s.clone()),
        Value::Literal(s) => M::Typed(s.clone()),
        Value::Seq(items) => M::Seq(items.iter().map(of_value).collect()),
        Value::Map(entries) => M::Map(
            entries
                .iter()
                .map(|(k, v)| (M::Str(k.clone()), of_value(v)))
                .collect(),
        ),
    }
}

/// Whether a plain scalar is a boolean, null or number to a YAML 1.1 or 1.2
/// reader (go-yaml, which Kubernetes uses, reads both).
fn reads_as_non_string(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf",
        "+.inf", ".nan",
    ];
    let lower = text.to_ascii_lowercase();
    if WORDS.contains(&lower.as_str()) {
        return true;
    }
    let digits = lower.trim_start_matches(['-', '+']);
    if let Some(hex) = digits.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    if let Some(oct) = digits.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| c.is_digit(8) || c == '_');
    }
    digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || "._e+-:".contains(c))
}

fn exec_pre_stop(command: &[String]) -> M {
    M::Map(vec![(
        M::Str("exec".into()),
        M::Map(vec![(
            M::Str("command".into()),
            M::Seq(command.iter().map(|w| M::Str(w.clone())).collect()),
        )]),
    )])
}

fn container<'m>(spec: &'m mut M, at: &ContainerRef) -> Result<&'m mut M, String> {
    match spec.get_mut(at.list) {
        Some(M::Seq(items)) => items
            .iter_mut()
            .find(|c| c.get("name").and_then(M::text) == Some(at.name.as_str()))
            .ok_or_else(|| format!("{} {} not found", at.list, at.name)),
        _ => Err(format!("no {} list", at.list)),
    }
}

/// The pod spec with one planned change applied, as the editor should have.
fn apply(spec: &mut M, change: &Change) -> Result<(), String> {
    match change {
        Change::PreStop {
            container: at,
            command,
        } => {
            let c = container(spec, at)?;
            match c.get_mut("lifecycle") {
                Some(lifecycle @ M::Map(_)) => lifecycle.set_key("preStop", exec_pre_stop(command)),
                _ => c.set_key(
                    "lifecycle",
                    M::Map(vec![(M::Str("preStop".into()), exec_pre_stop(command))]),
                ),
            }
        }
        Change::Command {
            container: at,
            argv,
        } => container(spec, at)?.set_key(
            "command",
            M::Seq(argv.iter().map(|a| M::Str(a.clone())).collect()),
        ),
        Change::Mount {
            container: at,
            name,
            replaces,
            item,
        } => container(spec, at)?.ensure_item(
            "volumeMounts",
            name,
            replaces.as_deref(),
            of_value(item),
            false,
        ),
        Change::Volume {
            name,
            replaces,
            item,
        } => spec.ensure_item("volumes", name, replaces.as_deref(), of_value(item), false),
        Change::InitContainer {
            name,
            replaces,
            item,
        } => spec.ensure_item(
            "initContainers",
            name,
            replaces.as_deref(),
            of_value(item),
            true,
        ),
        Change::Container { name, item } => {
            spec.ensure_item("containers", name, None, of_value(item), false)
        }
        Change::ShareProcessNamespace => {
            spec.set_key("shareProcessNamespace", M::Typed("true".into()))
        }
    }
}

fn at_path<'m>(root: &'m mut M, path: &[Seg]) -> Option<&'m mut M> {
    path.iter().try_fold(root, |node, seg| match (seg, node) {
        (Seg::Key(k), node) => node.get_mut(k),
        (Seg::Index(i), M::Seq(items)) => items.get_mut(*i),
        _ => None,
    })
}

/// The first place where `want` and `got` differ, as a path.
fn first_difference(want: &M, got: &M, path: &mut String) -> Option<String> {
    match (want, got) {
        (M::Map(a), M::Map(b)) => {
            for (i, ((ka, va), (kb, vb))) in a.iter().zip(b).enumerate() {
                if ka != kb {
                    return Some(format!("{path}: key {i} is {kb:?}, planned {ka:?}"));
                }
                let len = path.len();
                path.push('.');
                path.push_str(ka.text().unwrap_or("?"));
                if let Some(d) = first_difference(va, vb, path) {
                    return Some(d);
                }
                path.truncate(len);
            }
            let key = |e: &(M, M)| e.0.text().unwrap_or("?").to_string();
            match a.len().cmp(&b.len()) {
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(format!(
                    "{path}: the planned key {} is missing",
                    key(&a[b.len()])
                )),
                std::cmp::Ordering::Less => Some(format!(
                    "{path}: the key {} was not planned",
                    key(&b[a.len()])
                )),
            }
        }
        (M::Seq(a), M::Seq(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if let Some(d) = first_difference(x, y, path) {
                    return Some(d);
                }
                path.truncate(len);
            }
            (a.len() != b.len()).then(|| format!("{path}: {} items, planned {}", b.len(), a.len()))
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: {b:?}, planned {a:?}")),
    }
}

fn internal(pos: Pos, what: String) -> YamlError {
    YamlError {
        pos,
        message: format!(
            "internal error: the output would not be what was planned: {what}; nothing was written — please report this with the input and config"
        ),
    }
}

/// Proves `out` is `src` plus what planning each document of `src` plans,
/// and that planning each document of `out` plans nothing. `readable` is
/// `src` as [`tolerant`] read it; `plan` plans one document (its text, root
/// and index), as the run did.
pub fn check(
    src: &str,
    readable: &str,
    out: &str,
    origin: Origin,
    plan: impl FnMut(&str, &Node) -> Result<Planned, YamlError>,
) -> Result<(), YamlError> {
    check_here(src, readable, out, origin, plan).map_err(|e| origin.place(e))
}

/// Where a checked text stands in the stream: its first document's index
/// and its first line (a region of the stream is checked on its own).
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub document: usize,
    pub line: usize,
}

impl Origin {
    /// An error found in the region, placed in the stream.
    fn place(self, mut e: YamlError) -> YamlError {
        e.pos.line += self.line - 1;
        e
    }
}

/// What checking one document's region found.
pub enum Region {
    Proved,
    /// Not proved on its own: check the whole stream, which either proves
    /// it (the region read differently alone: a directive or tag handle from
    /// before it) or reports what is wrong.
    Unproved,
}

/// Checks one document's region on its own: `out` is what was written for
/// the region `in_region` of the stream, which holds the document `root`;
/// `plans` is what was planned for it, and `plan_out` plans the output
/// document (which must plan nothing). Only the output is read again: the
/// input document is the one the stream was read as.
pub fn check_region(
    in_region: &str,
    out: &str,
    root: &Node,
    plans: &[PodPlan],
    tolerant_read: bool,
    origin: Origin,
    plan_out: impl FnOnce(&str, &Node) -> Result<Planned, YamlError>,
) -> Region {
    let proved = (|| -> Result<(), YamlError> {
        let out_readable = readable_as_input(out, tolerant_read);
        let mut roots = Vec::new();
        for doc in Documents::new(&out_readable) {
            roots.extend(doc?.root);
        }
        let [b] = roots.as_slice() else {
            return Err(internal(Pos { line: 1, col: 1 }, "not one document".into()));
        };
        document_is_input_plus_plan(in_region, out, origin.document, root, b, plans)?;
        second_run_changes_nothing(plan_out(out, b), b, origin.document)?;
        comments_kept(in_region, out)?;
        line_endings_kept(in_region, out)
    })();
    match proved {
        Ok(()) => Region::Proved,
        Err(_) => Region::Unproved,
    }
}

fn check_here(
    src: &str,
    readable: &str,
    out: &str,
    origin: Origin,
    mut plan: impl FnMut(&str, &Node) -> Result<Planned, YamlError>,
) -> Result<(), YamlError> {
    let start = Pos { line: 1, col: 1 };
    let out_readable = readable_as_input(out, !std::ptr::eq(readable, src));
    let mut outputs = Documents::new(&out_readable);
    let mut count = 0;
    for (index, input) in Documents::new(readable).enumerate() {
        // The input was read once already: it parses.
        let input = input?;
        count += 1;
        let output = match outputs.next() {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                return Err(internal(
                    e.pos,
                    format!("the output does not parse ({})", e.message),
                ))
            }
            None => {
                return Err(internal(
                    start,
                    format!("document {} is missing", index + 1),
                ))
            }
        };
        let (Some(a), Some(b)) = (&input.root, &output.root) else {
            if input.root.is_some() != output.root.is_some() {
                return Err(internal(
                    start,
                    format!("document {} changed emptiness", index + 1),
                ));
            }
            continue;
        };
        let plans = plan(src, a)?.plans;
        document_is_input_plus_plan(src, out, origin.document + index, a, b, &plans)?;
        second_run_changes_nothing(plan(out, b), b, origin.document + index)?;
    }
    match outputs.next() {
        None => {}
        Some(Err(e)) => {
            return Err(internal(
                e.pos,
                format!("the output does not parse ({})", e.message),
            ))
        }
        Some(Ok(_)) => {
            return Err(internal(
                start,
                format!("the output has more than the input's {count} documents"),
            ))
        }
    }
    comments_kept(src, out)?;
    line_endings_kept(src, out)
}

/// The output read as its input was: with go-yaml's tolerance only where the
/// input needed it (the injector never writes that form itself).
fn readable_as_input(out: &str, tolerant_read: bool) -> std::borrow::Cow<'_, str> {
    if tolerant_read {
        tolerant(out)
    } else {
        std::borrow::Cow::Borrowed(out)
    }
}

/// Planning the output document `b` again (`again`) must plan nothing:
/// otherwise a second run (a re-apply in CI, an Argo CD sync) would change it.
fn second_run_changes_nothing(
    again: Result<Planned, YamlError>,
    b: &Node,
    document: usize,
) -> Result<(), YamlError> {
    let again = again.map_err(|e| {
        internal(
            e.pos,
            format!("the output cannot be planned again ({})", e.message),
        )
    })?;
    if again.edits.is_empty() {
        return Ok(());
    }
    let objects: Vec<&str> = again.outcomes.iter().map(|o| o.object.as_str()).collect();
    Err(internal(
        b.pos,
        format!(
            "document {} ({}): a second run would change it again (not idempotent)",
            document + 1,
            objects.join(", ")
        ),
    ))
}

/// Document `index`: output `b` is input `a` with `plans` applied.
fn document_is_input_plus_plan(
    src: &str,
    out: &str,
    index: usize,
    a: &Node,
    b: &Node,
    plans: &[PodPlan],
) -> Result<(), YamlError> {
    if plans.is_empty() {
        if src[a.start..a.end] != out[b.start..b.end] {
            return Err(internal(
                b.pos,
                format!(
                    "document {}, in which nothing was planned, changed",
                    index + 1
                ),
            ));
        }
        return Ok(());
    }
    let mut want = of_node(a);
    for plan in plans {
        let spec = at_path(&mut want, &plan.spec).ok_or_else(|| {
            internal(
                a.pos,
                format!("{}: the planned pod spec is not there", plan.object),
            )
        })?;
        for change in &plan.changes {
            apply(spec, change).map_err(|e| internal(a.pos, format!("{}: {e}", plan.object)))?;
        }
    }
    let got = of_node(b);
    let mut path = String::new();
    match first_difference(&want, &got, &mut path) {
        None => Ok(()),
        Some(d) => {
            let object = plans.iter().map(|p| p.object.as_str()).collect::<Vec<_>>();
            Err(internal(
                b.pos,
                format!("document {} ({}), at {d}", index + 1, object.join(", ")),
            ))
        }
    }
}

/// Every comment line of the input is in the output, as often.
fn comments_kept(src: &str, out: &str) -> Result<(), YamlError> {
    let mut missing: HashMap<&str, i64> = HashMap::new();
    for line in src.lines().filter(|l| l.trim_start().starts_with('#')) {
        *missing.entry(line.trim_end()).or_default() += 1;
    }
    if missing.is_empty() {
        return Ok(());
    }
    for line in out.lines().filter(|l| l.trim_start().starts_with('#')) {
        if let Some(n) = missing.get_mut(line.trim_end()) {
            *n -= 1;
        }
    }
    match missing.iter().find(|(_, n)| **n > 0) {
        None => Ok(()),
        Some((line, _)) => {
            let at = src.lines().position(|l| l.trim_end() == *line).unwrap_or(0) + 1;
            Err(internal(
                Pos { line: at, col: 1 },
                format!("the comment line {line:?} would be lost"),
            ))
        }
    }
}

/// A file with CRLF line ends keeps them everywhere; one without gets none.
fn line_endings_kept(src: &str, out: &str) -> Result<(), YamlError> {
    let crlf = |t: &str| t.matches("\r\n").count();
    let lf = |t: &str| t.matches('\n').count();
    let (src_crlf, src_lf) = (crlf(src), lf(src));
    let (out_crlf, out_lf) = (crlf(out), lf(out));
    let start = Pos { line: 1, col: 1 };
    if src_lf > 0 && src_crlf == src_lf && out_crlf != out_lf {
        return Err(internal(
            start,
            "a line would end in LF in a CRLF file".into(),
        ));
    }
    if src_crlf == 0 && out_crlf > 0 {
        return Err(internal(
            start,
            "a line would end in CRLF in an LF file".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::reads_as_non_string as typed;

    #[test]
    fn plain_scalars_that_are_not_strings() {
        for t in [
            "true", "No", "~", "", "20000", "-1", "0.5", "1e3", "0x1F", ".inf", "1:20",
        ] {
            assert!(typed(t), "{t:?}");
        }
        for t in [
            "tcp",
            "inf",
            "nan",
            "10m",
            "--port=1",
            "/graceful-wait",
            "v1",
            "e1",
            "1.2.3.4a",
        ] {
            assert!(!typed(t), "{t:?}");
        }
    }
}
