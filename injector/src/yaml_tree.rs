//! A YAML document as a tree of nodes that know where they stand in the
//! source (byte offsets, line, column), built from `saphyr-parser` events.
//!
//! The injector never re-serialises a manifest: it reads this tree to decide,
//! then inserts or replaces text at these offsets, so everything it does not
//! change stays byte for byte as it was. The tree is built one document at a
//! time, so memory follows the largest document, not the whole stream.
//! Duplicate keys are rejected here (libyaml-based readers silently keep the
//! last one, and Kubernetes would then see something other than the file).

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};
use std::{borrow::Cow, collections::HashSet, fmt};

/// Where something is: 1-based line and column, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Debug)]
pub enum Kind<'a> {
    Map(Vec<(Node<'a>, Node<'a>)>),
    Seq(Vec<Node<'a>>),
    Scalar(Cow<'a, str>, ScalarStyle),
    Alias,
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

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entry(key).map(|(_, v)| v)
    }

    pub fn entry(&self, key: &str) -> Option<&(Node<'a>, Node<'a>)> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key))
    }

    /// `a.b.c` through nested mappings.
    pub fn path(&self, keys: &[&str]) -> Option<&Node<'a>> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    /// A block scalar (`|`, `>`) runs to the start of the next token; its text ends
    /// at the last line break inside that run.
    pub fn is_block_scalar(&self) -> bool {
        matches!(
            self.kind,
            Kind::Scalar(_, ScalarStyle::Literal | ScalarStyle::Folded)
        )
    }
}

/// A problem in the YAML itself, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
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
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    stack: Vec<Open<'a>>,
    root: Option<Node<'a>>,
    failed: bool,
}

impl<'a> Documents<'a> {
    pub fn new(src: &'a str) -> Self {
        Documents {
            src,
            offsets: Offsets::new(src),
            parser: Parser::new_from_str(src),
            stack: Vec::new(),
            root: None,
            failed: false,
        }
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
                Err(e) => {
                    self.failed = true;
                    return Some(Err(scan_error(&e)));
                }
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
    YamlError {
        pos: Pos {
            line: m.line(),
            col: m.col() + 1,
        },
        message: e.info().to_string(),
    }
}

enum Open<'a> {
    Map {
        node: Node<'a>,
        entries: Vec<(Node<'a>, Node<'a>)>,
        key: Option<Node<'a>>,
        seen: HashSet<String>,
    },
    Seq {
        node: Node<'a>,
        items: Vec<Node<'a>>,
    },
}

struct Builder<'a, 'o> {
    src: &'a str,
    offsets: &'o Offsets<'a>,
    stack: &'o mut Vec<Open<'a>>,
}

impl<'a> Builder<'a, '_> {
    fn node(&self, kind: Kind<'a>, span: &Span) -> Node<'a> {
        let start = self.offsets.byte(span.start.index());
        let end = self.offsets.byte(span.end.index());
        let flow = matches!(kind, Kind::Map(_) | Kind::Seq(_))
            && matches!(self.src.as_bytes().get(start), Some(b'[' | b'{'));
        Node {
            kind,
            start,
            end,
            pos: Pos {
                line: span.start.line(),
                col: span.start.col() + 1,
            },
            flow,
        }
    }

    /// Feeds one event; returns the document's root when it is complete.
    fn event(&mut self, event: Event<'a>, span: Span) -> Result<Option<Node<'a>>, YamlError> {
        let done = match event {
            Event::Scalar(value, style, _, _) => self.node(Kind::Scalar(value, style), &span),
            Event::Alias(_) => self.node(Kind::Alias, &span),
            Event::MappingStart(..) => {
                let node = self.node(Kind::Map(Vec::new()), &span);
                self.stack.push(Open::Map {
                    node,
                    entries: Vec::new(),
                    key: None,
                    seen: HashSet::new(),
                });
                return Ok(None);
            }
            Event::SequenceStart(..) => {
                let node = self.node(Kind::Seq(Vec::new()), &span);
                self.stack.push(Open::Seq {
                    node,
                    items: Vec::new(),
                });
                return Ok(None);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let close = self.offsets.byte(span.end.index());
                match self.stack.pop() {
                    Some(Open::Map {
                        mut node, entries, ..
                    }) => {
                        node.end = if node.flow {
                            close
                        } else {
                            entries.last().map_or(node.start, |(_, v)| v.end)
                        };
                        node.kind = Kind::Map(entries);
                        node
                    }
                    Some(Open::Seq { mut node, items }) => {
                        node.end = if node.flow {
                            close
                        } else {
                            items.last().map_or(node.start, |i| i.end)
                        };
                        node.kind = Kind::Seq(items);
                        node
                    }
                    None => unreachable!("the parser balances collection events"),
                }
            }
            _ => return Ok(None),
        };
        match self.stack.last_mut() {
            None => Ok(Some(done)),
            Some(Open::Seq { items, .. }) => {
                items.push(done);
                Ok(None)
            }
            Some(Open::Map {
                entries, key, seen, ..
            }) => {
                match key.take() {
                    None => {
                        if let Some(k) = done.as_str() {
                            if !seen.insert(k.to_string()) {
                                return Err(YamlError {
                                    pos: done.pos,
                                    message: format!("duplicate key '{k}' in this mapping; Kubernetes would keep only one of them — remove the other"),
                                });
                            }
                        }
                        *key = Some(done);
                    }
                    Some(k) => entries.push((k, done)),
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(err.pos, Pos { line: 4, col: 3 });
        assert!(err.message.contains("duplicate key 'c'"));
        let err = for_each_document("a: [1, 2\nb: 3\n", |_| Ok(())).unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
    }
}
