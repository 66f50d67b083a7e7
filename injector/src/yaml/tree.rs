//! A YAML document as a tree of nodes that know where they stand in the
//! source (byte offsets, line, column), built from `saphyr-parser` events.
//!
//! The injector never re-serialises a manifest: it reads this tree to decide,
//! then inserts or replaces text at these offsets, so everything it does not
//! change stays byte for byte as it was. The tree is built one document at a
//! time, so memory follows the largest document, not the whole stream.
//! Duplicate keys are rejected here (libyaml-based readers silently keep the
//! last one, and Kubernetes would then see something other than the file).
//!
//! Where a node ends matters as much as where it starts: text is inserted
//! after it. A flow collection ends just past its own closing bracket (also
//! after a trailing comma), a block scalar at the end of its last content
//! line (not at the next token, which may be in the next container).
//!
//! The go-yaml tolerances that widen what it reads are in [`super::tolerate`].

use super::lines::{self, Pos};
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};
use std::{borrow::Cow, collections::HashSet};

/// A step from a document's root to a node: a mapping's key or a sequence's
/// index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A node with an anchor (`&name`) that an alias (`*name`) repeats: an edit
/// inside it would change every place that uses it.
pub struct SharedNode {
    pub id: usize,
    pub start: usize,
    pub end: usize,
    pub anchor: Pos,
    pub alias: Pos,
}

/// Whether the document `root` of `src` may hold an anchor or alias: its
/// text has a `&` or `*` (most manifests have neither, and then no walk of
/// the tree is needed to know).
pub fn may_share(src: &str, root: &Node) -> bool {
    let from = lines::start(src, root.start);
    memchr::memchr2(b'&', b'*', &src.as_bytes()[from..root.end]).is_some()
}

/// The anchored nodes of a document that some alias refers to.
pub fn shared_nodes(root: &Node) -> Vec<SharedNode> {
    fn walk(
        node: &Node,
        anchors: &mut Vec<(usize, usize, usize, Pos)>,
        aliases: &mut Vec<(usize, Pos)>,
    ) {
        if let Some(id) = node.anchor {
            anchors.push((id, node.start, node.end, node.pos));
        }
        match &node.kind {
            Kind::Alias(id) => aliases.push((*id, node.pos)),
            Kind::Map(entries) => entries.iter().for_each(|(k, v)| {
                walk(k, anchors, aliases);
                walk(v, anchors, aliases);
            }),
            Kind::Seq(items) => items.iter().for_each(|i| walk(i, anchors, aliases)),
            Kind::Scalar(..) => {}
        }
    }
    let (mut anchors, mut aliases) = (Vec::new(), Vec::new());
    walk(root, &mut anchors, &mut aliases);
    anchors
        .into_iter()
        .filter_map(|(id, start, end, anchor)| {
            let alias = aliases.iter().find(|(a, _)| *a == id)?.1;
            Some(SharedNode {
                id,
                start,
                end,
                anchor,
                alias,
            })
        })
        .collect()
}

/// Whether a node's text spans a comment line: replacing the node would
/// lose it (a comment at the end of a line goes with that line). A line
/// that starts with `#` inside one of the node's scalars (a block scalar's
/// script, a quoted scalar's continuation) is the scalar's content, not a
/// comment.
pub fn holds_comment_line(src: &str, node: &Node) -> bool {
    let mut at = node.start;
    src[node.start..node.end]
        .split_inclusive('\n')
        .enumerate()
        .any(|(n, line)| {
            // Where the line's text begins: the `#`, if it is one.
            let text = at + line.len() - line.trim_start().len();
            at += line.len();
            n > 0 && line.trim_start().starts_with('#') && !in_scalar(node, text)
        })
}

/// Whether `offset` lies inside one of `node`'s scalars.
pub fn in_scalar(node: &Node, offset: usize) -> bool {
    if offset < node.start || offset >= node.end {
        return false;
    }
    match &node.kind {
        Kind::Scalar(..) => true,
        Kind::Map(entries) => entries
            .iter()
            .any(|(k, v)| in_scalar(k, offset) || in_scalar(v, offset)),
        Kind::Seq(items) => items.iter().any(|i| in_scalar(i, offset)),
        Kind::Alias(_) => false,
    }
}

/// Whether a comment line starts after the first line of `text`.
pub fn comment_line_in(text: &str) -> bool {
    text.lines()
        .skip(1)
        .any(|l| l.trim_start().starts_with('#'))
}

/// Just past the `:` that follows `at` (after spaces and tabs): where a
/// key's value indicator ends; `None` when no `:` follows.
pub fn colon_after(src: &str, at: usize) -> Option<usize> {
    let rest = &src[at..];
    let gap = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    rest[gap..].starts_with(':').then_some(at + gap + 1)
}

#[derive(Debug)]
pub enum Kind<'a> {
    Map(Vec<(Node<'a>, Node<'a>)>),
    Seq(Vec<Node<'a>>),
    Scalar(Cow<'a, str>, ScalarStyle),
    /// `*name`: the id of the anchor it refers to.
    Alias(usize),
}

#[derive(Debug)]
pub struct Node<'a> {
    pub kind: Kind<'a>,
    /// Byte offset of the node's first character.
    pub start: usize,
    /// Byte offset just past the node (for a block collection: past its last child).
    pub end: usize,
    pub pos: Pos,
    /// Written in flow style (`[...]`, `{...}`).
    pub flow: bool,
    /// Inside a flow collection (a JSON document is flow from its root):
    /// text added here must be flow text too.
    pub in_flow: bool,
    /// `&name` on this node: the anchor's id (aliases refer to it by id).
    pub anchor: Option<usize>,
    /// A mapping key written with the explicit `? ` indicator.
    pub explicit_key: bool,
}

impl<'a> Node<'a> {
    pub fn as_map(&self) -> Option<&[(Node<'a>, Node<'a>)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node<'a>]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// YAML's null: a plain scalar that is empty, `~`, or `null` (as the
    /// core schema writes it: `null`, `Null`, `NULL`). A quoted `"null"` is a
    /// string. The one null test of the injector.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(t, ScalarStyle::Plain)
            if matches!(t.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entry(key).map(|(_, v)| v)
    }

    pub fn entry(&self, key: &str) -> Option<&(Node<'a>, Node<'a>)> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key))
    }

    /// The mapping in the list under `key` whose `name` is `name` (a
    /// container, a volume, a port, an environment variable).
    pub fn item_named(&self, key: &str, name: &str) -> Option<&Node<'a>> {
        self.get(key)?
            .as_seq()?
            .iter()
            .find(|i| i.get("name").and_then(Node::as_str) == Some(name))
    }

    /// `a.b.c` through nested mappings.
    pub fn path(&self, keys: &[&str]) -> Option<&Node<'a>> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    /// Where a block collection ends: where its last entry (a mapping's
    /// value) or item ends, or at its start when it has none.
    pub fn block_end(&self) -> usize {
        match &self.kind {
            Kind::Map(pairs) => pairs.last().map_or(self.start, |(_, v)| v.end),
            Kind::Seq(items) => items.last().map_or(self.start, |i| i.end),
            _ => self.end,
        }
    }

    /// The node `steps` lead to from this one.
    pub fn at(&self, steps: &[Step]) -> Option<&Node<'a>> {
        steps.iter().try_fold(self, |n, step| match step {
            Step::Key(k) => n.get(k),
            Step::Index(i) => n.as_seq()?.get(*i),
        })
    }
}

/// A problem in the YAML itself, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// `None` where the error is about the text as a whole.
    pub pos: Option<Pos>,
    pub message: String,
}

/// `LINE:COL: message`, or the message alone for the text as a whole.
impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pos {
            Some(pos) => write!(f, "{pos}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One document of a stream (`None`: an empty document).
pub struct Document<'a> {
    pub root: Option<Node<'a>>,
}

/// Char index to byte offset; identity for ASCII input, checkpoints otherwise.
struct Offsets<'a> {
    src: &'a str,
    ascii: bool,
    checkpoints: Vec<usize>,
}

const STRIDE: usize = 1024;

impl<'a> Offsets<'a> {
    fn new(src: &'a str) -> Self {
        let ascii = src.is_ascii();
        let checkpoints = if ascii {
            Vec::new()
        } else {
            src.char_indices().step_by(STRIDE).map(|(b, _)| b).collect()
        };
        Self {
            src,
            ascii,
            checkpoints,
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.src.len());
        }
        let (cp, rest) = (char_index / STRIDE, char_index % STRIDE);
        let Some(&base) = self.checkpoints.get(cp) else {
            return self.src.len();
        };
        self.src[base..]
            .char_indices()
            .nth(rest)
            .map_or(self.src.len(), |(b, _)| base + b)
    }
}

/// Parses every document of `src`, handing each to `each` as soon as it is
/// complete. Stops at the first YAML error.
pub fn for_each_document<'a>(
    src: &'a str,
    mut each: impl FnMut(Document<'a>) -> Result<(), YamlError>,
) -> Result<(), YamlError> {
    for doc in Documents::new(src) {
        each(doc?)?;
    }
    Ok(())
}

/// The documents of a stream, one at a time: only the current one is held,
/// so two streams (an input and its output) can be walked side by side.
pub struct Documents<'a> {
    src: &'a str,
    offsets: Offsets<'a>,
    /// Its lines, from the stream line it starts on (1 unless it is a piece
    /// of one).
    lines: lines::Index<'a>,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    stack: Vec<Open<'a>>,
    root: Option<Node<'a>>,
    failed: bool,
}

impl<'a> Documents<'a> {
    /// `src` as [`tolerant`](super::tolerate::tolerant) returns it; positions are reported as lines
    /// and columns of `src`, which the tolerant reading does not move.
    pub fn new(src: &'a str) -> Self {
        Documents::starting_at(src, 1)
    }

    /// [`Documents::new`] for a piece of a longer stream that starts on the
    /// stream's line `first_line`: every position (of nodes, in errors and
    /// in their messages) is a line of the stream.
    pub fn starting_at(src: &'a str, first_line: usize) -> Self {
        Documents {
            src,
            offsets: Offsets::new(src),
            lines: lines::Index::new(src, first_line),
            parser: Parser::new_from_str(src),
            stack: Vec::new(),
            root: None,
            failed: false,
        }
    }

    /// A failure with where it happened and, when it happened inside a flow
    /// collection that is still open, where that collection was opened.
    fn fail(&mut self, e: &ScanError) -> YamlError {
        self.failed = true;
        let mut err = scan_error(e);
        err.pos = err.pos.map(|p| p.in_stream(self.lines.first_line()));
        let open_flow = self.stack.iter().rev().find_map(|o| match o {
            Open::Map { node, .. } | Open::Seq { node, .. } if node.flow => Some(node),
            _ => None,
        });
        if let Some(node) = open_flow {
            let bracket = &self.src[node.start..node.start + 1];
            err.message = format!(
                "{} (inside the {bracket} opened at {}:{}, which is not closed before this point)",
                err.message, node.pos.line, node.pos.col
            );
        }
        err
    }
}

impl<'a> Iterator for Documents<'a> {
    type Item = Result<Document<'a>, YamlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let (event, span) = match self.parser.next()? {
                Ok(e) => e,
                Err(e) => return Some(Err(self.fail(&e))),
            };
            match event {
                Event::DocumentStart(_) => self.root = None,
                Event::DocumentEnd => {
                    return Some(Ok(Document {
                        root: self.root.take(),
                    }))
                }
                Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
                other => {
                    let mut builder = Builder {
                        src: self.src,
                        offsets: &self.offsets,
                        lines: &self.lines,
                        stack: &mut self.stack,
                    };
                    match builder.event(other, span) {
                        Ok(Some(done)) => self.root = Some(done),
                        Ok(None) => {}
                        Err(e) => {
                            self.failed = true;
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
    }
}

fn scan_error(e: &ScanError) -> YamlError {
    let m = e.marker();
    let message = match e.info() {
        m if m.contains("unknown anchor") => {
            "an alias (*) names an anchor (&) that is not defined before it in this document; define the anchor or write the value out".to_string()
        }
        m => m.to_string(),
    };
    YamlError {
        pos: Some(Pos {
            line: m.line(),
            col: m.col() + 1,
        }),
        message,
    }
}

/// Up to this many keys, a mapping's duplicates are found by looking
/// through its keys.
const FEW_KEYS: usize = 16;

enum Open<'a> {
    Map {
        node: Node<'a>,
        entries: Vec<(Node<'a>, Node<'a>)>,
        key: Option<Node<'a>>,
        /// Keys so far (borrowed from the text where the parser could),
        /// once the mapping has [`FEW_KEYS`] of them.
        seen: HashSet<Cow<'a, str>>,
    },
    Seq {
        node: Node<'a>,
        items: Vec<Node<'a>>,
    },
}

struct Builder<'a, 'o> {
    src: &'a str,
    offsets: &'o Offsets<'a>,
    lines: &'o lines::Index<'a>,
    stack: &'o mut Vec<Open<'a>>,
}

impl<'a> Builder<'a, '_> {
    fn node(&self, kind: Kind<'a>, span: &Span, anchor: usize) -> Node<'a> {
        let mut start = self.offsets.byte(span.start.index());
        let mut end = self.offsets.byte(span.end.index());
        // A collection's span may start at its properties (`!tag`, `&anchor`);
        // whether it is flow, and where its bracket is, comes after them.
        let collection = matches!(kind, Kind::Map(_) | Kind::Seq(_));
        let content = if collection {
            after_properties(self.src, start)
        } else {
            start
        };
        let flow = collection && matches!(self.src.as_bytes().get(content), Some(b'[' | b'{'));
        if flow {
            start = content;
        }
        match &kind {
            Kind::Scalar(_, ScalarStyle::Literal | ScalarStyle::Folded) => {
                (start, end) = block_scalar_span(self.src, start, end);
            }
            // An implicit null (`key:` with nothing, `{a}`) has no text; the
            // parser's span may cover the next token (a `}`), which is not it.
            Kind::Scalar(v, ScalarStyle::Plain) if v.is_empty() => end = start,
            _ => {}
        }
        let in_flow = self.stack.iter().any(|o| match o {
            Open::Map { node, .. } | Open::Seq { node, .. } => node.flow,
        });
        Node {
            kind,
            start,
            end,
            pos: self.lines.pos(start),
            flow,
            in_flow,
            anchor: (anchor != 0).then_some(anchor),
            explicit_key: false,
        }
    }

    /// Feeds one event; returns the document's root when it is complete.
    /// One parser event: a collection opens, or a node is complete and goes
    /// into the collection it belongs to. Returns the document's root once
    /// that is complete.
    fn event(&mut self, event: Event<'a>, span: Span) -> Result<Option<Node<'a>>, YamlError> {
        let done = match event {
            Event::Scalar(value, style, anchor, _) => {
                self.node(Kind::Scalar(value, style), &span, anchor)
            }
            Event::Alias(id) => self.node(Kind::Alias(id), &span, 0),
            Event::MappingStart(anchor, _) => {
                let node = self.node(Kind::Map(Vec::new()), &span, anchor);
                self.stack.push(Open::Map {
                    node,
                    entries: Vec::new(),
                    key: None,
                    seen: HashSet::new(),
                });
                return Ok(None);
            }
            Event::SequenceStart(anchor, _) => {
                let node = self.node(Kind::Seq(Vec::new()), &span, anchor);
                self.stack.push(Open::Seq {
                    node,
                    items: Vec::new(),
                });
                return Ok(None);
            }
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => return Ok(None),
        };
        self.attach(done)
    }

    /// The innermost open collection, complete: its children in place and
    /// its end where its text ends.
    fn close(&mut self) -> Node<'a> {
        let mut node = match self.stack.pop() {
            Some(Open::Map {
                mut node, entries, ..
            }) => {
                node.kind = Kind::Map(entries);
                node
            }
            Some(Open::Seq { mut node, items }) => {
                node.kind = Kind::Seq(items);
                node
            }
            None => unreachable!("the parser balances collection events"),
        };
        node.end = if node.flow {
            flow_end(self.src, node.start)
        } else {
            node.block_end()
        };
        node
    }

    /// A complete node into its parent: the next item of a sequence, a
    /// mapping's next key or the value of its last key; with no parent, it
    /// is the root.
    fn attach(&mut self, done: Node<'a>) -> Result<Option<Node<'a>>, YamlError> {
        match self.stack.last_mut() {
            None => return Ok(Some(done)),
            Some(Open::Seq { items, .. }) => items.push(done),
            Some(Open::Map {
                entries, key, seen, ..
            }) => match key.take() {
                None => *key = Some(new_key(self.src, done, entries, seen)?),
                Some(k) => {
                    let value = value_after(self.src, self.lines, &k, done);
                    entries.push((k, value));
                }
            },
        }
        Ok(None)
    }
}

/// `key` as the next key of a mapping that holds `entries`: refused when the
/// mapping has it already, marked when it is explicit (`? key`).
fn new_key<'a>(
    src: &str,
    mut key: Node<'a>,
    entries: &[(Node<'a>, Node<'a>)],
    seen: &mut HashSet<Cow<'a, str>>,
) -> Result<Node<'a>, YamlError> {
    if let Kind::Scalar(k, _) = &key.kind {
        // Most mappings are small: a look through their keys costs less than
        // hashing; a large one keeps a set.
        let duplicate = if entries.len() < FEW_KEYS {
            entries.iter().any(|(e, _)| e.as_str() == Some(k))
        } else {
            if seen.is_empty() {
                seen.extend(entries.iter().filter_map(|(e, _)| match &e.kind {
                    Kind::Scalar(e, _) => Some(e.clone()),
                    _ => None,
                }));
            }
            !seen.insert(k.clone())
        };
        if duplicate {
            return Err(YamlError {
                pos: Some(key.pos),
                message: format!("duplicate key '{k}' in this mapping; Kubernetes would keep only one of them — remove the other"),
            });
        }
    }
    key.explicit_key = src.as_bytes()[..key.start]
        .iter()
        .rev()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        == Some(&b'?');
    Ok(key)
}

/// `value` as the value of `key`. An implicit null (`key:` then nothing)
/// stands right after its key's `:`, not at the next token where the parser
/// puts it.
fn value_after<'a>(src: &str, lines: &lines::Index, key: &Node, mut value: Node<'a>) -> Node<'a> {
    if matches!(&value.kind, Kind::Scalar(v, ScalarStyle::Plain) if v.is_empty()) {
        if let Some(colon) = colon_after(src, key.end) {
            value.start = colon;
            value.end = colon;
            value.pos = lines.pos(colon);
        }
    }
    value
}

/// Where a node's content starts, past its properties (`!tag`, `&anchor`,
/// in any order) and the white space after them.
fn after_properties(src: &str, mut at: usize) -> usize {
    let bytes = src.as_bytes();
    while matches!(bytes.get(at), Some(b'!' | b'&')) {
        while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
    }
    at
}

/// Just past the bracket that closes the flow collection opening at `start`
/// (quoted strings and comments skipped), wherever the parser's last token
/// was: after `{a: 1,}` it is past the `}`, not at the comma.
fn flow_end(src: &str, start: usize) -> usize {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            // A quote opens a scalar only where a token starts: `4.0"` is a
            // plain scalar with a quote in it.
            b'"' | b'\'' if !quote_may_open(bytes, start, i) => {}
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' => {
                i += 1;
                // '' inside a single-quoted scalar is an escaped quote.
                while i < bytes.len() && !(bytes[i] == b'\'' && bytes.get(i + 1) != Some(&b'\'')) {
                    i += if bytes[i] == b'\'' { 2 } else { 1 };
                }
            }
            b'#' if i > 0 && bytes[i - 1].is_ascii_whitespace() => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    src.len()
}

/// Whether the quote at `at` starts a quoted scalar: only where a scalar
/// starts — after `[`, `{`, `,` or `:` (and white space) — not inside a plain
/// scalar (`me 'quote`, `4.0"`).
fn quote_may_open(bytes: &[u8], start: usize, at: usize) -> bool {
    bytes[start..at]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|b| matches!(b, b'[' | b'{' | b',' | b':'))
}

/// The span of a block scalar's text, ending at the end of its last content
/// line (the parser's span runs on to the next token, past blank lines and
/// comments, into the next item). The span starts at the first content line
/// (or at the `|`/`>` header); content lines are indented at least as deep
/// as the first one, which is deeper than the scalar's parent (column 0 only
/// at a document's root), and a less indented line (a comment, the next key)
/// ends the scalar. `|+`/`>+` keep their trailing blank lines, which are
/// content then. An empty scalar is at the end of its header.
fn block_scalar_span(src: &str, start: usize, span_end: usize) -> (usize, usize) {
    let header = src[..start].trim_end_matches([' ', '\t', '\r', '\n']);
    let header_line = &src[lines::start(src, header.len())..header.len()];
    let at_header = matches!(src.as_bytes().get(start), Some(b'|' | b'>'));
    let header_text = if at_header {
        src[start..].lines().next().unwrap_or("")
    } else {
        header_line
    };
    let indicator = header_text
        .rsplit(['|', '>'])
        .next()
        .unwrap_or("")
        .split('#')
        .next()
        .unwrap_or("");
    let keep = indicator.contains('+');
    // An explicit indentation indicator fixes the content's indentation:
    // the header line's own plus N (the first line may be indented deeper).
    let header_line_start = if at_header {
        lines::start(src, start)
    } else {
        lines::start(src, header.len())
    };
    let header_indent = lines::indentation(&src[header_line_start..]);
    let mut indent = indicator
        .chars()
        .find_map(|c| c.to_digit(10))
        .map(|n| header_indent + n as usize);
    // Content is indented deeper than the node the scalar belongs to; only a
    // scalar at a document's root may have it at column 0. A first line
    // that is not deeper ends an empty scalar (`- |-` with nothing after it).
    let root_scalar = header_indent == 0
        && (header_text.trim_start().starts_with(['|', '>']) || header_text.starts_with("---"));
    let deeper_than = if root_scalar { 0 } else { header_indent + 1 };
    let mut at = if at_header {
        lines::after(src, start)
    } else {
        lines::start(src, start)
    };
    let mut end = if at_header {
        start + header_text.trim_end().len()
    } else {
        start
    };
    while at < span_end.max(start + 1) && at < src.len() {
        let line_end = lines::end(src, at);
        let text = lines::text(&src[at..line_end]);
        let content = text.trim_start_matches(' ');
        if !content.is_empty() {
            let this = text.len() - content.len();
            if indent.is_some_and(|i| this < i) || (indent.is_none() && this < deeper_than) {
                break; // a less indented line: the scalar ended before it
            }
            indent.get_or_insert(this);
            end = at + text.trim_end().len();
        } else if keep && indent.is_some() {
            end = at + text.len();
        }
        at = line_end + 1;
    }
    // An empty scalar (`- |-` and nothing deeper after it): the parser puts
    // it at the next token, on a later line; it is at the end of its header.
    if !at_header && end == start && header.len() < start {
        return (header.len(), header.len());
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// YAML's nulls are plain: the core schema's spellings and the empty
    /// value; quoted, each is a string.
    #[test]
    fn nulls_are_plain() {
        let src = "a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: \"null\"\ng: 'null'\nh: nil\ni: []\n";
        let root = Documents::new(src).next().unwrap().unwrap().root.unwrap();
        let null = |k: &str| root.get(k).unwrap().is_null();
        for k in ["a", "b", "c", "d", "e"] {
            assert!(null(k), "{k}");
        }
        for k in ["f", "g", "h", "i"] {
            assert!(!null(k), "{k}");
        }
    }

    /// A `#` line is a comment where the reader finds no scalar around it:
    /// a block scalar's script lines and a quoted scalar's continuation are
    /// content.
    #[test]
    fn comment_lines_are_the_ones_outside_scalars() {
        let holds = |src: &str| {
            let doc = Documents::new(src).next().unwrap().unwrap();
            let root = doc.root.unwrap();
            let pre_stop = root.get("preStop").unwrap();
            holds_comment_line(src, pre_stop)
        };
        let script = "preStop:\n  exec:\n    command:\n    - /bin/sh\n    - -c\n    - |\n      # drain first\n      curl -X POST localhost:15000/drain\n      # then wait\n      sleep 5\n";
        assert!(!holds(script), "a script's # lines are its content");
        let quoted =
            "preStop:\n  exec:\n    command: [\"/bin/sh\", \"-c\", \"echo a\n      # b\"]\n";
        assert!(!holds(quoted), "a quoted scalar's continuation is content");
        let between = "preStop:\n  exec:\n    command:\n    - /bin/sh\n    # keep this\n    - -c\n    - sleep 5\n";
        assert!(holds(between), "a comment between the items");
        let above = "preStop:\n  exec:\n    # the mesh's drain\n    command: [pilot-agent, request, POST, drain]\n";
        assert!(holds(above), "a comment inside the hook, above its command");
    }

    /// Every node's line and column are those of its first byte, however
    /// far apart (and in whatever order) the nodes are asked for.
    #[test]
    fn positions_are_those_of_the_first_byte() {
        fn walk(src: &str, node: &Node, first_line: usize, seen: &mut usize) {
            let before = &src[..node.start];
            let line = before.matches('\n').count() + first_line;
            let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
            assert_eq!(node.pos, Pos { line, col }, "node at byte {}", node.start);
            *seen += 1;
            match &node.kind {
                Kind::Map(entries) => entries.iter().for_each(|(k, v)| {
                    walk(src, k, first_line, seen);
                    walk(src, v, first_line, seen);
                }),
                Kind::Seq(items) => items.iter().for_each(|i| walk(src, i, first_line, seen)),
                _ => {}
            }
        }
        let mut src = String::from("a:\n  b: |-\n\n  c:\n");
        for i in 0..40 {
            src.push_str(&format!(
                "  k{i}: ünï {i}\n  l{i}:\n  - |\n    x\n  - [{{m: {i}}}]\n\n\n"
            ));
        }
        src.push_str("---\nz: >\n\n  folded\n");
        let mut seen = 0;
        for doc in Documents::starting_at(&src, 7) {
            walk(&src, &doc.unwrap().root.unwrap(), 7, &mut seen);
        }
        assert!(seen > 300, "{seen} nodes");
    }

    fn docs(src: &str) -> Vec<Option<(usize, usize)>> {
        let mut out = Vec::new();
        for_each_document(src, |d| {
            out.push(d.root.map(|r| (r.start, r.end)));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn an_empty_block_scalar_ends_at_its_header() {
        // Found by fuzzing: the parser puts an empty `|-` at the next token,
        // the less indented key, so the list seemed to run on past that key
        // and what was added after the list landed on the wrong line.
        let src = "a:\n  b:\n      - name: x\n      - |-\n  c: 1\n";
        for_each_document(src, |d| {
            let root = d.root.unwrap();
            let b = root.path(&["a", "b"]).unwrap();
            let empty = &b.as_seq().unwrap()[1];
            assert_eq!((empty.start, empty.end), (34, 34), "just after `|-`");
            assert_eq!(&src[b.start..b.end], "- name: x\n      - |-");
            Ok(())
        })
        .unwrap();
        // A scalar at the root may have its content at column 0.
        let src = "--- |\ntext\n";
        for_each_document(src, |d| {
            let root = d.root.unwrap();
            assert_eq!(&src[root.start..root.end], "text");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn spans_cover_block_and_flow_nodes() {
        let src = "a:\n  b: 1   # c\n  s:\n  - x: 1\n    y: [1, 2]\n  f: {k: v}\n";
        for_each_document(src, |d| {
            let root = d.root.unwrap();
            let a = root.get("a").unwrap();
            assert_eq!(
                &src[a.start..a.end],
                "b: 1   # c\n  s:\n  - x: 1\n    y: [1, 2]\n  f: {k: v}"
            );
            let y = a.path(&["s"]).unwrap().as_seq().unwrap()[0]
                .get("y")
                .unwrap();
            assert!(y.flow);
            assert_eq!(&src[y.start..y.end], "[1, 2]");
            assert_eq!(a.get("f").unwrap().pos, Pos { line: 6, col: 6 });
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn multi_document_streams_and_utf8() {
        assert_eq!(docs("a: 1\n---\nb: 2\n"), [Some((0, 4)), Some((9, 13))]);
        let src = "é: ü\nk: v\n";
        for_each_document(src, |d| {
            let k = d.root.unwrap();
            let (key, v) = &k.as_map().unwrap()[1];
            assert_eq!(&src[key.start..v.end], "k: v");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let err = for_each_document("a: 1\nb:\n  c: 1\n  c: 2\n", |_| Ok(())).unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 4, col: 3 }));
        assert!(err.message.contains("duplicate key 'c'"));
        let err = for_each_document("a: [1, 2\nb: 3\n", |_| Ok(())).unwrap_err();
        assert!(err.pos.is_some_and(|p| p.line >= 1), "{err:?}");
    }

    /// Spans the fuzzer showed wrong: each node ends where its own text ends.
    #[test]
    fn nodes_end_where_their_text_ends() {
        let text = |src: &str, path: &[&str]| {
            let mut out = None;
            for_each_document(src, |d| {
                let n = d.root.unwrap();
                let n = n.path(path).unwrap();
                out = Some(src[n.start..n.end].to_string());
                Ok(())
            })
            .unwrap();
            out.unwrap()
        };
        // An implicit null has no text (its span used to cover the `}`).
        assert_eq!(text("{x: 1, b}\n", &["b"]), "");
        assert_eq!(text("a:\nb: 1\n", &["a"]), "");
        // A quote inside a plain scalar does not open a string.
        assert_eq!(text("m: {k: 4.0\"}\nn: 1\n", &["m"]), "{k: 4.0\"}");
        assert_eq!(
            text("m: {k: me 'x, b: 1}\nn: 1\n", &["m"]),
            "{k: me 'x, b: 1}"
        );
        assert_eq!(
            text("m: {k: 'a ''b'' c', b: 1}\n", &["m"]),
            "{k: 'a ''b'' c', b: 1}"
        );
        // A trailing comma, and the bracket after it.
        assert_eq!(text("m: {a: [1, 2,],}\n", &["m"]), "{a: [1, 2,],}");
        // An explicit indentation indicator: the less indented line is content.
        let src = "s:\n  v: |2-\n      deeper\n    content\n  w: 1\n";
        assert_eq!(text(src, &["s", "v"]).trim_start(), "deeper\n    content");
        // Clipped and kept chomping around blank lines and a lower comment.
        assert_eq!(text("a: |\n  x\n\nb: 1\n", &["a"]).trim_start(), "x");
        assert_eq!(text("a: |+\n  x\n\nb: 1\n", &["a"]).trim_start(), "x\n");
        assert_eq!(text("a: >-\n  x\n# c\nb: 1\n", &["a"]).trim_start(), "x");
    }
}
