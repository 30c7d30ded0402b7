//! The text the formats are made of: the decoder's two sinks (JSON text and plain text
//! for a table or CSV cell), and the small pieces every format uses (JSON strings, CSV
//! cells, padding). Everything appends to a caller's buffer; numbers are formatted without
//! allocating.
//!
//! JSON integers are numbers when every JSON reader holds them exactly (a magnitude below
//! 2^53), and strings of their decimal digits beyond: a count of 2^60 reads back exactly as
//! a string, never rounded as a double. Addresses are hex strings.

use std::io::Write as _;

use super::clock::{Clock, Ktime};
use super::shown::{self, Target};
use crate::spec::plan::{Node, Plan, Raw, Sink};
use crate::spec::vocab::ValueFormat;
use crate::stdio::escape_controls;

/// Writes a value as JSON text.
pub struct JsonSink<'a> {
    out: &'a mut Vec<u8>,
    ktime: Ktime,
}

impl<'a> JsonSink<'a> {
    /// A sink writing to `out`, showing kernel timestamps as `ktime` says.
    pub(crate) fn new(out: &'a mut Vec<u8>, ktime: &Ktime) -> Self {
        JsonSink { out, ktime: *ktime }
    }
}

/// The largest magnitude every JSON reader holds exactly (2^53 - 1, JavaScript's
/// `Number.MAX_SAFE_INTEGER`).
pub(crate) const JSON_SAFE: u128 = (1 << 53) - 1;

/// An integer as JSON: a number up to [`JSON_SAFE`], a string of its digits beyond.
pub(crate) fn json_int<I: itoa::Integer + Into<i128>>(out: &mut Vec<u8>, v: I) {
    let wide: i128 = v.into();
    if wide.unsigned_abs() <= JSON_SAFE {
        push_int(out, wide);
    } else {
        out.push(b'"');
        push_int(out, wide);
        out.push(b'"');
    }
}

fn json_u128(out: &mut Vec<u8>, v: u128) {
    if v <= JSON_SAFE {
        push_int(out, v);
    } else {
        out.push(b'"');
        push_int(out, v);
        out.push(b'"');
    }
}

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

/// The parts of a sink that JSON and plain text write the same way: booleans and
/// list/record brackets.
macro_rules! common_sink_methods {
    () => {
        fn bool(&mut self, v: bool) {
            self.out
                .extend_from_slice(if v { b"true" } else { b"false" })
        }
        fn begin_list(&mut self) {
            self.out.push(b'[')
        }
        fn item(&mut self, first: bool) {
            if !first {
                self.out.push(b',')
            }
        }
        fn end_list(&mut self) {
            self.out.push(b']')
        }
        fn begin_record(&mut self) {
            self.out.push(b'{')
        }
        fn end_record(&mut self) {
            self.out.push(b'}')
        }
    };
}

impl Sink for JsonSink<'_> {
    common_sink_methods!();
    fn int(&mut self, v: i64) {
        json_int(self.out, v)
    }
    fn uint(&mut self, v: u64) {
        json_int(self.out, v)
    }
    fn int128(&mut self, v: i128) {
        json_int(self.out, v)
    }
    fn uint128(&mut self, v: u128) {
        json_u128(self.out, v)
    }
    fn float(&mut self, v: f64) {
        if v.is_finite() {
            let _ = write!(self.out, "{v}");
        } else {
            self.out.extend_from_slice(b"null");
        }
    }
    fn text(&mut self, s: &[u8]) {
        json_string(self.out, s)
    }
    fn bytes(&mut self, b: &[u8]) {
        self.out.push(b'[');
        for (i, byte) in b.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            push_int(self.out, *byte);
        }
        self.out.push(b']');
    }
    fn enum_name(&mut self, name: &str) {
        json_string(self.out, name.as_bytes())
    }
    fn pointer(&mut self, v: u64) {
        let _ = write!(self.out, "\"{v:#x}\"");
    }
    fn field(&mut self, name: &str, first: bool) {
        if !first {
            self.out.push(b',');
        }
        json_string(self.out, name.as_bytes());
        self.out.push(b':');
    }
    fn formatted(&mut self, format: &ValueFormat, raw: Raw<'_>) {
        shown::render(format, raw, &self.ktime, Target::Json, self.out)
    }
    /// `,"<name>@raw":`: the number a format turned into a name, kept for programs.
    fn raw_field(&mut self, name: &str) -> bool {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"@raw\":");
        true
    }
}

/// Writes a value as plain text for a table or CSV cell: strings raw (control characters
/// replaced), the strings of a variable-length record joined by spaces (as execsnoop
/// prints argv), byte arrays in hex, nested values as `{a=1,b=[1,2]}`.
pub struct TextSink<'a> {
    out: &'a mut Vec<u8>,
    ktime: Ktime,
}

impl<'a> TextSink<'a> {
    /// A sink writing to `out`, showing kernel timestamps as `ktime` says.
    pub(crate) fn new(out: &'a mut Vec<u8>, ktime: &Ktime) -> Self {
        TextSink { out, ktime: *ktime }
    }
}

impl Sink for TextSink<'_> {
    common_sink_methods!();
    fn int(&mut self, v: i64) {
        push_int(self.out, v)
    }
    fn uint(&mut self, v: u64) {
        push_int(self.out, v)
    }
    fn int128(&mut self, v: i128) {
        push_int(self.out, v)
    }
    fn uint128(&mut self, v: u128) {
        push_int(self.out, v)
    }
    fn float(&mut self, v: f64) {
        let _ = write!(self.out, "{v}");
    }
    fn text(&mut self, s: &[u8]) {
        match std::str::from_utf8(s) {
            Ok(text) if !text.bytes().any(|b| b < 0x20 || b == 0x7f) => {
                self.out.extend_from_slice(s)
            }
            _ => {
                for c in String::from_utf8_lossy(s).chars() {
                    let c = if c.is_control() { '?' } else { c };
                    let mut buf = [0u8; 4];
                    self.out
                        .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
    fn strings(&mut self, s: &[u8]) {
        for (i, one) in s.split(|&b| b == 0).enumerate() {
            if i > 0 {
                self.out.push(b' ');
            }
            self.text(one);
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        push_hex(self.out, b)
    }
    fn enum_name(&mut self, name: &str) {
        self.out
            .extend_from_slice(escape_controls(name, false).as_bytes())
    }
    fn pointer(&mut self, v: u64) {
        let _ = write!(self.out, "{v:#x}");
    }
    fn field(&mut self, name: &str, first: bool) {
        if !first {
            self.out.push(b',');
        }
        self.out
            .extend_from_slice(escape_controls(name, false).as_bytes());
        self.out.push(b'=');
    }
    fn formatted(&mut self, format: &ValueFormat, raw: Raw<'_>) {
        shown::render(format, raw, &self.ktime, Target::Text, self.out)
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
        Node::Array { .. } | Node::Record { .. } | Node::Trailing { .. } | Node::Select { .. } => {
            16
        }
        Node::Format { format, node, .. } => match format {
            ValueFormat::Errno | ValueFormat::Signal | ValueFormat::Dev => 7,
            ValueFormat::Syscall | ValueFormat::Duration { .. } => 10,
            ValueFormat::Ktime(_) => 15,
            ValueFormat::Ipv4 | ValueFormat::Ipv6 | ValueFormat::Ip(_) => 15,
            ValueFormat::Flags(_) => 16,
            ValueFormat::Hex | ValueFormat::Octal | ValueFormat::Signed => natural_width(node),
        },
    }
}

/// [`cell`] with kernel times read against the clock now: for text read outside an
/// output (a metric's label).
pub(crate) fn cell_now<F: FnOnce(&mut TextSink)>(f: F) -> String {
    let ktime = Clock::new().now().ktime;
    cell(&ktime, f)
}

/// A value rendered as plain text, for a cell whose width is known only once every row is.
pub(crate) fn cell<F: FnOnce(&mut TextSink)>(ktime: &Ktime, f: F) -> String {
    let mut buf = Vec::new();
    f(&mut TextSink::new(&mut buf, ktime));
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

/// What a header says after a column's name: the unit of a duration shown in a fixed
/// unit (`(ms)`), for the table and CSV.
pub(crate) fn unit_suffix(node: &Node) -> String {
    match node {
        Node::Format {
            format: ValueFormat::Duration {
                shown: Some(unit), ..
            },
            ..
        } => format!("({})", unit.name()),
        _ => String::new(),
    }
}

/// The top-level fields of a map's key or value, or none for one that is not a struct.
fn plan_fields(plan: &Plan) -> Option<&[(String, Node)]> {
    match &plan.root {
        Node::Record { fields } if !fields.is_empty() => Some(fields),
        _ => None,
    }
}

/// CSV column names for a map's key or value (`part` is `key` or `value`): `key` for one
/// that is not a struct, else `key.<member>` for each of its top-level members, so a key
/// and a value with members of the same name, or a member named like the runner's own
/// columns, never give two columns one name.
pub(crate) fn plan_names(plan: &Plan, part: &str) -> Vec<String> {
    match plan_fields(plan) {
        Some(fields) => fields
            .iter()
            .map(|(n, node)| format!("{part}.{}{}", escape_controls(n, false), unit_suffix(node)))
            .collect(),
        None => vec![format!("{part}{}", unit_suffix(&plan.root))],
    }
}

/// A table's header for a map's key or value: its members in upper case, or `fallback`.
pub(crate) fn plan_headers(plan: &Plan, fallback: &str) -> Vec<String> {
    match plan_fields(plan) {
        Some(fields) => fields
            .iter()
            .map(|(n, node)| {
                let name = escape_controls(n, false).to_ascii_uppercase();
                format!("{name}{}", unit_suffix(node))
            })
            .collect(),
        None => vec![format!("{fallback}{}", unit_suffix(&plan.root))],
    }
}

/// The cells of a map's key or value, matching [`plan_headers`].
pub(crate) fn plan_cells(plan: &Plan, bytes: &[u8], ktime: &Ktime) -> Vec<String> {
    match plan_fields(plan) {
        Some(fields) => fields
            .iter()
            .map(|(_, node)| cell(ktime, |s| node.visit(bytes, 0, s)))
            .collect(),
        None => vec![cell(ktime, |s| plan.visit(bytes, s))],
    }
}
