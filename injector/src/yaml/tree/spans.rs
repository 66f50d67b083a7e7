//! Where a node's text really ends (and, past its properties, starts): the
//! parser's span of a flow collection or a block scalar runs on to the next
//! token, past comments and blank lines, sometimes into the next container.

use crate::yaml::lines;

/// Where a node's content starts, past its properties (`!tag`, `&anchor`,
/// in any order) and the white space after them.
pub(super) fn after_properties(src: &str, mut at: usize) -> usize {
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
pub(super) fn flow_end(src: &str, start: usize) -> usize {
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
pub(super) fn block_scalar_span(src: &str, start: usize, span_end: usize) -> (usize, usize) {
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
