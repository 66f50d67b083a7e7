//! Text edits on the source: insert or replace byte ranges found through the
//! span tree, writing new YAML at the indentation already in use there. Every
//! byte outside an edit stays as it was.

use crate::yaml::emit::{self, Style, Value};
use crate::yaml::{lines, Node};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// Orders edits that share a start offset: the larger goes first. Block
    /// text carries the column it is written at (a list item one more than
    /// its dash), so a new item lands inside its list before a new sibling
    /// key that follows the list. Edits inside a line (flow collections,
    /// filled `[]`/`{}`) carry `usize::MAX`: they go before any block text
    /// inserted at the same offset.
    depth: usize,
}

impl Edit {
    /// The column block text is written at (`usize::MAX` for text inside a
    /// line).
    pub fn depth(&self) -> usize {
        self.depth
    }
}

/// The dash (`- `) that introduces the block sequence item starting at
/// `item`: the first thing before the item that is not white space (the item
/// may start on a later line); `None` when that is not a dash.
pub fn dash_before(src: &str, item: usize) -> Option<usize> {
    src[..item]
        .trim_end_matches([' ', '\t', '\r', '\n'])
        .strip_suffix('-')
        .map(str::len)
}

pub struct Editor<'s> {
    src: &'s str,
    /// The file's lines end in CRLF (read off its first line break).
    crlf: bool,
    pub style: Style,
    edits: Vec<Edit>,
}

impl<'s> Editor<'s> {
    pub fn new(src: &'s str, style: Style) -> Self {
        let crlf = lines::crlf(src);
        Self {
            src,
            crlf,
            style,
            edits: Vec::new(),
        }
    }

    pub fn into_edits(self) -> Vec<Edit> {
        self.edits
    }

    /// How many edits there are now, to [`Editor::rollback`] to.
    pub fn checkpoint(&self) -> usize {
        self.edits.len()
    }

    /// The edits made since `checkpoint`.
    pub fn since(&self, checkpoint: usize) -> &[Edit] {
        &self.edits[checkpoint..]
    }

    /// Drops the edits made since `checkpoint` (a pod that must not be edited).
    pub fn rollback(&mut self, checkpoint: usize) {
        self.edits.truncate(checkpoint);
    }

    /// The start of the line after `end`: where text appended to a node that
    /// ends there goes.
    pub fn line_after(&self, end: usize) -> usize {
        lines::after(self.src, end)
    }

    /// Column (0-based) of a byte offset.
    fn column(&self, at: usize) -> usize {
        lines::column(self.src, at)
    }

    /// Where text after `node` may be inserted: the start of the line after
    /// it (every node, block scalars included, ends on its last line of text).
    fn after(&self, node: &Node) -> usize {
        self.line_after(node.end)
    }

    fn push(&mut self, start: usize, end: usize, mut text: String, depth: usize) {
        if start == self.src.len() && !self.src.ends_with('\n') && !self.src.is_empty() {
            text.insert(0, '\n');
        }
        // New lines end the way the file's lines do.
        if self.crlf {
            text = text.replace("\r\n", "\n").replace('\n', "\r\n");
        }
        self.edits.push(Edit {
            start,
            end,
            text,
            depth,
        });
    }

    /// Sets `key` in a mapping: replaces that entry (key and value) if present,
    /// adds it after the last entry otherwise.
    pub fn set_key(&mut self, mapping: &Node, key: &str, value: Value) {
        let entry = vec![(key.to_string(), value)];
        let entries = mapping.as_map().expect("set_key on a mapping");
        if mapping.flow {
            self.flow_add_entry(mapping, entries, &entry);
            return;
        }
        if let Some((k, v)) = entries.iter().find(|(k, _)| k.as_str() == Some(key)) {
            let col = self.column(k.start);
            let mut text = String::new();
            emit::entries(&mut text, &entry, col, self.style);
            // The key's line already holds the indentation (or "- ").
            let text = text[col..].to_string();
            let end = self.after(v);
            self.push(k.start, end, text, col);
            return;
        }
        let Some((first_key, _)) = entries.first() else {
            // An empty block mapping does not exist in YAML; an empty one is `{}`.
            unreachable!("empty mappings are flow mappings")
        };
        let col = self.column(first_key.start);
        // After the last entry: where its text ends, key or value (an
        // implicit null after an explicit `? key` has no text of its own).
        let (last_key, last_value) = entries.last().unwrap();
        let at = self.line_after(last_key.end.max(last_value.end));
        let mut text = String::new();
        emit::entries(&mut text, &entry, col, self.style);
        self.push(at, at, text, col);
    }

    /// Column for the content of a collection written as `key: []` or
    /// `key: {}`: the key's column (+2 for a mapping, or for a sequence when
    /// the document indents its sequences).
    fn block_column_for(&self, node: &Node, sequence: bool) -> usize {
        // The key's line, also where the `[]` stands alone on the next one.
        let key_end = self.before_flow(node);
        let line = &self.src[lines::start(self.src, key_end)..key_end];
        let mut col = line.len() - line.trim_start().len();
        if line.trim_start().starts_with("- ") {
            col += 2;
        }
        if !sequence || !self.style.indentless_seq {
            col += 2;
        }
        col
    }

    /// Replaces an empty `[]` / `{}` with block text, so the addition reads
    /// like the rest of the file instead of one long flow line.
    fn fill_empty_flow(&mut self, node: &Node, block: String) {
        let block = block.trim_end_matches('\n');
        // From just after the `:` (or a comment after it), so no trailing
        // space is left on the key's line, nor an empty line where the `[]`
        // stood alone on the next.
        let start = self.before_flow(node);
        self.push(start, node.end, format!("\n{block}"), usize::MAX);
    }

    /// Where the text before an empty flow collection ends: its key's `:`,
    /// or a comment after it, with the blanks and line breaks between.
    fn before_flow(&self, node: &Node) -> usize {
        self.src[..node.start]
            .trim_end_matches([' ', '\t', '\n', '\r'])
            .len()
    }

    fn flow_add_entry(
        &mut self,
        mapping: &Node,
        entries: &[(Node, Node)],
        entry: &[(String, Value)],
    ) {
        if entries.is_empty() && self.inside_block(mapping) {
            let mut text = String::new();
            emit::entries(
                &mut text,
                entry,
                self.block_column_for(mapping, false),
                self.style,
            );
            self.fill_empty_flow(mapping, text);
            return;
        }
        let (k, v) = &entry[0];
        let pair = format!("{}: {}", emit::quoted(k), emit::json(v));
        if let Some((key, value)) = entries
            .iter()
            .find(|(key, _)| key.as_str() == Some(k.as_str()))
        {
            self.push(key.start, value.end, pair, usize::MAX);
        } else {
            // After the last entry (before a trailing comma, if any), so the
            // new pair reads as part of the mapping; inside `{}` when empty.
            let (at, text) = match entries.last() {
                Some((key, value)) => (key.end.max(value.end), format!(", {pair}")),
                None => (mapping.start + 1, pair),
            };
            self.push(at, at, text, usize::MAX);
        }
    }

    /// Whether a flow node is the value of a block mapping entry (`key: []`),
    /// not nested inside another flow collection (JSON is flow throughout).
    fn inside_block(&self, node: &Node) -> bool {
        !node.in_flow
    }

    /// Adds an item to a sequence: first or last.
    pub fn add_item(&mut self, sequence: &Node, item: Value, first: bool) {
        let items = sequence.as_seq().expect("add_item on a sequence");
        if items.is_empty() && sequence.flow && self.inside_block(sequence) {
            let mut text = String::new();
            emit::sequence(
                &mut text,
                std::slice::from_ref(&item),
                self.block_column_for(sequence, true),
                self.style,
            );
            self.fill_empty_flow(sequence, text);
            return;
        }
        if sequence.flow || items.is_empty() {
            let text = emit::json(&item);
            let (at, text) = match (first, items.first(), items.last()) {
                (_, None, _) => (sequence.start + 1, text),
                (true, Some(f), _) => (f.start, format!("{text}, ")),
                (false, _, Some(l)) => (l.end, format!(", {text}")),
                _ => unreachable!(),
            };
            self.push(at, at, text, usize::MAX);
            return;
        }
        // The dash of the first item sets the column (the item itself may
        // start on the next line, and be a sequence with dashes of its own).
        let (line_start, dash) = self.dash_of(&items[0]);
        let mut text = String::new();
        emit::sequence(&mut text, std::slice::from_ref(&item), dash, self.style);
        let at = if first {
            line_start
        } else {
            self.after(items.last().unwrap())
        };
        self.push(at, at, text, dash + 1);
    }

    /// Puts `items` in place of a sequence's first `replaced` items (in
    /// front of them all when `replaced` is 0), in one edit: in a block
    /// sequence as `- item` lines at the first item's column, in a flow one
    /// as `item, ` text before the first item kept. The items from
    /// `replaced` on are not touched; the sequence holds more than
    /// `replaced` items.
    pub fn splice_front(&mut self, sequence: &Node, replaced: usize, items: &[Value]) {
        let old = sequence.as_seq().expect("splice_front on a sequence");
        let kept = &old[replaced];
        if sequence.flow {
            let text: String = items
                .iter()
                .map(|i| format!("{}, ", emit::json(i)))
                .collect();
            self.push(old[0].start, kept.start, text, usize::MAX);
            return;
        }
        let (start, dash) = self.dash_of(&old[0]);
        let (end, _) = self.dash_of(kept);
        let mut text = String::new();
        emit::sequence(&mut text, items, dash, self.style);
        self.push(start, end, text, dash + 1);
    }

    /// The `- ` that introduces a block sequence's item: the start of its line
    /// and its column. It is the first thing before the item that is not
    /// white space (the item may start on a later line).
    fn dash_of(&self, item: &Node) -> (usize, usize) {
        let at = dash_before(self.src, item.start).unwrap_or(item.start);
        (lines::start(self.src, at), lines::column(self.src, at))
    }

    /// Replaces the item at `index` of a sequence with `item`, written at the
    /// same place in the same style.
    pub fn replace_item(&mut self, sequence: &Node, index: usize, item: Value) {
        let items = sequence.as_seq().expect("replace_item on a sequence");
        let old = &items[index];
        if sequence.flow {
            self.push(old.start, old.end, emit::json(&item), usize::MAX);
            return;
        }
        let (line_start, dash) = self.dash_of(old);
        let mut text = String::new();
        emit::sequence(&mut text, std::slice::from_ref(&item), dash, self.style);
        let end = self.after(old);
        self.push(line_start, end, text, dash + 1);
    }

    /// Appends `src` from `from` with `edits` applied (all at or after
    /// `from`; sorted here, in the order they are applied) to `out`, up to
    /// the last edit's end; returns where that is. How the stream is
    /// written one document at a time.
    pub fn apply_into(
        src: &str,
        from: usize,
        edits: &mut [Edit],
        out: &mut String,
    ) -> Result<usize, String> {
        edits.sort_by(|a, b| a.start.cmp(&b.start).then(b.depth.cmp(&a.depth)));
        let mut at = from;
        for e in edits.iter() {
            if e.start < at {
                return Err(format!("overlapping edits at byte {}", e.start));
            }
            out.push_str(&src[at..e.start]);
            out.push_str(&e.text);
            at = e.end;
        }
        Ok(at)
    }
}
