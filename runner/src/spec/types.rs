//! The resolved type model: what a BTF type looks like once typedefs and qualifiers are
//! stripped and every layout is computed.
//!
//! The BTF walker (`btf.rs`) produces these, the package stores them, the flag generator
//! reads globals through them and the decoder (`plan.rs`) compiles them into readers.

use serde::{Deserialize, Deserializer, Serialize};

use crate::spec::vocab::ValueFormat;

/// A type with its C spelling (`pid_t`, `struct event`, `char[16]`) and its resolved kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Type {
    /// How the type is spelled in C, typedef name kept, qualifiers dropped.
    pub c: String,
    #[serde(flatten)]
    pub kind: Kind,
}

/// The resolved shape of a type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// Signed or unsigned integer of 1, 2, 4, 8 or 16 bytes.
    Int {
        size: u32,
        signed: bool,
    },
    /// Plain C `char`: a number on its own, text inside an array.
    Char {
        signed: bool,
    },
    Bool {
        size: u32,
    },
    Float {
        size: u32,
    },
    Enum {
        size: u32,
        signed: bool,
        values: Vec<EnumValue>,
    },
    Array {
        len: u32,
        elem: Box<Type>,
    },
    Struct {
        size: u32,
        members: Vec<Member>,
    },
    Union {
        size: u32,
        members: Vec<Member>,
    },
    /// A pointer: its value is an address, the pointee is only named in `c`.
    Pointer {
        size: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumValue {
    pub name: String,
    /// Signed enums hold i64 values, unsigned ones u64: i128 holds both.
    #[serde(with = "enum_value")]
    pub value: i128,
}

/// An enum value as a JSON integer (i64 or u64). Not i128 directly: `Type` is flattened,
/// and serde's buffering for flattened fields has no 128-bit integers.
mod enum_value {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(*v) {
            Ok(small) => s.serialize_i64(small),
            Err(_) => s.serialize_u64(u64::try_from(*v).map_err(serde::ser::Error::custom)?),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wide {
        U(u64),
        I(i64),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        Ok(match Wide::deserialize(d)? {
            Wide::U(v) => i128::from(v),
            Wide::I(v) => i128::from(v),
        })
    }
}

/// A struct or union member. Anonymous members have an empty name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// Byte offset of the member (for a bitfield, of the byte holding its first bit).
    pub offset: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitfield: Option<Bitfield>,
    #[serde(rename = "type")]
    pub ty: Type,
    /// How its values are shown, when the program declares it (for an array of numbers:
    /// each element). A format this runner does not know reads as none: formats are
    /// presentation.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "known_shown"
    )]
    pub shown: Option<Shown>,
}

/// How a member is shown, as the program declares it: a format (a `runner:format=` or
/// `runner:names=` tag on the member or on a typedef of its type, or its sidecar's
/// `formats`), or, from the sidecar, hidden, or for a union, only the member another
/// member selects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Shown {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<ValueFormat>,
    /// The format only when the run asks for names (`runner run --names`); the number
    /// otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub on_request: bool,
    /// Not shown at all.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// For a union: show only the member that another member of the struct selects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_by: Option<Selector>,
}

impl Shown {
    /// The format shown in a run that shows names (`--names`) or not, if any.
    pub fn shown_format(&self, names: bool) -> Option<&ValueFormat> {
        self.format.as_ref().filter(|_| names || !self.on_request)
    }

    /// Shown in `format` (only on request).
    pub fn format(format: ValueFormat, on_request: bool) -> Shown {
        Shown {
            format: Some(format),
            on_request,
            ..Shown::default()
        }
    }
}

/// Which member of a union is shown: the one a discriminant says (mountsnoop's `op`
/// says whether the union holds a mount's or an umount's arguments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// The member of the same struct that holds the discriminant (an integer or enum).
    pub member: String,
    /// The union member each value selects; for any other value every member is shown.
    pub cases: Vec<Case>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    #[serde(with = "enum_value")]
    pub value: i128,
    pub member: String,
}

/// A member's `shown` as a package spells it; a format this runner does not know reads
/// as none (the rest is kept).
fn known_shown<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Shown>, D::Error> {
    #[derive(Deserialize)]
    struct Spelled {
        #[serde(default)]
        format: Option<String>,
        #[serde(default)]
        on_request: bool,
        #[serde(default)]
        hidden: bool,
        #[serde(default)]
        selected_by: Option<Selector>,
    }
    let Some(s) = Option::<Spelled>::deserialize(d)? else {
        return Ok(None);
    };
    let shown = Shown {
        format: s.format.and_then(|f| ValueFormat::parse(&f).ok()),
        on_request: s.on_request,
        hidden: s.hidden,
        selected_by: s.selected_by,
    };
    Ok((shown != Shown::default()).then_some(shown))
}

/// Where a bitfield's bits are, counted from the start of the enclosing struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bitfield {
    pub bit_offset: u32,
    pub bits: u32,
}

/// The low `bits` bits of `v` (1..=64) read as a two's complement number.
pub fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits.clamp(1, 64);
    ((v << shift) as i64) >> shift
}

impl Type {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::Int { size, .. }
            | Kind::Bool { size }
            | Kind::Float { size }
            | Kind::Enum { size, .. }
            | Kind::Struct { size, .. }
            | Kind::Union { size, .. }
            | Kind::Pointer { size } => u64::from(*size),
            Kind::Char { .. } => 1,
            Kind::Array { len, elem } => u64::from(*len).saturating_mul(elem.size()),
        }
    }

    /// Whether `other` lays out the same bytes the same way: the same kinds, sizes,
    /// signedness, members (names, offsets, bitfields) and array lengths, at every level.
    /// C spellings and the names of enum values are presentation and not compared.
    pub fn same_layout(&self, other: &Type) -> bool {
        use Kind::*;
        match (&self.kind, &other.kind) {
            (
                Enum { size, signed, .. },
                Enum {
                    size: s2,
                    signed: g2,
                    ..
                },
            ) => size == s2 && signed == g2,
            (Array { len, elem }, Array { len: l2, elem: e2 }) => len == l2 && elem.same_layout(e2),
            (
                Struct { size, members },
                Struct {
                    size: s2,
                    members: m2,
                },
            )
            | (
                Union { size, members },
                Union {
                    size: s2,
                    members: m2,
                },
            ) => {
                size == s2
                    && members.len() == m2.len()
                    && members.iter().zip(m2).all(|(a, b)| {
                        a.name == b.name
                            && a.offset == b.offset
                            && a.bitfield == b.bitfield
                            && a.ty.same_layout(&b.ty)
                    })
            }
            (a, b) => a == b,
        }
    }

    /// True for `char[N]`, which is shown and parsed as text.
    pub fn is_text(&self) -> bool {
        matches!(&self.kind, Kind::Array { elem, .. } if matches!(elem.kind, Kind::Char { .. }))
    }

    /// A short description of the kind, for help and `runner info`.
    pub fn summary(&self) -> String {
        match &self.kind {
            Kind::Int { size, signed } => {
                format!("{}{}", if *signed { "i" } else { "u" }, size * 8)
            }
            Kind::Char { .. } => "char".into(),
            Kind::Bool { .. } => "bool".into(),
            Kind::Float { size } => format!("f{}", size * 8),
            Kind::Enum { values, .. } => {
                let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
                format!("enum: {}", names.join("|"))
            }
            Kind::Array { len, .. } if self.is_text() => {
                format!("string, at most {} bytes", len.saturating_sub(1))
            }
            Kind::Array { len, elem } => format!("array of {len} {}", elem.summary()),
            Kind::Struct { size, .. } => format!("struct, {size} bytes"),
            Kind::Union { size, .. } => format!("union, {size} bytes"),
            Kind::Pointer { .. } => "pointer".into(),
        }
    }
}
