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

//!
//! Its rooms: this file holds the nodes and what is asked of them; [`read`]
//! builds them from the parser's events, and [`spans`] repairs where the
//! parser's spans end (flow collections, block scalars, properties).

mod read;
mod spans;

use super::lines::{self, Pos};
pub use read::{for_each_document, Documents};
use saphyr_parser::ScalarStyle;
use std::borrow::Cow;

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
