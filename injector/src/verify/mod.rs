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

mod window;

#[cfg(test)]
pub(crate) use window::read_again;

use crate::apply::Applied;
use crate::error::Error;
use crate::plan::{Change, ContainerRef, Item, PodPlan};
use crate::yaml::edits::Edit;
use crate::yaml::lines;
use crate::yaml::meaning::{at_path, first_difference, of_node, of_value, Meaning};
use crate::yaml::{tolerant, Documents, Node, Pos, Read};
use std::collections::HashMap;

fn exec_pre_stop(command: &[String]) -> Meaning<'_> {
    Meaning::Map(vec![(
        Meaning::Str("exec".into()),
        Meaning::Map(vec![(
            Meaning::Str("command".into()),
            Meaning::Seq(command.iter().map(|w| Meaning::Str(w.into())).collect()),
        )]),
    )])
}

fn container<'m, 'a>(
    spec: &'m mut Meaning<'a>,
    at: &ContainerRef,
) -> Result<&'m mut Meaning<'a>, String> {
    match spec.get_mut(at.list) {
        Some(Meaning::Seq(items)) => items
            .iter_mut()
            .find(|c| c.name() == Some(at.name.as_str()))
            .map(Meaning::opened)
            .ok_or_else(|| format!("{} {} not found", at.list, at.name)),
        _ => Err(format!("no {} list", at.list)),
    }
}

/// The pod spec with one planned change applied, as the editor should have.
fn apply<'a>(spec: &mut Meaning<'a>, change: &'a Change) -> Result<(), String> {
    match change {
        Change::PreStop {
            container: at,
            command,
        } => {
            let c = container(spec, at)?;
            match c.get_mut("lifecycle") {
                Some(lifecycle @ Meaning::Map(_)) => {
                    lifecycle.set_key("preStop", exec_pre_stop(command))
                }
                _ => c.set_key(
                    "lifecycle",
                    Meaning::Map(vec![(
                        Meaning::Str("preStop".into()),
                        exec_pre_stop(command),
                    )]),
                ),
            }
        }
        Change::PreStopPrefix {
            container: at,
            items,
            replaced,
        } => {
            let command = container(spec, at)?
                .get_mut("lifecycle")
                .and_then(|l| l.get_mut("preStop"))
                .and_then(|p| p.get_mut("exec"))
                .and_then(|e| e.get_mut("command"));
            prefixed(command, items, *replaced)
        }
        Change::CommandPrefix {
            container: at,
            items,
            replaced,
        } => prefixed(container(spec, at)?.get_mut("command"), items, *replaced),
        Change::Mounts {
            container: at,
            items,
        } => {
            let c = container(spec, at)?;
            ensure_items(c, "volumeMounts", items, false)
        }
        Change::Volumes { items } => ensure_items(spec, "volumes", items, false),
        Change::InitContainer(init) => {
            ensure_items(spec, "initContainers", std::slice::from_ref(init), true)
        }
        Change::Container { name, item } => {
            spec.ensure_item("containers", name, None, of_value(item), false)
        }
        Change::ShareProcessNamespace => {
            spec.set_key("shareProcessNamespace", Meaning::Typed("true".into()))
        }
    }
}

/// The list under `key` holds every planned item, as the edit makes it.
fn ensure_items<'a>(
    parent: &mut Meaning<'a>,
    key: &str,
    items: &'a [Item],
    first: bool,
) -> Result<(), String> {
    for i in items {
        parent.ensure_item(
            key,
            &i.name,
            i.replaces.as_deref(),
            of_value(&i.item),
            first,
        )?;
    }
    Ok(())
}

/// A list with `items` in place of its first `replaced` items.
fn prefixed<'a>(
    list: Option<&mut Meaning<'a>>,
    items: &'a [String],
    replaced: usize,
) -> Result<(), String> {
    match list {
        Some(Meaning::Seq(existing)) if existing.len() > replaced => {
            existing.splice(0..replaced, items.iter().map(|i| Meaning::Str(i.into())));
            Ok(())
        }
        _ => Err("the list planned to take items in front is not there".into()),
    }
}

fn internal(pos: Option<Pos>, what: String) -> Error {
    Error::internal(
        pos,
        format!("the output would not be what was planned: {what}"),
    )
}

/// Proves `out` is `src` plus what planning each document of `src` plans,
/// and that planning each document of `out` plans nothing. `read` says how
/// the run read `src` (as written, or with go-yaml's tolerance, which the
/// output is then read with too); `plan` plans one document, given its text
/// and its root, as the run did.
pub fn check(
    src: &str,
    read: Read<'_>,
    out: &str,
    origin: Origin,
    plan: impl FnMut(&str, &Node) -> Result<Applied, Error>,
) -> Result<(), Error> {
    check_here(src, read, out, origin, plan).map_err(|e| origin.place(e))
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
    fn place(self, mut e: Error) -> Error {
        if let Some(pos) = &mut e.pos {
            pos.line += self.line - 1;
        }
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

/// One document's region of the stream and what was written for it.
#[derive(Clone, Copy)]
pub struct Written<'w> {
    /// The stream's text (or a piece of it), and the region's bounds in it.
    pub src: &'w str,
    pub region: (usize, usize),
    /// What was written for the region, with these edits (sorted, as
    /// applied).
    pub out: &'w str,
    pub edits: &'w [Edit],
    /// What was planned for the region's document.
    pub plans: &'w [PodPlan],
}

/// Checks one document's region on its own: what was `written` for the
/// region that holds the document `root`; `plan_out` plans the output
/// document (which must plan nothing). The input document is the one the
/// stream was read as; of the output, only the lines around the edits are
/// read again where that proves as much ([`window`]), all of it otherwise.
pub fn check_region<'a>(
    written: &Written<'a>,
    root: Node<'a>,
    read: Reading,
    origin: Origin,
    mut plan_out: impl FnMut(&str, &Node) -> Result<Applied, Error>,
) -> Region {
    let Written {
        src,
        region,
        out,
        plans,
        ..
    } = *written;
    // The next region starts at a line's start: this one must end as its
    // input did, with a line break (or be the end of the text).
    if src[..region.1].ends_with('\n') != out.ends_with('\n') {
        return Region::Unproved;
    }
    let root = match read {
        Reading::Windows => match window::check(written, root, origin.document, &mut plan_out) {
            window::Windowed::Proved => return Region::Proved,
            window::Windowed::Unproved => return Region::Unproved,
            window::Windowed::DoesNotApply(root) => root,
        },
        Reading::Whole | Reading::Tolerant => root,
    };
    let in_region = &src[region.0..region.1];
    let proved = (|| -> Result<(), Error> {
        let out_readable = readable_as_input(out, read == Reading::Tolerant);
        let mut roots = Vec::new();
        for doc in Documents::new(&out_readable) {
            roots.extend(doc?.root);
        }
        let [b] = roots.as_slice() else {
            return Err(internal(None, "not one document".into()));
        };
        document_is_input_plus_plan(in_region, out, origin.document, &root, b, plans)?;
        second_run_changes_nothing(plan_out(out, b), b, origin.document)?;
        comments_kept(in_region, out)?;
        line_endings_kept(in_region, out)
    })();
    match proved {
        Ok(()) => Region::Proved,
        Err(_) => Region::Unproved,
    }
}

/// How a region's output is read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// Only the lines around the edits, where that proves as much.
    Windows,
    /// All of it.
    Whole,
    /// All of it, with go-yaml's tolerance (the input needed it).
    Tolerant,
}

fn check_here(
    src: &str,
    read: Read<'_>,
    out: &str,
    origin: Origin,
    mut plan: impl FnMut(&str, &Node) -> Result<Applied, Error>,
) -> Result<(), Error> {
    let out_readable = readable_as_input(out, read.tolerant());
    let mut outputs = Documents::new(&out_readable);
    let mut count = 0;
    for (index, input) in Documents::new(read.text(src)).enumerate() {
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
            None => return Err(internal(None, format!("document {} is missing", index + 1))),
        };
        let (Some(a), Some(b)) = (&input.root, &output.root) else {
            if input.root.is_some() != output.root.is_some() {
                let pos = input.root.as_ref().or(output.root.as_ref()).map(|r| r.pos);
                return Err(internal(
                    pos,
                    format!("document {} changed emptiness", index + 1),
                ));
            }
            continue;
        };
        let plans = plan(src, a)?.pods;
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
        Some(Ok(extra)) => {
            return Err(internal(
                extra.root.map(|r| r.pos),
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
    again: Result<Applied, Error>,
    b: &Node,
    document: usize,
) -> Result<(), Error> {
    let again = again.map_err(|e| {
        internal(
            e.pos.or(Some(b.pos)),
            format!("the output cannot be planned again ({})", e.message),
        )
    })?;
    if again.edits.is_empty() {
        return Ok(());
    }
    let objects: Vec<&str> = again.outcomes.iter().map(|o| o.object.as_str()).collect();
    Err(internal(
        Some(b.pos),
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
) -> Result<(), Error> {
    if plans.is_empty() {
        if src[a.start..a.end] != out[b.start..b.end] {
            return Err(internal(
                Some(b.pos),
                format!(
                    "document {}, in which nothing was planned, changed",
                    index + 1
                ),
            ));
        }
        return Ok(());
    }
    let want = planned_meaning(a, plans)?;
    let got = of_node(b);
    let mut path = String::new();
    match first_difference(&want, &got, &mut path) {
        None => Ok(()),
        Some(d) => {
            let object = plans.iter().map(|p| p.object.as_str()).collect::<Vec<_>>();
            Err(internal(
                Some(b.pos),
                format!("document {} ({}), at {d}", index + 1, object.join(", ")),
            ))
        }
    }
}

/// What document `a` means with `plans` applied.
fn planned_meaning<'a>(a: &Node<'a>, plans: &'a [PodPlan]) -> Result<Meaning<'a>, Error> {
    with_plans(of_node(a), a, plans)
}

/// `want`, what document `a` means, with `plans` applied.
fn with_plans<'a>(
    mut want: Meaning<'a>,
    a: &Node,
    plans: &'a [PodPlan],
) -> Result<Meaning<'a>, Error> {
    for plan in plans {
        let spec = at_path(&mut want, &plan.spec).ok_or_else(|| {
            internal(
                Some(a.pos),
                format!("{}: the planned pod spec is not there", plan.object),
            )
        })?;
        for change in &plan.changes {
            apply(spec, change)
                .map_err(|e| internal(Some(a.pos), format!("{}: {e}", plan.object)))?;
        }
    }
    Ok(want)
}

/// Every comment line of the input is in the output, as often.
fn comments_kept(src: &str, out: &str) -> Result<(), Error> {
    if memchr::memchr(b'#', src.as_bytes()).is_none() {
        return Ok(());
    }
    match lines_missing(src, out, &[]) {
        None => Ok(()),
        // A `#` line inside a scalar (a block scalar's script) is content,
        // not a comment: the reader says which, read only on this rare path.
        Some(_) => match lines_missing(src, out, &scalar_lines(src)) {
            None => Ok(()),
            Some((line, at)) => Err(internal(
                Some(Pos { line: at, col: 1 }),
                format!("the comment line {line:?} would be lost"),
            )),
        },
    }
}

/// The numbers (0-based) of `src`'s `#` lines that lie inside a scalar, as
/// the reader reads `src`; none where it does not read.
fn scalar_lines(src: &str) -> Vec<usize> {
    let readable = tolerant(src);
    let roots: Vec<Node> = Documents::new(&readable)
        .filter_map(|d| d.ok().and_then(|d| d.root))
        .collect();
    let mut at = 0;
    let mut inside = Vec::new();
    for (n, line) in src.split_inclusive('\n').enumerate() {
        let text = at + line.len() - line.trim_start().len();
        at += line.len();
        if line.trim_start().starts_with('#')
            && roots.iter().any(|r| crate::yaml::tree::in_scalar(r, text))
        {
            inside.push(n);
        }
    }
    inside
}

/// The first comment line of `src` (leaving out the lines `content`
/// numbers) that `out` holds fewer times, with its 1-based line number.
fn lines_missing<'s>(src: &'s str, out: &str, content: &[usize]) -> Option<(&'s str, usize)> {
    let mut missing: HashMap<&str, i64> = HashMap::new();
    for (_, line) in src
        .lines()
        .enumerate()
        .filter(|(n, l)| l.trim_start().starts_with('#') && !content.contains(n))
    {
        *missing.entry(line.trim_end()).or_default() += 1;
    }
    if missing.is_empty() {
        return None;
    }
    for line in out.lines().filter(|l| l.trim_start().starts_with('#')) {
        if let Some(n) = missing.get_mut(line.trim_end()) {
            *n -= 1;
        }
    }
    let (line, _) = missing.iter().find(|(_, n)| **n > 0)?;
    let at = src.lines().position(|l| l.trim_end() == *line).unwrap_or(0) + 1;
    Some((line, at))
}

/// A file with CRLF line ends keeps them everywhere; one without gets none.
fn line_endings_kept(src: &str, out: &str) -> Result<(), Error> {
    let crlf = |t: &str| {
        if memchr::memchr(b'\r', t.as_bytes()).is_some() {
            t.matches("\r\n").count()
        } else {
            0
        }
    };
    let lf = lines::breaks;
    let (src_crlf, src_lf) = (crlf(src), lf(src));
    let (out_crlf, out_lf) = (crlf(out), lf(out));
    if src_lf > 0 && src_crlf == src_lf && out_crlf != out_lf {
        return Err(internal(
            None,
            "a line would end in LF in a CRLF file".into(),
        ));
    }
    if src_crlf == 0 && out_crlf > 0 {
        return Err(internal(
            None,
            "a line would end in CRLF in an LF file".into(),
        ));
    }
    Ok(())
}
