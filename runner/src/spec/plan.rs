//! The decoder: a [`Plan`] is compiled once from a resolved [`Type`] into a tree of field
//! readers with absolute offsets; walking it over raw bytes feeds a [`Sink`]. Every output
//! (table, JSON, CSV, and the JSON defaults of globals in a package) is a sink, so there is
//! exactly one decoder.
//!
//! An event's plan also knows its struct's trailing array (`spec::tail`): a record may end
//! inside it, and is then decoded up to its length.
//!
//! A member with a declared format (`runner:format=errno`) reads through a
//! [`Node::Format`]: the sink gets the format and the raw number (or an address's bytes),
//! and renders it as it likes. Formats declared on request (`runner:names=`) are compiled
//! in only when the run asks for names. Field names in a record are unique: unnamed
//! members (padding bitfields) are not shown, and a repeated name (possible only in BTF
//! not written by a C compiler) gets `@2`, `@3`... after it.

use crate::spec::tail;
use crate::spec::types::{sign_extend, Bitfield, Kind, Member, Selector, Type};
use crate::spec::vocab::ValueFormat;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("member `{field}` of `{c}` lies outside the type's {size} bytes")]
    OutOfBounds { c: String, field: String, size: u64 },
    #[error("`{c}` has an integer of {size} bytes; 1, 2, 4, 8 and 16 are supported")]
    IntSize { c: String, size: u32 },
    #[error("member `{member}` of `{c}` is declared `{format}`, which needs {needs}")]
    Format {
        c: String,
        member: String,
        format: ValueFormat,
        needs: &'static str,
    },
    #[error("member `{member}` of `{c}`: {what}")]
    Select {
        c: String,
        member: String,
        what: String,
    },
    #[error("`{c}` is a pointer of {size} bytes; BPF pointers are 8")]
    PointerSize { c: String, size: u32 },
}

/// What a formatted value holds, as read from the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw<'a> {
    /// An integer of `bits` bits (at most 64), sign-extended when it is signed.
    Int { v: i128, bits: u32 },
    /// A 128-bit integer's bits, and whether it is signed.
    Wide { bits: u128, signed: bool },
    /// The bytes of an address.
    Bytes(&'a [u8]),
}

impl Raw<'_> {
    /// Hand the raw value to `sink` as the decoder would without a format.
    pub fn emit<S: Sink + ?Sized>(self, sink: &mut S) {
        match self {
            Raw::Int { v, .. } if v < 0 => sink.int(v as i64),
            Raw::Int { v, .. } => sink.uint(v as u64),
            Raw::Wide { bits, signed: true } => sink.int128(bits as i128),
            Raw::Wide { bits, .. } => sink.uint128(bits),
            Raw::Bytes(b) => sink.bytes(b),
        }
    }
}

/// What a decoded value is handed to.
pub trait Sink {
    fn int(&mut self, v: i64);
    fn uint(&mut self, v: u64);
    fn int128(&mut self, v: i128);
    fn uint128(&mut self, v: u128);
    fn bool(&mut self, v: bool);
    fn float(&mut self, v: f64);
    /// `char[N]` contents up to the first NUL.
    fn text(&mut self, s: &[u8]);
    /// The NUL-separated strings of a variable-length record's trailing char array
    /// (`a\0b\0c`: three strings; nothing: none). A list of texts unless the sink says
    /// otherwise.
    fn strings(&mut self, s: &[u8]) {
        self.begin_list();
        for (i, one) in s.split(|&b| b == 0).enumerate().filter(|_| !s.is_empty()) {
            self.item(i == 0);
            self.text(one);
        }
        self.end_list();
    }
    /// A byte array that is not text.
    fn bytes(&mut self, b: &[u8]);
    fn enum_name(&mut self, name: &str);
    fn pointer(&mut self, v: u64);
    fn begin_list(&mut self);
    fn item(&mut self, first: bool);
    fn end_list(&mut self);
    fn begin_record(&mut self);
    fn field(&mut self, name: &str, first: bool);
    fn end_record(&mut self);
    /// A value with a declared format. Sinks that do not show formats (a JSON value, sort
    /// keys) take the raw value.
    fn formatted(&mut self, format: &ValueFormat, raw: Raw<'_>) {
        let _ = format;
        raw.emit(self)
    }
    /// After field `name`, whose format loses the number it shows
    /// ([`ValueFormat::keeps_raw`]): whether the sink wants that number too, as a field of
    /// its own it has just begun (JSON: `"ret@raw":`).
    fn raw_field(&mut self, name: &str) -> bool {
        let _ = name;
        false
    }
}

/// A sink seen through with every format taken off: what a raw field is written with.
/// (Not generic: a record inside it is written through the same type again.)
struct RawValues<'s>(&'s mut dyn Sink);

impl Sink for RawValues<'_> {
    fn int(&mut self, v: i64) {
        self.0.int(v)
    }
    fn uint(&mut self, v: u64) {
        self.0.uint(v)
    }
    fn int128(&mut self, v: i128) {
        self.0.int128(v)
    }
    fn uint128(&mut self, v: u128) {
        self.0.uint128(v)
    }
    fn bool(&mut self, v: bool) {
        self.0.bool(v)
    }
    fn float(&mut self, v: f64) {
        self.0.float(v)
    }
    fn text(&mut self, s: &[u8]) {
        self.0.text(s)
    }
    fn strings(&mut self, s: &[u8]) {
        self.0.strings(s)
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.bytes(b)
    }
    fn enum_name(&mut self, name: &str) {
        self.0.enum_name(name)
    }
    fn pointer(&mut self, v: u64) {
        self.0.pointer(v)
    }
    fn begin_list(&mut self) {
        self.0.begin_list()
    }
    fn item(&mut self, first: bool) {
        self.0.item(first)
    }
    fn end_list(&mut self) {
        self.0.end_list()
    }
    fn begin_record(&mut self) {
        self.0.begin_record()
    }
    fn field(&mut self, name: &str, first: bool) {
        self.0.field(name, first)
    }
    fn end_record(&mut self) {
        self.0.end_record()
    }
    fn raw_field(&mut self, _: &str) -> bool {
        false
    }
}

/// A reader for one value. Offsets are absolute from the start of the record (or of the
/// array element being read, for nodes inside an array).
#[derive(Debug, Clone)]
pub enum Node {
    Int {
        off: usize,
        size: usize,
        signed: bool,
    },
    Bool {
        off: usize,
        size: usize,
    },
    Float {
        off: usize,
        size: usize,
    },
    Enum {
        off: usize,
        size: usize,
        signed: bool,
        names: Vec<(i128, String)>,
    },
    Bits {
        bit_off: usize,
        bits: u32,
        signed: bool,
        names: Vec<(i128, String)>,
    },
    Text {
        off: usize,
        len: usize,
    },
    Bytes {
        off: usize,
        len: usize,
    },
    Pointer {
        off: usize,
    },
    Array {
        off: usize,
        len: usize,
        stride: usize,
        elem: Box<Node>,
    },
    Record {
        fields: Vec<(String, Node)>,
    },
    /// The trailing array of an event's struct: all of `full` when the record holds it,
    /// else the whole elements the record holds (for a char array, its strings).
    Trailing {
        off: usize,
        /// The bytes of the whole array (0 for a flexible array member).
        bytes: usize,
        stride: usize,
        full: Box<Node>,
        elem: Box<Node>,
        /// An array of `char`: strings.
        text: bool,
        /// Records come padded to 8 bytes (a perf buffer): see [`tail::strings`].
        padded: bool,
    },
    /// A union of which one member is shown, the one the value `by` reads selects
    /// (`cases`: value, index into `fields`); for any other value, all of them.
    Select {
        by: Box<Node>,
        cases: Vec<(i128, usize)>,
        fields: Vec<(String, Node)>,
    },
    /// A value shown in a declared format: `node` reads the number (an `Int`, `Bits`,
    /// `Enum` or `Pointer`), or the bytes of an address (`Bytes`).
    Format {
        format: ValueFormat,
        node: Box<Node>,
        /// For `ip:<member>`: reads the member that says which family the address is.
        family: Option<Box<Node>>,
    },
}

/// A compiled decoder for one record type.
#[derive(Debug, Clone)]
pub struct Plan {
    pub size: usize,
    /// The shortest record that can be decoded: the fixed part of an event's struct
    /// (before its trailing array), or the whole type.
    pub fixed: usize,
    pub root: Node,
}

/// Which declared formats a plan shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shows {
    /// Also the formats declared on request (`runner:names=`): `runner run --names`.
    pub names: bool,
}

impl Plan {
    /// A decoder for values of `ty` that are always whole (map keys and values, globals),
    /// with the formats declared to be shown always.
    pub fn compile(ty: &Type) -> Result<Plan, PlanError> {
        Plan::compile_showing(ty, Shows::default())
    }

    /// [`Plan::compile`], showing the formats `shows` asks for.
    pub fn compile_showing(ty: &Type, shows: Shows) -> Result<Plan, PlanError> {
        let size = ty.size() as usize;
        let root = Compiler {
            root: ty,
            root_size: size,
            shows,
        }
        .compile(ty, 0)?;
        Ok(Plan {
            size,
            fixed: size,
            root,
        })
    }

    /// A decoder for the records of an event channel, which may end inside the struct's
    /// trailing array (`spec::tail`). `padded`: the channel pads records to 8 bytes.
    pub fn record(ty: &Type, padded: bool) -> Result<Plan, PlanError> {
        Plan::record_showing(ty, padded, Shows::default())
    }

    /// [`Plan::record`], showing the formats `shows` asks for.
    pub fn record_showing(ty: &Type, padded: bool, shows: Shows) -> Result<Plan, PlanError> {
        let mut plan = Plan::compile_showing(ty, shows)?;
        let Some(member) = tail::trailing_member(ty) else {
            return Ok(plan);
        };
        let Kind::Array { len, elem } = &member.ty.kind else {
            return Ok(plan);
        };
        let Node::Record { fields } = &mut plan.root else {
            return Ok(plan);
        };
        let Some((name, last)) = fields.last_mut() else {
            return Ok(plan);
        };
        if *name != member.name {
            return Ok(plan);
        }
        let stride = elem.size() as usize;
        let full = std::mem::replace(last, Node::Record { fields: Vec::new() });
        let compiler = Compiler {
            root: elem,
            root_size: stride,
            shows,
        };
        let mut elem = compiler.compile(elem, 0)?;
        if let Some(format) = member
            .shown
            .as_ref()
            .and_then(|s| s.shown_format(shows.names))
        {
            elem = compiler.format(member, format, elem)?;
        }
        *last = Node::Trailing {
            off: member.offset as usize,
            bytes: *len as usize * stride,
            stride,
            full: Box::new(full),
            elem: Box::new(elem),
            text: member.ty.is_text(),
            padded,
        };
        plan.fixed = member.offset as usize;
        Ok(plan)
    }

    /// Top-level fields (one per column), or the whole value as a single unnamed field.
    pub fn columns(&self) -> Vec<(&str, &Node)> {
        match &self.root {
            Node::Record { fields } => fields.iter().map(|(n, f)| (n.as_str(), f)).collect(),
            other => vec![("value", other)],
        }
    }

    /// Decode `rec` into `sink`. The caller guarantees `rec.len() >= self.fixed`.
    pub fn visit<S: Sink>(&self, rec: &[u8], sink: &mut S) {
        self.root.visit(rec, 0, sink);
    }
}

fn enum_names(ty: &Type) -> Vec<(i128, String)> {
    match &ty.kind {
        Kind::Enum { values, .. } => values.iter().map(|v| (v.value, v.name.clone())).collect(),
        _ => Vec::new(),
    }
}

/// Compiles the nodes of one plan: the type being compiled (for errors and bounds) and
/// the formats shown.
struct Compiler<'a> {
    root: &'a Type,
    root_size: usize,
    shows: Shows,
}

impl Compiler<'_> {
    fn compile(&self, ty: &Type, base: usize) -> Result<Node, PlanError> {
        let end = usize::try_from(ty.size()).map_or(usize::MAX, |size| base.saturating_add(size));
        if end > self.root_size {
            return Err(PlanError::OutOfBounds {
                c: self.root.c.clone(),
                field: ty.c.clone(),
                size: self.root_size as u64,
            });
        }
        let int_size = |size: u32| match size {
            1 | 2 | 4 | 8 | 16 => Ok(size as usize),
            _ => Err(PlanError::IntSize {
                c: ty.c.clone(),
                size,
            }),
        };
        Ok(match &ty.kind {
            Kind::Int { size, signed } => Node::Int {
                off: base,
                size: int_size(*size)?,
                signed: *signed,
            },
            Kind::Char { signed } => Node::Int {
                off: base,
                size: 1,
                signed: *signed,
            },
            Kind::Bool { size } => Node::Bool {
                off: base,
                size: int_size(*size)?,
            },
            Kind::Float { size } => Node::Float {
                off: base,
                size: *size as usize,
            },
            Kind::Enum { size, signed, .. } => Node::Enum {
                off: base,
                size: int_size(*size)?,
                signed: *signed,
                names: enum_names(ty),
            },
            Kind::Pointer { size: 8 } => Node::Pointer { off: base },
            Kind::Pointer { size } => {
                return Err(PlanError::PointerSize {
                    c: ty.c.clone(),
                    size: *size,
                })
            }
            Kind::Array { len, .. } if ty.is_text() => Node::Text {
                off: base,
                len: *len as usize,
            },
            Kind::Array { len, elem }
                if matches!(
                    elem.kind,
                    Kind::Int {
                        size: 1,
                        signed: false
                    }
                ) =>
            {
                Node::Bytes {
                    off: base,
                    len: *len as usize,
                }
            }
            Kind::Array { len, elem } => {
                let stride = elem.size() as usize;
                let inner = Compiler {
                    root: elem,
                    root_size: stride,
                    shows: self.shows,
                };
                Node::Array {
                    off: base,
                    // Elements of no size hold nothing: an empty list, not a billion `{}`.
                    len: if stride == 0 { 0 } else { *len as usize },
                    stride,
                    elem: Box::new(inner.compile(elem, 0)?),
                }
            }
            Kind::Struct { members, .. } | Kind::Union { members, .. } => {
                self.members(members, base)?
            }
        })
    }

    /// A struct's or union's members, read from `base`, each in its declared format.
    fn members(&self, members: &[Member], base: usize) -> Result<Node, PlanError> {
        let mut fields: Vec<(String, Node)> = Vec::with_capacity(members.len());
        for m in members {
            let mut node = match m.bitfield {
                Some(bf) => self.bitfield(m, bf, base)?,
                None => self.compile(&m.ty, base + m.offset as usize)?,
            };
            let shown = m.shown.clone().unwrap_or_default();
            if shown.hidden {
                continue;
            }
            if let Some(format) = shown.shown_format(self.shows.names) {
                let family = self.family(m, format, members, base)?;
                node = self.format(m, format, node)?;
                if let (Node::Format { family: slot, .. }, Some(f)) = (&mut node, family) {
                    *slot = Some(Box::new(f));
                }
            }
            if let Some(selector) = &shown.selected_by {
                node = self.select(m, selector, node, members, base)?;
            }
            match node {
                // An anonymous struct or union: its members read as the parent's own.
                Node::Record { fields: inner } if m.name.is_empty() => fields.extend(inner),
                // Any other unnamed member is padding (`int :3;`): nothing to show.
                _ if m.name.is_empty() => {}
                // A struct whose members are hidden but one shows as that one (bcc's
                // opensnoop: `fname` is its path, not `{pathes=...}`).
                Node::Record { fields: mut inner } if inner.len() == 1 && hides_members(&m.ty) => {
                    let (_, only) = inner.pop().expect("one field");
                    fields.push((key_name(&m.name), only));
                }
                node => fields.push((key_name(&m.name), node)),
            }
        }
        unique_names(&mut fields);
        Ok(Node::Record { fields })
    }

    fn bitfield(&self, m: &Member, bf: Bitfield, base: usize) -> Result<Node, PlanError> {
        let (signed, names) = match &m.ty.kind {
            Kind::Int { signed, .. } | Kind::Enum { signed, .. } => (*signed, enum_names(&m.ty)),
            Kind::Char { signed } => (*signed, Vec::new()),
            _ => (false, Vec::new()),
        };
        let bit_off = base * 8 + bf.bit_offset as usize;
        if bf.bits > 64 || (bit_off + bf.bits as usize).div_ceil(8) > self.root_size {
            return Err(PlanError::OutOfBounds {
                c: self.root.c.clone(),
                field: m.name.clone(),
                size: self.root_size as u64,
            });
        }
        Ok(Node::Bits {
            bit_off,
            bits: bf.bits,
            signed,
            names,
        })
    }

    /// `node`, the reader of member `m`, shown as `format`: an integer as it is, an array
    /// of integers element by element; an address format takes the bytes of a whole
    /// integer or array of the right size.
    fn format(&self, m: &Member, format: &ValueFormat, node: Node) -> Result<Node, PlanError> {
        let fail = |needs| PlanError::Format {
            c: self.root.c.clone(),
            member: m.name.clone(),
            format: format.clone(),
            needs,
        };
        let wrap = |node: Node| Node::Format {
            format: format.clone(),
            node: Box::new(node),
            family: None,
        };
        if let Some(len) = address_len(format) {
            let needs = match format {
                ValueFormat::Ipv4 => "4 bytes: a __u32 or __u8[4]",
                _ => "16 bytes: __u8[16], __u32[4] or unsigned __int128",
            };
            return match node {
                Node::Int { off, size, .. } if size == len => Ok(wrap(Node::Bytes { off, len })),
                Node::Bytes { off, len: l } if l == len => Ok(wrap(Node::Bytes { off, len })),
                Node::Array {
                    off,
                    len: n,
                    stride,
                    elem,
                } if n * stride == len && matches!(*elem, Node::Int { .. }) => {
                    Ok(wrap(Node::Bytes { off, len }))
                }
                _ => Err(fail(needs)),
            };
        }
        match node {
            Node::Int { .. } | Node::Bits { .. } | Node::Enum { .. } | Node::Pointer { .. } => {
                Ok(wrap(node))
            }
            Node::Bytes { off, len } => Ok(Node::Array {
                off,
                len,
                stride: 1,
                elem: Box::new(wrap(Node::Int {
                    off: 0,
                    size: 1,
                    signed: false,
                })),
            }),
            Node::Array {
                off,
                len,
                stride,
                elem,
            } => Ok(Node::Array {
                off,
                len,
                stride,
                elem: Box::new(self.format(m, format, *elem)?),
            }),
            _ => Err(fail("an integer, or an array of integers")),
        }
    }

    /// For `ip:<member>`, the reader of that member of the same struct.
    fn family(
        &self,
        m: &Member,
        format: &ValueFormat,
        members: &[Member],
        base: usize,
    ) -> Result<Option<Node>, PlanError> {
        let ValueFormat::Ip(name) = format else {
            return Ok(None);
        };
        self.sibling_int(members, name, base).map(Some).ok_or_else(|| PlanError::Format {
            c: self.root.c.clone(),
            member: m.name.clone(),
            format: format.clone(),
            needs: "an integer member of the same struct by that name, holding the family (4 or AF_INET, 6 or AF_INET6)",
        })
    }

    /// The reader of integer (or enum) member `name` of the struct of `members`.
    fn sibling_int(&self, members: &[Member], name: &str, base: usize) -> Option<Node> {
        let sibling = members.iter().find(|s| s.name == *name)?;
        let node = match sibling.bitfield {
            Some(bf) => self.bitfield(sibling, bf, base).ok()?,
            None => self
                .compile(&sibling.ty, base + sibling.offset as usize)
                .ok()?,
        };
        matches!(
            node,
            Node::Int { .. } | Node::Bits { .. } | Node::Enum { .. }
        )
        .then_some(node)
    }

    /// Union member `m`, read by `node`, showing only the member `selector` picks.
    fn select(
        &self,
        m: &Member,
        selector: &Selector,
        node: Node,
        members: &[Member],
        base: usize,
    ) -> Result<Node, PlanError> {
        let fail = |what: String| PlanError::Select {
            c: self.root.c.clone(),
            member: m.name.clone(),
            what,
        };
        let Node::Record { fields } = node else {
            return Err(fail("only a union's member can be selected".into()));
        };
        let by = self
            .sibling_int(members, &selector.member, base)
            .ok_or_else(|| {
                fail(format!(
                    "no integer or enum member `{}` in the same struct to select by",
                    selector.member
                ))
            })?;
        let mut cases = Vec::new();
        for case in &selector.cases {
            let index = fields
                .iter()
                .position(|(n, _)| *n == case.member)
                .ok_or_else(|| fail(format!("no member `{}` to select", case.member)))?;
            cases.push((case.value, index));
        }
        Ok(Node::Select {
            by: Box::new(by),
            cases,
            fields,
        })
    }
}

/// Whether a struct or union hides some of its members (sidecar `formats`: `hide`).
fn hides_members(ty: &Type) -> bool {
    match &ty.kind {
        Kind::Struct { members, .. } | Kind::Union { members, .. } => members
            .iter()
            .any(|m| m.shown.as_ref().is_some_and(|s| s.hidden)),
        _ => false,
    }
}

/// The bytes an address format reads.
fn address_len(format: &ValueFormat) -> Option<usize> {
    match format {
        ValueFormat::Ipv4 => Some(4),
        ValueFormat::Ipv6 | ValueFormat::Ip(_) => Some(16),
        _ => None,
    }
}

/// A member's name as a field's: C identifier characters only (BTF not written by a C
/// compiler may hold others), so no field can look like a name the outputs make up
/// (`@time`, `ret@raw`, `delta(ms)`, `key.pid`).
fn key_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Make the names of a record's fields unique: the second `x` is `x@2`, the third `x@3`
/// (only BTF not written by a C compiler repeats a name; `@` is in no C identifier).
fn unique_names(fields: &mut [(String, Node)]) {
    for i in 1..fields.len() {
        if !fields[..i].iter().any(|(n, _)| *n == fields[i].0) {
            continue;
        }
        let base = fields[i].0.clone();
        let mut k = 2;
        while fields[..i].iter().any(|(n, _)| *n == format!("{base}@{k}")) {
            k += 1;
        }
        fields[i].0 = format!("{base}@{k}");
    }
}

fn read_u64(rec: &[u8], off: usize, size: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf[..size].copy_from_slice(&rec[off..off + size]);
    u64::from_le_bytes(buf)
}

fn read_i128(rec: &[u8], off: usize) -> i128 {
    let mut buf = [0u8; 16];
    buf.copy_from_slice(&rec[off..off + 16]);
    i128::from_le_bytes(buf)
}

/// The `bits` bits (1..=64) starting `start` bits into `rec`.
fn read_bits(rec: &[u8], start: usize, bits: u32) -> u64 {
    let first = start / 8;
    let last = (start + bits as usize).div_ceil(8);
    let mut buf = [0u8; 16];
    buf[..last - first].copy_from_slice(&rec[first..last]);
    let raw = (u128::from_le_bytes(buf) >> (start % 8)) as u64;
    if bits == 64 {
        raw
    } else {
        raw & ((1u64 << bits) - 1)
    }
}

/// A `bits`-wide raw value as a number, sign-extended when it is signed.
fn read_int(raw: u64, bits: u32, signed: bool) -> i128 {
    if signed {
        i128::from(sign_extend(raw, bits))
    } else {
        i128::from(raw)
    }
}

fn emit_enum<S: Sink>(sink: &mut S, v: i128, names: &[(i128, String)], signed: bool) {
    match names.iter().find(|(value, _)| *value == v) {
        Some((_, name)) => sink.enum_name(name),
        None if signed => sink.int(v as i64),
        None => sink.uint(v as u64),
    }
}

/// The integer `node` reads at `base`, if it reads one.
fn raw_int<'a>(node: &Node, rec: &'a [u8], base: usize) -> Option<Raw<'a>> {
    Some(match node {
        Node::Int {
            off,
            size: 16,
            signed,
        } => Raw::Wide {
            bits: read_i128(rec, base + off) as u128,
            signed: *signed,
        },
        Node::Int { off, size, signed }
        | Node::Enum {
            off, size, signed, ..
        } => {
            let size = (*size).min(8);
            let bits = size as u32 * 8;
            Raw::Int {
                v: read_int(read_u64(rec, base + off, size), bits, *signed),
                bits,
            }
        }
        Node::Bits {
            bit_off,
            bits,
            signed,
            ..
        } => Raw::Int {
            v: read_int(read_bits(rec, base * 8 + bit_off, *bits), *bits, *signed),
            bits: *bits,
        },
        Node::Pointer { off } => Raw::Int {
            v: i128::from(read_u64(rec, base + off, 8)),
            bits: 64,
        },
        Node::Bytes { off, len } => Raw::Bytes(&rec[base + off..base + off + len]),
        _ => return None,
    })
}

/// A union of which the value `by` reads selects the member shown (`cases`: value, index
/// into `fields`); for a value no case names, every member.
fn visit_select<S: Sink>(
    by: &Node,
    cases: &[(i128, usize)],
    fields: &[(String, Node)],
    rec: &[u8],
    base: usize,
    sink: &mut S,
) {
    let selected = match raw_int(by, rec, base) {
        Some(Raw::Int { v, .. }) => cases.iter().find(|(c, _)| *c == v),
        _ => None,
    };
    sink.begin_record();
    match selected.and_then(|(_, i)| fields.get(*i)) {
        Some((name, node)) => node.visit_field(name, true, rec, base, sink),
        None => {
            for (i, (name, node)) in fields.iter().enumerate() {
                node.visit_field(name, i == 0, rec, base, sink);
            }
        }
    }
    sink.end_record();
}

/// A formatted value: its raw number (or bytes) and its format to the sink; for
/// `ip:<member>`, the format that member's family says, and the address's bytes.
fn visit_format<S: Sink>(
    format: &ValueFormat,
    node: &Node,
    family: Option<&Node>,
    rec: &[u8],
    base: usize,
    sink: &mut S,
) {
    let Some(raw) = raw_int(node, rec, base) else {
        return node.visit(rec, base, sink);
    };
    let (Some(family), Raw::Bytes(bytes)) = (family, raw) else {
        return sink.formatted(format, raw);
    };
    let family = match raw_int(family, rec, base) {
        Some(Raw::Int { v, .. }) => v,
        _ => 0,
    };
    // 4 and 6 as bindsnoop's `ver`; AF_INET (2) and AF_INET6 (10) as a sockaddr's family.
    match family {
        4 | 2 => sink.formatted(&ValueFormat::Ipv4, Raw::Bytes(&bytes[..4])),
        6 | 10 => sink.formatted(&ValueFormat::Ipv6, Raw::Bytes(bytes)),
        _ => sink.formatted(format, raw),
    }
}

impl Node {
    /// The node reading the whole member: for a trailing array of fixed size, the array
    /// as a record that holds all of it reads it (`--metrics` labels read that).
    pub fn whole(&self) -> &Node {
        match self {
            Node::Trailing { bytes, full, .. } if *bytes > 0 => full,
            other => other,
        }
    }

    pub fn visit<S: Sink>(&self, rec: &[u8], base: usize, sink: &mut S) {
        match self {
            Node::Int {
                off,
                size: 16,
                signed,
            } => {
                let v = read_i128(rec, base + off);
                if *signed {
                    sink.int128(v)
                } else {
                    sink.uint128(v as u128)
                }
            }
            Node::Int { off, size, signed } => {
                let v = read_u64(rec, base + off, *size);
                if *signed {
                    sink.int(sign_extend(v, *size as u32 * 8))
                } else {
                    sink.uint(v)
                }
            }
            Node::Bool { off, size } => {
                sink.bool(rec[base + off..base + off + size].iter().any(|&b| b != 0))
            }
            Node::Float { off, size: 4 } => {
                sink.float(f64::from(f32::from_bits(
                    read_u64(rec, base + off, 4) as u32
                )))
            }
            Node::Float { off, size: 8 } => {
                sink.float(f64::from_bits(read_u64(rec, base + off, 8)))
            }
            Node::Float { off, size } => sink.bytes(&rec[base + off..base + off + size]),
            Node::Enum {
                off,
                size,
                signed,
                names,
            } => {
                let size = (*size).min(8);
                let v = read_int(read_u64(rec, base + off, size), size as u32 * 8, *signed);
                emit_enum(sink, v, names, *signed);
            }
            Node::Bits {
                bit_off,
                bits,
                signed,
                names,
            } => {
                let v = read_int(read_bits(rec, base * 8 + bit_off, *bits), *bits, *signed);
                emit_enum(sink, v, names, *signed);
            }
            Node::Text { off, len } => {
                let s = &rec[base + off..base + off + len];
                let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                sink.text(&s[..end]);
            }
            Node::Bytes { off, len } => sink.bytes(&rec[base + off..base + off + len]),
            Node::Pointer { off } => sink.pointer(read_u64(rec, base + off, 8)),
            Node::Array {
                off,
                len,
                stride,
                elem,
            } => {
                sink.begin_list();
                for i in 0..*len {
                    sink.item(i == 0);
                    elem.visit(rec, base + off + i * stride, sink);
                }
                sink.end_list();
            }
            Node::Record { fields } => {
                sink.begin_record();
                for (i, (name, node)) in fields.iter().enumerate() {
                    node.visit_field(name, i == 0, rec, base, sink);
                }
                sink.end_record();
            }
            Node::Trailing { .. } => self.visit_trailing(rec, base, sink),
            Node::Format {
                format,
                node,
                family,
            } => visit_format(format, node, family.as_deref(), rec, base, sink),
            Node::Select { by, cases, fields } => visit_select(by, cases, fields, rec, base, sink),
        }
    }

    /// Field `name` of a record: the field, its value, and, when it is shown in a format
    /// that loses its number and the sink wants that number, the number in a field of its
    /// own (`ret@raw`).
    pub fn visit_field<S: Sink>(
        &self,
        name: &str,
        first: bool,
        rec: &[u8],
        base: usize,
        sink: &mut S,
    ) {
        sink.field(name, first);
        self.visit(rec, base, sink);
        if self.keeps_raw() && sink.raw_field(name) {
            self.visit(rec, base, &mut RawValues(sink));
        }
    }

    /// Whether the value is shown in a format that loses the number it shows (also inside
    /// an array): then JSON keeps the number too.
    pub fn keeps_raw(&self) -> bool {
        match self {
            Node::Format { format, .. } => format.keeps_raw(),
            Node::Array { elem, .. } | Node::Trailing { elem, .. } => elem.keeps_raw(),
            _ => false,
        }
    }

    /// A trailing array: whole, or cut where the record ends.
    fn visit_trailing<S: Sink>(&self, rec: &[u8], base: usize, sink: &mut S) {
        let Node::Trailing {
            off,
            bytes,
            stride,
            full,
            elem,
            text,
            padded,
        } = self
        else {
            return;
        };
        let start = base + off;
        let held = rec.len().saturating_sub(start);
        if *bytes > 0 && held >= *bytes {
            return full.visit(rec, base, sink);
        }
        let held = &rec[start.min(rec.len())..];
        match &**elem {
            _ if *text => sink.strings(tail::strings(held, *padded)),
            Node::Int {
                size: 1,
                signed: false,
                ..
            } => sink.bytes(held),
            _ => {
                let count = if *stride == 0 { 0 } else { held.len() / stride };
                sink.begin_list();
                for i in 0..count {
                    sink.item(i == 0);
                    elem.visit(rec, start + i * stride, sink);
                }
                sink.end_list();
            }
        }
    }
}
