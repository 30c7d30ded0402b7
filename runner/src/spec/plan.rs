//! The decoder: a [`Plan`] is compiled once from a resolved [`Type`] into a tree of field
//! readers with absolute offsets; walking it over raw bytes feeds a [`Sink`]. Every output
//! (table, JSON, CSV, and the JSON defaults of globals in a package) is a sink, so there is
//! exactly one decoder.
//!
//! An event's plan also knows its struct's trailing array (`spec::tail`): a record may end
//! inside it, and is then decoded up to its length.

use crate::spec::tail;
use crate::spec::types::{sign_extend, Bitfield, Kind, Member, Type};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("member `{field}` of `{c}` lies outside the type's {size} bytes")]
    OutOfBounds { c: String, field: String, size: u64 },
    #[error("`{c}` has an integer of {size} bytes; 1, 2, 4, 8 and 16 are supported")]
    IntSize { c: String, size: u32 },
    #[error("`{c}` is a pointer of {size} bytes; BPF pointers are 8")]
    PointerSize { c: String, size: u32 },
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

impl Plan {
    /// A decoder for values of `ty` that are always whole (map keys and values, globals).
    pub fn compile(ty: &Type) -> Result<Plan, PlanError> {
        let size = ty.size() as usize;
        let root = compile(ty, 0, ty, size)?;
        Ok(Plan {
            size,
            fixed: size,
            root,
        })
    }

    /// A decoder for the records of an event channel, which may end inside the struct's
    /// trailing array (`spec::tail`). `padded`: the channel pads records to 8 bytes.
    pub fn record(ty: &Type, padded: bool) -> Result<Plan, PlanError> {
        let mut plan = Plan::compile(ty)?;
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
        *last = Node::Trailing {
            off: member.offset as usize,
            bytes: *len as usize * stride,
            stride,
            full: Box::new(full),
            elem: Box::new(compile(elem, 0, elem, stride)?),
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

fn compile(ty: &Type, base: usize, root: &Type, root_size: usize) -> Result<Node, PlanError> {
    let end = usize::try_from(ty.size()).map_or(usize::MAX, |size| base.saturating_add(size));
    if end > root_size {
        return Err(PlanError::OutOfBounds {
            c: root.c.clone(),
            field: ty.c.clone(),
            size: root_size as u64,
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
        Kind::Array { len, elem } if ty.is_text() => {
            let _ = elem;
            Node::Text {
                off: base,
                len: *len as usize,
            }
        }
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
            Node::Array {
                off: base,
                // Elements of no size hold nothing: an empty list, not a billion `{}`.
                len: if stride == 0 { 0 } else { *len as usize },
                stride,
                elem: Box::new(compile(elem, 0, elem, stride)?),
            }
        }
        Kind::Struct { members, .. } | Kind::Union { members, .. } => {
            compile_members(members, base, root, root_size)?
        }
    })
}

/// A struct's or union's members, read from `base`.
fn compile_members(
    members: &[Member],
    base: usize,
    root: &Type,
    root_size: usize,
) -> Result<Node, PlanError> {
    let mut fields = Vec::with_capacity(members.len());
    for m in members {
        let node = match m.bitfield {
            Some(bf) => bitfield(m, bf, base, root, root_size)?,
            None => compile(&m.ty, base + m.offset as usize, root, root_size)?,
        };
        match node {
            // An anonymous struct or union: its members read as the parent's own.
            Node::Record { fields: inner } if m.name.is_empty() => fields.extend(inner),
            node => fields.push((m.name.clone(), node)),
        }
    }
    Ok(Node::Record { fields })
}

fn bitfield(
    m: &Member,
    bf: Bitfield,
    base: usize,
    root: &Type,
    root_size: usize,
) -> Result<Node, PlanError> {
    let (signed, names) = match &m.ty.kind {
        Kind::Int { signed, .. } | Kind::Enum { signed, .. } => (*signed, enum_names(&m.ty)),
        Kind::Char { signed } => (*signed, Vec::new()),
        _ => (false, Vec::new()),
    };
    let bit_off = base * 8 + bf.bit_offset as usize;
    if bf.bits > 64 || (bit_off + bf.bits as usize).div_ceil(8) > root_size {
        return Err(PlanError::OutOfBounds {
            c: root.c.clone(),
            field: m.name.clone(),
            size: root_size as u64,
        });
    }
    Ok(Node::Bits {
        bit_off,
        bits: bf.bits,
        signed,
        names,
    })
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
                    sink.field(name, i == 0);
                    node.visit(rec, base, sink);
                }
                sink.end_record();
            }
            Node::Trailing { .. } => self.visit_trailing(rec, base, sink),
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
