//! Lines and positions: where a line starts and ends, how lines are counted,
//! and how a byte offset becomes a line and column and back. Every other
//! module of the crate asks here; none counts lines of its own.
//!
//! The rules, the same for every caller (the table in the tests shows each):
//! - A line ends at a line feed (LF). A carriage return right before it is
//!   part of the line's end, not of its text ([`text`]). A carriage return
//!   alone is not a line break here: YAML would read one, so the stream
//!   refuses such text ([`lone_carriage_return`]) before anything counts.
//! - Text without a final line break still has a last line.
//! - Offsets are bytes. Lines and columns are 1-based, and a column counts
//!   characters: a multi-byte character is one column, and so is a tab (as
//!   YAML readers and editors report them).
//! - A piece of a longer stream (one document read on its own) counts its
//!   lines from the stream line it starts on: [`Pos::in_stream`] places a
//!   piece's position, [`Pos::in_piece`] takes it back.

use std::cell::Cell;
use std::fmt;

/// Where something is: 1-based line and column (in characters).
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

impl Pos {
    /// A position in a piece of text that starts on line `first_line` of
    /// its stream, as a position in the stream.
    pub fn in_stream(self, first_line: usize) -> Pos {
        Pos {
            line: self.line + first_line - 1,
            col: self.col,
        }
    }

    /// A position in the stream as a position in its piece that starts on
    /// line `first_line`; `None` when it lies before the piece.
    pub fn in_piece(self, first_line: usize) -> Option<Pos> {
        Some(Pos {
            line: (self.line + 1).checked_sub(first_line)?,
            col: self.col,
        })
    }
}

/// The start of the line byte `at` is on.
pub fn start(src: &str, at: usize) -> usize {
    memchr::memrchr(b'\n', &src.as_bytes()[..at]).map_or(0, |i| i + 1)
}

/// The start of the line after the one byte `at` is on, or the end of the
/// text on its last line.
pub fn after(src: &str, at: usize) -> usize {
    memchr::memchr(b'\n', &src.as_bytes()[at..]).map_or(src.len(), |i| at + i + 1)
}

/// The end of the text of the line byte `at` is on: its line feed, or the
/// end of the text (a carriage return before the line feed is included:
/// see [`text`]).
pub fn end(src: &str, at: usize) -> usize {
    memchr::memchr(b'\n', &src.as_bytes()[at..]).map_or(src.len(), |i| at + i)
}

/// A line without its line end (`\n`, `\r\n`, or none on the last line).
pub fn text(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// How many line feeds `text` holds: how many lines it moves down.
pub fn breaks(text: &str) -> usize {
    memchr::memchr_iter(b'\n', text.as_bytes()).count()
}

/// Whether the text's lines end in CRLF, read off its first line break
/// (`false` for text on one line).
pub fn crlf(src: &str) -> bool {
    memchr::memchr(b'\n', src.as_bytes()).is_some_and(|i| src[..i].ends_with('\r'))
}

/// How many spaces a line starts with (tabs are not indentation in YAML).
pub fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The column (0-based, in characters) of byte `at` on its line.
pub fn column(src: &str, at: usize) -> usize {
    src[start(src, at)..at].chars().count()
}

/// The line and column of byte `at`, counted from the start of `src`. For
/// many positions in one text, an [`Index`] is faster.
pub fn pos(src: &str, at: usize) -> Pos {
    Pos {
        line: breaks(&src[..at]) + 1,
        col: column(src, at) + 1,
    }
}

/// The byte offset of `pos` in `src`: `None` when the text has no such line,
/// or the line no such column (its line end is its last column).
pub fn offset(src: &str, pos: Pos) -> Option<usize> {
    let line = pos.line.checked_sub(1)?;
    let line_start = if line == 0 {
        0
    } else {
        memchr::memchr_iter(b'\n', src.as_bytes()).nth(line - 1)? + 1
    };
    let col = pos.col.checked_sub(1)?;
    let line_text = &src[line_start..end(src, line_start)];
    if col == line_text.chars().count() {
        return Some(line_start + line_text.len());
    }
    line_text
        .char_indices()
        .nth(col)
        .map(|(b, _)| line_start + b)
}

/// The first carriage return that is not followed by a line feed.
pub fn lone_carriage_return(src: &str) -> Option<usize> {
    memchr::memchr_iter(b'\r', src.as_bytes()).find(|i| src.as_bytes().get(i + 1) != Some(&b'\n'))
}

/// The starts of a text's lines, for many positions in it.
pub struct Index<'s> {
    src: &'s str,
    ascii: bool,
    /// Byte offset of each line's start.
    starts: Vec<usize>,
    /// The line (index into `starts`) of the last position asked for: a
    /// reader asks in the order of the text, so the next is nearly always on
    /// that line or a little after it.
    hint: Cell<usize>,
    /// The stream line `src` starts on.
    first_line: usize,
}

impl<'s> Index<'s> {
    /// `src`'s lines; positions are those of the stream it is a piece of,
    /// which `src` starts on line `first_line` of (1 for a whole text).
    pub fn new(src: &'s str, first_line: usize) -> Self {
        Index {
            src,
            ascii: src.is_ascii(),
            starts: std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', src.as_bytes()).map(|i| i + 1))
                .collect(),
            hint: Cell::new(0),
            first_line,
        }
    }

    /// The stream line the text starts on.
    pub fn first_line(&self) -> usize {
        self.first_line
    }

    /// Whether the text is ASCII (a character is a byte), looked at once
    /// for every reader of the text.
    pub fn ascii(&self) -> bool {
        self.ascii
    }

    /// The stream position of byte `at`. In ASCII text a character is a
    /// byte: no counting, which matters for JSON on one long line.
    pub fn pos(&self, at: usize) -> Pos {
        let line = self.line_of(at);
        let start = self.starts[line - 1];
        let col = if self.ascii {
            at - start
        } else {
            self.src[start..at].chars().count()
        };
        Pos { line, col: col + 1 }.in_stream(self.first_line)
    }

    /// The 1-based line of byte `at` in the text: from the hint forward when
    /// it is close by, by bisection otherwise.
    fn line_of(&self, at: usize) -> usize {
        let hint = self.hint.get();
        let mut line = hint + 1;
        if self.starts.get(hint).is_some_and(|&s| s <= at) {
            while line < self.starts.len() && self.starts[line] <= at && line < hint + 8 {
                line += 1;
            }
        }
        if !(self.starts[line - 1] <= at && self.starts.get(line).is_none_or(|&s| s > at)) {
            line = self.starts.partition_point(|&s| s <= at);
        }
        self.hint.set(line - 1);
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edge cases, each through every way of asking: one text, a byte
    /// offset in it, and what each function says of it.
    #[test]
    fn edge_cases_answer_alike_everywhere() {
        struct Case {
            what: &'static str,
            src: &'static str,
            at: usize,
            line: usize,
            col: usize,
            start: usize,
            after: usize,
            text: &'static str,
        }
        let cases = [
            Case {
                what: "empty text",
                src: "",
                at: 0,
                line: 1,
                col: 1,
                start: 0,
                after: 0,
                text: "",
            },
            Case {
                what: "first byte",
                src: "a: 1\n",
                at: 0,
                line: 1,
                col: 1,
                start: 0,
                after: 5,
                text: "a: 1",
            },
            Case {
                what: "a line feed is on its line",
                src: "a: 1\nb: 2\n",
                at: 4,
                line: 1,
                col: 5,
                start: 0,
                after: 5,
                text: "a: 1",
            },
            Case {
                what: "second line",
                src: "a: 1\nb: 2\n",
                at: 8,
                line: 2,
                col: 4,
                start: 5,
                after: 10,
                text: "b: 2",
            },
            Case {
                what: "the end after a final line break",
                src: "a: 1\n",
                at: 5,
                line: 2,
                col: 1,
                start: 5,
                after: 5,
                text: "",
            },
            Case {
                what: "no final line break",
                src: "a: 1\nb: 2",
                at: 9,
                line: 2,
                col: 5,
                start: 5,
                after: 9,
                text: "b: 2",
            },
            Case {
                what: "CRLF: the CR ends the line's text",
                src: "a: 1\r\nb: 2\r\n",
                at: 9,
                line: 2,
                col: 4,
                start: 6,
                after: 12,
                text: "b: 2",
            },
            Case {
                what: "CRLF: the CR itself",
                src: "a: 1\r\nb: 2\r\n",
                at: 4,
                line: 1,
                col: 5,
                start: 0,
                after: 6,
                text: "a: 1",
            },
            Case {
                what: "a lone CR is not a break",
                src: "a: 1\rb: 2\n",
                at: 5,
                line: 1,
                col: 6,
                start: 0,
                after: 10,
                text: "a: 1\rb: 2",
            },
            Case {
                what: "multi-byte characters count one column",
                src: "é: ü\nx: 1\n",
                at: 4,
                line: 1,
                col: 4,
                start: 0,
                after: 7,
                text: "é: ü",
            },
            Case {
                what: "after multi-byte characters",
                src: "- 日本\n  x\n",
                at: 11,
                line: 2,
                col: 3,
                start: 9,
                after: 13,
                text: "  x",
            },
            Case {
                what: "a tab is one column",
                src: "a:\t1\n",
                at: 3,
                line: 1,
                col: 4,
                start: 0,
                after: 5,
                text: "a:\t1",
            },
        ];
        for c in cases {
            let at_pos = Pos {
                line: c.line,
                col: c.col,
            };
            assert_eq!(pos(c.src, c.at), at_pos, "{}: pos", c.what);
            assert_eq!(
                Index::new(c.src, 1).pos(c.at),
                at_pos,
                "{}: Index::pos",
                c.what
            );
            assert_eq!(
                Index::new(c.src, 7).pos(c.at),
                at_pos.in_stream(7),
                "{}: Index::pos in a piece",
                c.what
            );
            assert_eq!(at_pos.in_stream(7).in_piece(7), Some(at_pos), "{}", c.what);
            assert_eq!(offset(c.src, at_pos), Some(c.at), "{}: offset", c.what);
            assert_eq!(start(c.src, c.at), c.start, "{}: start", c.what);
            assert_eq!(after(c.src, c.at), c.after, "{}: after", c.what);
            let line = &c.src[c.start..c.after];
            assert_eq!(text(line), c.text, "{}: text", c.what);
            let to_end = &c.src[c.start..end(c.src, c.at)];
            assert_eq!(text(to_end), c.text, "{}: end", c.what);
            assert_eq!(column(c.src, c.at) + 1, c.col, "{}: column", c.what);
        }
    }

    #[test]
    fn positions_outside_the_text_have_no_offset() {
        assert_eq!(offset("a\nb\n", Pos { line: 4, col: 1 }), None);
        assert_eq!(offset("a\nb\n", Pos { line: 1, col: 3 }), None);
        assert_eq!(offset("a\nb\n", Pos { line: 0, col: 1 }), None);
        assert_eq!(offset("a\nb\n", Pos { line: 3, col: 1 }), Some(4));
        assert_eq!(Pos { line: 2, col: 1 }.in_piece(5), None);
    }

    #[test]
    fn line_ends_indentation_and_lone_carriage_returns() {
        assert!(crlf("a\r\nb\n"));
        assert!(!crlf("a\nb\r\n"));
        assert!(!crlf("a\r"));
        assert_eq!(breaks("a\r\nb\rc\n"), 2);
        assert_eq!(indentation("    - x"), 4);
        assert_eq!(indentation("\t  x"), 0);
        assert_eq!(indentation("   "), 3);
        assert_eq!(lone_carriage_return("a\r\nb\r\n"), None);
        assert_eq!(lone_carriage_return("a\r\nb\rc"), Some(4));
        assert_eq!(lone_carriage_return("a\r"), Some(1));
    }

    /// An index asked out of order (the hint far behind or ahead) answers
    /// as when asked in order.
    #[test]
    fn an_index_answers_in_any_order() {
        let src: String = (0..100).map(|i| format!("k{i}: é{i}\n")).collect();
        let index = Index::new(&src, 1);
        let offsets: Vec<usize> = src.char_indices().map(|(b, _)| b).collect();
        for &at in offsets.iter().rev().chain(offsets.iter().step_by(37)) {
            assert_eq!(index.pos(at), pos(&src, at), "byte {at}");
        }
    }
}
