//! The text the formats are made of: the decoder's two sinks (JSON text and plain text
//! for a table or CSV cell), and the small pieces every format uses (JSON strings, CSV
//! cells, padding). Everything appends to a caller's buffer; numbers are formatted without
//! allocating.

use std::io::Write as _;

use crate::spec::plan::{Node, Plan, Sink};
use crate::stdio::escape_controls;

/// Writes a value as JSON text.
pub struct JsonSink<'a>(pub &'a mut Vec<u8>);

pub(crate) fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let text = String::from_utf8_lossy(s);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\r' => out.extend_from_slice(b"\\r"),
            // C0, DEL and C1: no terminal sequence survives a `jq -r`.
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

pub(crate) fn push_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// The parts of a sink that JSON and plain text write the same way: numbers, booleans and
/// list/record brackets.
macro_rules! common_sink_methods {
    () => {
        fn int(&mut self, v: i64) {
            push_int(self.0, v)
        }
        fn uint(&mut self, v: u64) {
            push_int(self.0, v)
        }
        fn int128(&mut self, v: i128) {
            push_int(self.0, v)
        }
        fn uint128(&mut self, v: u128) {
            push_int(self.0, v)
        }
        fn bool(&mut self, v: bool) {
            self.0.extend_from_slice(if v { b"true" } else { b"false" })
        }
        fn begin_list(&mut self) {
            self.0.push(b'[')
        }
        fn item(&mut self, first: bool) {
            if !first {
                self.0.push(b',')
            }
        }
        fn end_list(&mut self) {
            self.0.push(b']')
        }
        fn begin_record(&mut self) {
            self.0.push(b'{')
        }
        fn end_record(&mut self) {
            self.0.push(b'}')
        }
    };
}

impl Sink for JsonSink<'_> {
    common_sink_methods!();
    fn float(&mut self, v: f64) {
        if v.is_finite() {
            let _ = write!(self.0, "{v}");
        } else {
            self.0.extend_from_slice(b"null");
        }
    }
    fn text(&mut self, s: &[u8]) {
        json_string(self.0, s)
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.push(b'[');
        for (i, byte) in b.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            push_int(self.0, *byte);
        }
        self.0.push(b']');
    }
    fn enum_name(&mut self, name: &str) {
        json_string(self.0, name.as_bytes())
    }
    fn pointer(&mut self, v: u64) {
        let _ = write!(self.0, "\"{v:#x}\"");
    }
    fn field(&mut self, name: &str, first: bool) {
        if !first {
            self.0.push(b',');
        }
        json_string(self.0, name.as_bytes());
        self.0.push(b':');
    }
}

/// Writes a value as plain text for a table or CSV cell: strings raw (control characters
/// replaced), the strings of a variable-length record joined by spaces (as execsnoop
/// prints argv), byte arrays in hex, nested values as `{a=1,b=[1,2]}`.
pub struct TextSink<'a>(pub &'a mut Vec<u8>);

impl Sink for TextSink<'_> {
    common_sink_methods!();
    fn float(&mut self, v: f64) {
        let _ = write!(self.0, "{v}");
    }
    fn text(&mut self, s: &[u8]) {
        match std::str::from_utf8(s) {
            Ok(text) if !text.bytes().any(|b| b < 0x20 || b == 0x7f) => self.0.extend_from_slice(s),
            _ => {
                for c in String::from_utf8_lossy(s).chars() {
                    let c = if c.is_control() { '?' } else { c };
                    let mut buf = [0u8; 4];
                    self.0.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
    fn strings(&mut self, s: &[u8]) {
        for (i, one) in s.split(|&b| b == 0).enumerate() {
            if i > 0 {
                self.0.push(b' ');
            }
            self.text(one);
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        push_hex(self.0, b)
    }
    fn enum_name(&mut self, name: &str) {
        self.0
            .extend_from_slice(escape_controls(name, false).as_bytes())
    }
    fn pointer(&mut self, v: u64) {
        let _ = write!(self.0, "{v:#x}");
    }
    fn field(&mut self, name: &str, first: bool) {
        if !first {
            self.0.push(b',');
        }
        self.0
            .extend_from_slice(escape_controls(name, false).as_bytes());
        self.0.push(b'=');
    }
}

/// The width a table column gets for values read by `node`.
pub(crate) fn natural_width(node: &Node) -> usize {
    match node {
        Node::Int { size: 1, .. } => 4,
        Node::Int { size: 2, .. } => 6,
        Node::Int { size: 4, .. } => 7,
        Node::Int { .. } => 12,
        Node::Bool { .. } => 5,
        Node::Float { .. } => 10,
        Node::Enum { names, .. } | Node::Bits { names, .. } => names
            .iter()
            .map(|(_, n)| n.len())
            .max()
            .unwrap_or(4)
            .clamp(4, 16),
        Node::Text { len, .. } => len.saturating_sub(1).clamp(4, 16),
        Node::Bytes { len, .. } => (len * 2).min(32),
        Node::Pointer { .. } => 18,
        Node::Array { .. } | Node::Record { .. } | Node::Trailing { .. } => 16,
    }
}

/// A value rendered as plain text, for a cell whose width is known only once every row is.
pub(crate) fn cell<F: FnOnce(&mut TextSink)>(f: F) -> String {
    let mut buf = Vec::new();
    f(&mut TextSink(&mut buf));
    String::from_utf8_lossy(&buf).into_owned()
}

/// `text` left-aligned in `width` columns, then a space.
pub(crate) fn pad(out: &mut Vec<u8>, text: &[u8], width: usize) {
    out.extend_from_slice(text);
    out.resize(out.len() + width.saturating_sub(text.len()) + 1, b' ');
}

/// One CSV cell, quoted when it holds a comma, a quote or a line break.
pub fn csv_cell(out: &mut Vec<u8>, cell: &[u8]) {
    if cell
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for &b in cell {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(cell);
    }
}

/// Column names for a map's key or value: its top-level members, or `fallback` for a
/// value that is not a struct.
pub(crate) fn plan_names(plan: &Plan, fallback: &str) -> Vec<String> {
    match &plan.root {
        Node::Record { fields } if !fields.is_empty() => fields
            .iter()
            .map(|(n, _)| escape_controls(n, false).into_owned())
            .collect(),
        _ => vec![fallback.to_string()],
    }
}

/// [`plan_names`] in upper case, for a table's header.
pub(crate) fn plan_headers(plan: &Plan, fallback: &str) -> Vec<String> {
    plan_names(plan, fallback)
        .into_iter()
        .map(|n| n.to_ascii_uppercase())
        .collect()
}

/// The cells of a map's key or value, matching [`plan_headers`].
pub(crate) fn plan_cells(plan: &Plan, bytes: &[u8]) -> Vec<String> {
    match &plan.root {
        Node::Record { fields } if !fields.is_empty() => fields
            .iter()
            .map(|(_, node)| cell(|s| node.visit(bytes, 0, s)))
            .collect(),
        _ => vec![cell(|s| plan.visit(bytes, s))],
    }
}
