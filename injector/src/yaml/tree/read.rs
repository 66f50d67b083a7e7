//! Reading: the parser's events, one document at a time, into nodes with
//! their byte offsets, lines and columns; duplicate keys refused.

use super::spans::{after_properties, block_scalar_span, flow_end};
use super::{colon_after, Document, Kind, Node, YamlError};
use crate::yaml::lines::{self, Pos};
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};
use std::{borrow::Cow, collections::HashSet};

/// Char index to byte offset; identity for ASCII input, checkpoints otherwise.
struct Offsets<'a> {
    src: &'a str,
    ascii: bool,
    checkpoints: Vec<usize>,
}

const STRIDE: usize = 1024;

impl<'a> Offsets<'a> {
    /// `ascii`: whether `src` is ASCII, as its [`lines::Index`] found.
    fn new(src: &'a str, ascii: bool) -> Self {
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
    /// `src` as [`tolerant`](crate::yaml::tolerate::tolerant) returns it; positions are reported as lines
    /// and columns of `src`, which the tolerant reading does not move.
    pub fn new(src: &'a str) -> Self {
        Documents::starting_at(src, 1)
    }

    /// [`Documents::new`] for a piece of a longer stream that starts on the
    /// stream's line `first_line`: every position (of nodes, in errors and
    /// in their messages) is a line of the stream.
    pub fn starting_at(src: &'a str, first_line: usize) -> Self {
        let lines = lines::Index::new(src, first_line);
        Documents {
            src,
            offsets: Offsets::new(src, lines.ascii()),
            lines,
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
