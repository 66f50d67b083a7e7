//! The proof of one document, reading again only what changed.
//!
//! An edited document differs from its input in a few places: a `lifecycle`
//! entry added to a container, a mount added to a list. Reading the whole
//! output again to prove those few lines costs as much as the run itself.
//! Here each edit is given a *window*: whole lines of the document that hold
//! a run of a block collection's entries (a mapping's keys or a sequence's
//! `- ` items), from one entry's first line up to the next entry's first
//! line (or a less indented line). Only the windows of the output are read
//! again, each on its own; the output outside them must be the input's
//! bytes, unchanged.
//!
//! Why a window read on its own reads as it would in the whole document: in
//! block style, where a node ends and what it holds are decided by
//! indentation. The window's first line is an entry's first line, at the
//! entries' column, and is left as it was up to the entry's `:` (or all of
//! it, for a `- ` item), so the text before the window reads the same (its
//! last node looks ahead only at that line's indentation and first
//! characters). Every content line in the window is at that column or
//! deeper, so nothing in it closes the collection or anything around it, and
//! the line after the window is a content line at that column or less, which
//! ends in the whole document whatever the window's last node is, as the end
//! of the text ends it when the window is read alone (blank lines and
//! comments after the window are taken into it). A quoted scalar or flow
//! collection left open fails to read alone. So the whole output reads as
//! the input with the window's entries replaced by what the window reads
//! as: that tree is built (the input's tree, with those entries swapped and
//! every position after them moved), and the proof goes on with it exactly
//! as after a full read: its meaning is the input's with the plan applied,
//! and planning it again plans nothing.
//!
//! Where any of this does not hold — a flow collection, an anchor or alias
//! in the document, a tab in an indentation, go-yaml's tolerant reading, an
//! edit at the first entry of a collection whose first entry shares a line
//! with its parent (`- name: x`), windows that overlap — the caller reads
//! the whole output again.

use super::{comments_kept, line_endings_kept, second_run_changes_nothing, with_plans, Written};
use crate::apply::Applied;
use crate::error::Error;
use crate::yaml::edits::{dash_before, Edit};
use crate::yaml::lines;
use crate::yaml::meaning::{first_difference, Meaning};
use crate::yaml::tree::{colon_after, may_share};
use crate::yaml::{Documents, Kind, Node, Pos};

/// A run of a block collection's entries, and the lines they stand on.
#[derive(Clone, Debug)]
struct Window {
    /// From the document's root to the collection: the index of a
    /// mapping's entry (then its value) or of a sequence's item.
    path: Vec<usize>,
    /// The entries the window holds: none for text added between two
    /// entries (or after the last).
    entries: std::ops::Range<usize>,
    /// The window's lines in the input: from the first entry's line start
    /// to the start of the line after the last one (the same place, for
    /// text added between entries).
    start: usize,
    end: usize,
    /// The entries' column.
    column: usize,
    /// Where the first edit in it starts.
    first_edit: usize,
    /// The window's lines in the output, and how many more lines they
    /// are than in the input.
    out_start: usize,
    out_end: usize,
    more_lines: isize,
}

/// What proving by windows came to.
pub enum Windowed<'a> {
    Proved,
    /// The output does not read as the plan says; the caller checks the
    /// whole stream, which either proves it after all or reports what is
    /// wrong.
    Unproved,
    /// Windows do not apply here (anchors, a window that does not read on
    /// its own, …): the input's tree, handed back for the whole region's
    /// check.
    DoesNotApply(Node<'a>),
}

/// One entry of a block collection, for finding windows.
struct Entry<'n, 'a> {
    /// The start of the entry's first line.
    line: usize,
    /// The entry starts its line (only spaces before its key or dash).
    starts_line: bool,
    /// Where an edit on the entry's first line may start: past a key's `:`
    /// (a `- ` item's first line must stay as it is).
    editable_from: usize,
    /// What an edit inside the entry lands in: a mapping entry's value, a
    /// sequence's item.
    inner: &'n Node<'a>,
}

/// A block collection's entries, their column, and where its lines end.
struct Entries<'n, 'a> {
    list: Vec<Entry<'n, 'a>>,
    column: usize,
    /// The start of the line after the collection's last.
    end: usize,
}

impl Entries<'_, '_> {
    /// The start of entry `i`'s first line (past the last: the line after
    /// the collection).
    fn line(&self, i: usize) -> usize {
        self.list.get(i).map_or(self.end, |e| e.line)
    }
}

fn entries<'n, 'a>(src: &str, node: &'n Node<'a>) -> Option<Entries<'n, 'a>> {
    if node.flow || node.in_flow {
        return None;
    }
    let only_spaces = |from: usize, to: usize| src.as_bytes()[from..to].iter().all(|b| *b == b' ');
    let (list, head): (Vec<Entry>, usize) = match &node.kind {
        Kind::Map(pairs) => {
            let list = pairs
                .iter()
                .map(|(k, v)| {
                    let line = lines::start(src, k.start);
                    Entry {
                        line,
                        starts_line: only_spaces(line, k.start) && !k.explicit_key,
                        editable_from: colon_after(src, k.end).unwrap_or(usize::MAX),
                        inner: v,
                    }
                })
                .collect();
            (list, pairs.first()?.0.start)
        }
        Kind::Seq(items) => {
            let list = items
                .iter()
                .map(|i| {
                    let dash = dash_before(src, i.start);
                    let line = lines::start(src, dash.unwrap_or(i.start));
                    Entry {
                        line,
                        starts_line: dash.is_some_and(|d| only_spaces(line, d)),
                        editable_from: lines::after(src, line),
                        inner: i,
                    }
                })
                .collect();
            (list, dash_before(src, items.first()?.start)?)
        }
        _ => return None,
    };
    Some(Entries {
        list,
        column: head - lines::start(src, head),
        end: lines::after(src, node.end),
    })
}

/// The deepest window that holds `edit`, below `node` (reached by `path`).
fn window_for(
    src: &str,
    node: &Node,
    path: &mut Vec<usize>,
    edit: &Edit,
    region_end: usize,
) -> Option<Window> {
    let entries = entries(src, node)?;
    let (x, y) = (edit.start, edit.end);
    // A sequence's new item has the depth of its dash plus one; a mapping's
    // new key, its column.
    let entry_depth = entries.column + usize::from(matches!(node.kind, Kind::Seq(_)));
    let first = entries.list.iter().rposition(|e| e.line < x);
    // Text added at the end of an entry's lines is added to the entry when
    // it is written deeper than the entries.
    if let Some(i) = first.filter(|&i| y <= entries.line(i + 1)) {
        if x < entries.line(i + 1) || edit.depth() > entry_depth {
            path.push(i);
            if let Some(w) = window_for(src, entries.list[i].inner, path, edit, region_end) {
                return Some(w);
            }
            path.pop();
        }
    }
    // Text added between entries, or after the last, as entries.
    let next = first.map_or(0, |i| i + 1);
    if x == y && edit.depth() == entry_depth && x == entries.line(next) {
        return window_at(src, node, path, next..next, x, region_end);
    }
    let first = first?;
    let last = (first..entries.list.len()).find(|&i| y <= entries.line(i + 1))?;
    window_at(src, node, path, first..last + 1, x, region_end)
}

/// The window on the entries `range` of the collection `node` (at `path`),
/// whose first edit starts at `x`.
fn window_at(
    src: &str,
    node: &Node,
    path: &[usize],
    range: std::ops::Range<usize>,
    x: usize,
    region_end: usize,
) -> Option<Window> {
    let entries = entries(src, node)?;
    let column = entries.column;
    // The entries in the window and the one after it start their lines.
    let bounds = entries
        .list
        .get(range.start..(range.end + 1).min(entries.list.len()))?;
    if !bounds.iter().all(|e| e.starts_line) {
        return None;
    }
    let start = entries.line(range.start);
    // A window on entries keeps its first line as it was (up to a key's
    // `:`); added entries are new lines where the next entry's was.
    if !range.is_empty() && x < entries.list[range.start].editable_from {
        return None;
    }
    let mut end = entries.line(range.end);
    // The line after the window must end what the window holds: blank and
    // comment lines go into the window, and then the next line is at the
    // window's column or less (or the region ends).
    while end < region_end {
        match indentation(&src[end..lines::after(src, end)]) {
            Ok(None) => end = lines::after(src, end),
            Ok(Some(indent)) if indent <= column => break,
            _ => return None,
        }
    }
    Some(Window {
        path: path.to_vec(),
        entries: range,
        start,
        end,
        column,
        first_edit: x,
        out_start: 0,
        out_end: 0,
        more_lines: 0,
    })
}

/// One window that holds both `a` and `b` (which overlap or touch): on the
/// collection where their paths part.
fn union(src: &str, root: &Node, a: &Window, b: &Window, region_end: usize) -> Option<Window> {
    let common = a
        .path
        .iter()
        .zip(&b.path)
        .take_while(|(p, q)| p == q)
        .count();
    let path = &a.path[..common];
    let span = |w: &Window| match w.path.get(common) {
        Some(&i) => i..i + 1,
        None => w.entries.clone(),
    };
    let (a_span, b_span) = (span(a), span(b));
    let range = a_span.start.min(b_span.start)..a_span.end.max(b_span.end);
    let x = a.first_edit.min(b.first_edit);
    window_at(src, node_at(root, path), path, range, x, region_end)
}

/// A line's indentation in spaces, or `None` for a blank or comment line;
/// `Err` for a tab in the indentation of a content line.
fn indentation(line: &str) -> Result<Option<usize>, ()> {
    let line = lines::text(line);
    let content = line.trim_start_matches([' ', '\t']);
    if content.is_empty() || content.starts_with('#') {
        return Ok(None);
    }
    let lead = &line[..line.len() - content.len()];
    if lead.contains('\t') {
        return Err(());
    }
    Ok(Some(lead.len()))
}

/// Whether any node holds an anchor or is an alias.
fn anchors_or_aliases(node: &Node) -> bool {
    node.anchor.is_some()
        || match &node.kind {
            Kind::Alias(_) => true,
            Kind::Map(pairs) => pairs
                .iter()
                .any(|(k, v)| anchors_or_aliases(k) || anchors_or_aliases(v)),
            Kind::Seq(items) => items.iter().any(anchors_or_aliases),
            Kind::Scalar(..) => false,
        }
}

/// The windows of `edits` (sorted by start) in the region
/// `src[region.0..region.1]`, with where they are in `out`; `None` where
/// windows do not apply.
fn windows(
    src: &str,
    region: (usize, usize),
    root: &Node,
    edits: &[Edit],
    out: &str,
) -> Option<Vec<Window>> {
    let (region_start, region_end) = region;
    let mut found: Vec<Window> = Vec::new();
    for edit in edits {
        let mut w = window_for(src, root, &mut Vec::new(), edit, region_end)?;
        while let Some(prev) = found.pop_if(|prev| w.start <= prev.end) {
            w = union(src, root, &prev, &w, region_end)?;
        }
        found.push(w);
    }
    // Every edit in one window, past its first line's start; the output
    // between windows is the input's bytes.
    let mut shift: isize = 0;
    let mut edits = edits.iter().peekable();
    let (mut from, mut out_from) = (region_start, 0usize);
    for w in &mut found {
        let out_start = (w.start as isize - region_start as isize + shift) as usize;
        if out.get(out_from..out_start)? != &src[from..w.start] {
            return None;
        }
        while let Some(e) = edits.next_if(|e| e.start <= w.end) {
            let added = w.entries.is_empty() && e.start == w.start;
            if (e.start <= w.start && !added) || e.end > w.end {
                return None;
            }
            shift += e.text.len() as isize - (e.end - e.start) as isize;
        }
        w.out_start = out_start;
        w.out_end = (w.end as isize - region_start as isize + shift) as usize;
        w.more_lines = lines::breaks(out.get(w.out_start..w.out_end)?) as isize
            - lines::breaks(&src[w.start..w.end]) as isize;
        (from, out_from) = (w.end, w.out_end);
    }
    if edits.next().is_some() || out.get(out_from..)? != &src[from..region_end] {
        return None;
    }
    Some(found)
}

/// Proves what was `written` for the region that holds the document
/// `root`, by windows; `plan_out` plans the output document, as the run
/// plans.
pub fn check<'a>(
    written: &Written<'a>,
    root: Node<'a>,
    document: usize,
    plan_out: impl FnOnce(&str, &Node) -> Result<Applied, Error>,
) -> Windowed<'a> {
    let Written {
        src,
        region,
        out,
        edits,
        plans,
    } = *written;
    if may_share(src, &root) && anchors_or_aliases(&root) {
        return Windowed::DoesNotApply(root);
    }
    let Some(windows) = windows(src, region, &root, edits, out) else {
        return Windowed::DoesNotApply(root);
    };
    // Each window's output, read on its own, with the stream's lines: its
    // first is the input's line there plus what the windows before added
    // (counted from the root's line on, window after window).
    let mut read = Vec::with_capacity(windows.len());
    let (mut counted_to, mut line) = (lines::start(src, root.start), root.pos.line as isize);
    for w in &windows {
        let text = &out[w.out_start..w.out_end];
        let mut lines = text.split_inclusive('\n').map(indentation);
        if !lines.all(|l| matches!(l, Ok(None)) || matches!(l, Ok(Some(i)) if i >= w.column)) {
            return Windowed::DoesNotApply(root);
        }
        line += lines::breaks(&src[counted_to..w.start]) as isize;
        let first_line = line as usize;
        line += lines::breaks(&src[w.start..w.end]) as isize + w.more_lines;
        counted_to = w.end;
        let mut docs = Documents::starting_at(text, first_line);
        let (Some(Ok(doc)), None) = (docs.next(), docs.next()) else {
            return Windowed::DoesNotApply(root);
        };
        let Some(alone) = doc.root else {
            return Windowed::DoesNotApply(root);
        };
        let same_kind = matches!(
            (&alone.kind, &node_at(&root, &w.path).kind),
            (Kind::Map(_), Kind::Map(_)) | (Kind::Seq(_), Kind::Seq(_))
        );
        let at = Pos {
            line: first_line,
            col: w.column + 1,
        };
        if !same_kind || alone.flow || alone.pos != at || anchors_or_aliases(&alone) {
            return Windowed::DoesNotApply(root);
        }
        read.push(alone);
    }
    // From here on the output is proved or not: the whole-stream check
    // decides what is reported.
    // What the output means, against what the plan says it must: both
    // looked into only where a change or a window is (the rest is the
    // input's own nodes, the same on both sides).
    let differs = match with_plans(Meaning::lazy(&root), &root, plans) {
        Ok(want) => {
            let got = output_meaning(&root, &windows, &read);
            first_difference(&want, &got, &mut String::new()).is_some()
        }
        Err(_) => true,
    };
    if differs {
        return Windowed::Unproved;
    }
    let output = graft(region.0, root, &windows, read);
    let kept = windows.iter().all(|w| {
        let (a, b) = (&src[w.start..w.end], &out[w.out_start..w.out_end]);
        comments_kept(a, b).is_ok() && line_endings_kept(a, b).is_ok()
    });
    if !kept || second_run_changes_nothing(plan_out(out, &output), &output, document).is_err() {
        return Windowed::Unproved;
    }
    Windowed::Proved
}

/// What the output document means: the input's `root`, with each window's
/// entries in place of those it read as alone (`read`, a window's root).
fn output_meaning<'m>(root: &'m Node<'m>, windows: &[Window], read: &'m [Node<'m>]) -> Meaning<'m> {
    let mut got = Meaning::lazy(root);
    // Later windows first: a splice moves only the entries after it.
    for (w, alone) in windows.iter().zip(read).rev() {
        let mut at = &mut got;
        at.expand();
        for &i in &w.path {
            at = match at {
                Meaning::Map(entries) => &mut entries[i].1,
                Meaning::Seq(items) => &mut items[i],
                other => other,
            };
            at.expand();
        }
        match (at, &alone.kind) {
            (Meaning::Map(entries), Kind::Map(new)) => {
                let new = new
                    .iter()
                    .map(|(k, v)| (Meaning::lazy(k), Meaning::lazy(v)));
                entries.splice(w.entries.clone(), new);
            }
            (Meaning::Seq(items), Kind::Seq(new)) => {
                items.splice(w.entries.clone(), new.iter().map(Meaning::lazy));
            }
            // Read as its collection's kind (checked): not reached.
            (at, _) => *at = Meaning::Alias,
        }
    }
    got
}

fn node_at<'n, 'a>(root: &'n Node<'a>, path: &[usize]) -> &'n Node<'a> {
    path.iter().fold(root, |n, &i| match &n.kind {
        Kind::Map(pairs) => &pairs[i].1,
        Kind::Seq(items) => &items[i],
        _ => n,
    })
}

/// The output document's tree: the input's, with each window's entries
/// replaced by what the window read as alone, and every offset moved to
/// where it is in `out` (region-relative, as a full read of `out` gives)
/// and every line to the output's.
fn graft<'o>(
    region_start: usize,
    mut root: Node<'o>,
    windows: &[Window],
    read: Vec<Node<'o>>,
) -> Node<'o> {
    // Offsets and lines after a window move by what it added.
    let place = |at: usize| -> (usize, isize) {
        let (mut by, mut lines) = (0isize, 0isize);
        for w in windows.iter().take_while(|w| w.end <= at) {
            by += (w.out_end - w.out_start) as isize - (w.end - w.start) as isize;
            lines += w.more_lines;
        }
        ((at as isize - region_start as isize + by) as usize, lines)
    };
    move_all(&mut root, &place);
    // Later windows first: a splice changes the count of entries only after
    // the windows before it. A window's nodes were read from its own text,
    // with the stream's lines: only their offsets move.
    for (w, mut alone) in windows.iter().zip(read).rev() {
        move_all(&mut alone, &|at| (at + w.out_start, 0));
        splice(&mut root, &w.path, w.entries.clone(), alone.kind);
    }
    root
}

fn move_all(node: &mut Node, place: &impl Fn(usize) -> (usize, isize)) {
    let (start, lines) = place(node.start);
    node.start = start;
    node.end = place(node.end).0;
    node.pos.line = (node.pos.line as isize + lines) as usize;
    match &mut node.kind {
        Kind::Map(pairs) => pairs.iter_mut().for_each(|(k, v)| {
            move_all(k, place);
            move_all(v, place);
        }),
        Kind::Seq(items) => items.iter_mut().for_each(|i| move_all(i, place)),
        _ => {}
    }
}

/// Puts `entries` in place of the entries `range` of the collection at
/// `path`, and ends every collection on the way where its last entry ends
/// now.
fn splice<'o>(
    node: &mut Node<'o>,
    path: &[usize],
    range: std::ops::Range<usize>,
    entries: Kind<'o>,
) {
    match (path.split_first(), &mut node.kind, entries) {
        (Some((&i, rest)), Kind::Map(pairs), entries) => {
            splice(&mut pairs[i].1, rest, range, entries)
        }
        (Some((&i, rest)), Kind::Seq(items), entries) => {
            splice(&mut items[i], rest, range, entries)
        }
        (None, Kind::Map(pairs), Kind::Map(new)) => {
            pairs.splice(range, new);
        }
        (None, Kind::Seq(items), Kind::Seq(new)) => {
            items.splice(range, new);
        }
        _ => {}
    }
    node.end = node.block_end();
}

/// How many bytes of `out` windows read again, where windows apply: for
/// the test that they stay small.
#[cfg(test)]
pub(crate) fn read_again(
    src: &str,
    region: (usize, usize),
    root: &Node,
    edits: &[Edit],
    out: &str,
) -> Option<usize> {
    let found = windows(src, region, root, edits, out)?;
    Some(found.iter().map(|w| w.out_end - w.out_start).sum())
}
