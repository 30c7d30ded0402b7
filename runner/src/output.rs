//! Rendering decoded events: sinks for the decoder (JSON text, plain text) and the table,
//! JSON-lines and CSV renderers built on them. Renderers append to a caller's buffer, so
//! a batch of events costs one write; numbers are formatted without allocating.

use std::io::Write as _;

use crate::plan::{Node, Plan, Sink};

/// Output formats of `runner run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Writes a value as JSON text.
pub struct JsonSink<'a>(pub &'a mut Vec<u8>);

fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let text = String::from_utf8_lossy(s);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
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

fn push_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
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
/// replaced), byte arrays in hex, nested values as `{a=1,b=[1,2]}`.
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
    fn bytes(&mut self, b: &[u8]) {
        push_hex(self.0, b)
    }
    fn enum_name(&mut self, name: &str) {
        self.0.extend_from_slice(name.as_bytes())
    }
    fn pointer(&mut self, v: u64) {
        let _ = write!(self.0, "{v:#x}");
    }
    fn field(&mut self, name: &str, first: bool) {
        if !first {
            self.0.push(b',');
        }
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b'=');
    }
}

/// Decode `bytes` with `plan` into a JSON value (used for the defaults of globals).
pub fn json_value(plan: &Plan, bytes: &[u8]) -> serde_json::Value {
    let mut out = Vec::new();
    plan.visit(bytes, &mut JsonSink(&mut out));
    serde_json::from_slice(&out).expect("the JSON sink writes valid JSON")
}

/// The width a table column gets for values read by `node`.
fn natural_width(node: &Node) -> usize {
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
        Node::Array { .. } | Node::Record { .. } => 16,
    }
}

/// Local wall-clock time, formatted once per second.
struct Clock {
    /// A frozen instant (seconds, nanoseconds since the epoch), shown in UTC: for tests.
    fixed: Option<(i64, i64)>,
    second: i64,
    hms: [u8; 8],
    /// `2026-11-22T10:25:29` and `+01:00`, with the microseconds going between.
    date_time: String,
    zone: String,
}

impl Clock {
    fn new() -> Self {
        Clock {
            fixed: None,
            second: i64::MIN,
            hms: *b"00:00:00",
            date_time: String::new(),
            zone: String::new(),
        }
    }

    /// Seconds and nanoseconds since the epoch, refreshing the cached text when the
    /// second changed.
    fn now(&mut self) -> (i64, i64) {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match self.fixed {
            Some((sec, nsec)) => (ts.tv_sec, ts.tv_nsec) = (sec, nsec),
            // SAFETY: `ts` is a valid out-pointer.
            None => unsafe {
                libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
            },
        }
        if ts.tv_sec != self.second {
            self.second = ts.tv_sec;
            // SAFETY: zeroed `tm` is a valid out-parameter; both calls are thread-safe.
            let mut tm: libc::tm = unsafe { std::mem::zeroed() };
            if self.fixed.is_some() {
                unsafe { libc::gmtime_r(&ts.tv_sec, &mut tm) };
            } else {
                unsafe { libc::localtime_r(&ts.tv_sec, &mut tm) };
            }
            let hms = format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
            self.hms.copy_from_slice(hms.as_bytes());
            let off = tm.tm_gmtoff;
            self.date_time = format!(
                "{:04}-{:02}-{:02}T{hms}",
                tm.tm_year + 1900,
                tm.tm_mon + 1,
                tm.tm_mday
            );
            let sign = if off < 0 { '-' } else { '+' };
            self.zone = format!("{sign}{:02}:{:02}", off.abs() / 3600, off.abs() % 3600 / 60);
        }
        (ts.tv_sec, ts.tv_nsec)
    }
}

/// The local wall-clock time as `HH:MM:SS` and as RFC 3339 with microseconds.
pub fn wall_clock() -> (String, String) {
    let mut clock = Clock::new();
    let (_, nsec) = clock.now();
    let hms = String::from_utf8_lossy(&clock.hms).into_owned();
    let iso = format!("{}.{:06}{}", clock.date_time, nsec / 1000, clock.zone);
    (hms, iso)
}

struct Column {
    name: String,
    /// JSON key and decoder of the column.
    key: String,
    node: Node,
    width: usize,
}

/// Renders events of one struct in one format.
pub struct Renderer {
    format: Format,
    size: usize,
    columns: Vec<Column>,
    /// Which channel's struct this is, shown when a package has several.
    label: Option<String>,
    clock: Clock,
    cell: Vec<u8>,
}

impl Renderer {
    pub fn new(format: Format, plan: Plan) -> Self {
        let columns = plan
            .columns()
            .into_iter()
            .map(|(name, node)| Column {
                name: name.to_ascii_uppercase(),
                key: name.to_string(),
                width: natural_width(node).max(name.len()),
                node: node.clone(),
            })
            .collect();
        Renderer {
            format,
            size: plan.size,
            columns,
            label: None,
            clock: Clock::new(),
            cell: Vec::with_capacity(64),
        }
    }

    /// Tag every line with `label` (an EVENT column, an `"event"` key): for packages whose
    /// channels carry different structs.
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = Some(label.to_string());
        self
    }

    /// Show every event at this instant (seconds and nanoseconds since the epoch), in UTC,
    /// instead of the local wall clock: for reproducible output in tests.
    pub fn fix_time(&mut self, secs: i64, nsec: i64) {
        self.clock.fixed = Some((secs, nsec));
        self.clock.second = i64::MIN;
    }

    fn label_width(&self) -> usize {
        self.label.as_ref().map_or(0, |l| l.len().max(5))
    }

    /// The header line, if the format has one.
    pub fn header(&self, out: &mut Vec<u8>) {
        match self.format {
            Format::Table => {
                out.extend_from_slice(b"TIME     ");
                if self.label.is_some() {
                    pad(out, b"EVENT", self.label_width());
                }
                let last = self.columns.len().saturating_sub(1);
                for (i, col) in self.columns.iter().enumerate() {
                    if i == last {
                        out.extend_from_slice(col.name.as_bytes());
                    } else {
                        pad(out, col.name.as_bytes(), col.width);
                    }
                }
                out.push(b'\n');
            }
            Format::Csv => {
                out.extend_from_slice(b"time");
                if self.label.is_some() {
                    out.extend_from_slice(b",event");
                }
                for col in &self.columns {
                    out.push(b',');
                    out.extend_from_slice(col.key.as_bytes());
                }
                out.push(b'\n');
            }
            Format::Json => {}
        }
    }

    /// Render one record. Records shorter than the struct are the caller's to reject.
    pub fn event(&mut self, rec: &[u8], out: &mut Vec<u8>) {
        let (_, nsec) = self.clock.now();
        match self.format {
            Format::Table => {
                out.extend_from_slice(&self.clock.hms);
                out.push(b' ');
                if let Some(label) = &self.label {
                    pad(out, label.as_bytes(), self.label_width());
                }
                let last = self.columns.len().saturating_sub(1);
                for (i, col) in self.columns.iter().enumerate() {
                    let start = out.len();
                    col.node.visit(rec, 0, &mut TextSink(out));
                    if i != last {
                        let written = out.len() - start;
                        out.resize(out.len() + col.width.saturating_sub(written) + 1, b' ');
                    }
                }
                out.push(b'\n');
            }
            Format::Json => {
                out.extend_from_slice(b"{\"time\":\"");
                out.extend_from_slice(self.clock.date_time.as_bytes());
                let _ = write!(out, ".{:06}", nsec / 1000);
                out.extend_from_slice(self.clock.zone.as_bytes());
                out.push(b'"');
                let mut sink = JsonSink(out);
                if let Some(label) = &self.label {
                    sink.field("event", false);
                    sink.text(label.as_bytes());
                }
                for col in &self.columns {
                    sink.field(&col.key, false);
                    col.node.visit(rec, 0, &mut sink);
                }
                out.extend_from_slice(b"}\n");
            }
            Format::Csv => {
                out.extend_from_slice(&self.clock.hms);
                if let Some(label) = &self.label {
                    out.push(b',');
                    csv_cell(out, label.as_bytes());
                }
                for col in &self.columns {
                    out.push(b',');
                    self.cell.clear();
                    col.node.visit(rec, 0, &mut TextSink(&mut self.cell));
                    csv_cell(out, &self.cell);
                }
                out.push(b'\n');
            }
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }
}

/// `text` left-aligned in `width` columns, then a space.
fn pad(out: &mut Vec<u8>, text: &[u8], width: usize) {
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
