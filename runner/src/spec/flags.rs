//! Globals as command-line flags. One description per global (its resolved type) drives
//! whether it can be a flag, the clap argument, its help line, its value parser and the
//! bytes written into the object.

use std::ffi::OsString;

use clap::{Arg, ArgAction};

use crate::spec::package::{Flag, Global};
use crate::spec::types::{Kind, Type};

/// Why a global of this type cannot be set from a command line, if it cannot.
pub fn unsettable_reason(ty: &Type) -> Option<&'static str> {
    match &ty.kind {
        Kind::Int { .. } | Kind::Char { .. } | Kind::Bool { .. } | Kind::Enum { .. } => None,
        Kind::Array { .. } if ty.is_text() => None,
        Kind::Float { .. } => Some("floating point globals cannot be set from the command line"),
        Kind::Array { .. } => Some("arrays other than char[N] cannot be set from the command line"),
        Kind::Struct { .. } => Some("structs cannot be set from the command line"),
        Kind::Union { .. } => Some("unions cannot be set from the command line"),
        Kind::Pointer { .. } => Some("pointers cannot be set from the command line"),
    }
}

/// Long options of `runner run` itself; a global of the same name gets no flag.
pub const RUNNER_OPTIONS: &[&str] = &[
    "output",
    "duration",
    "interval",
    "view",
    "clear",
    "names",
    "verbose",
    "attach",
    "no-program",
    "map-size",
    "metrics",
    "labels",
    "help",
    "version",
];

/// The flag a global with this name and type becomes.
pub fn flag_for(name: &str, ty: &Type) -> Flag {
    if let Some(reason) = unsettable_reason(ty) {
        return Flag::None(reason.into());
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Flag::None("the name is not usable as a flag".into());
    }
    let (long, alias) = spellings(name);
    if RUNNER_OPTIONS
        .iter()
        .any(|o| *o == long || Some(*o) == alias.as_deref())
    {
        return Flag::None(format!("--{long} is an option of the runner itself"));
    }
    Flag::Name(name.into())
}

/// The placeholder shown in help: `<INT>`, `<NAME>`, `<STRING>`...
fn value_name(ty: &Type) -> &'static str {
    match &ty.kind {
        Kind::Int { signed: true, .. } | Kind::Char { .. } => "INT",
        Kind::Int { signed: false, .. } => "UINT",
        Kind::Bool { .. } => "BOOL",
        Kind::Enum { .. } => "NAME|INT",
        _ => "STRING",
    }
}

/// Parse `text` as a value of `ty` and encode it as the bytes stored in the object.
pub fn encode(ty: &Type, text: &str) -> Result<Vec<u8>, String> {
    match &ty.kind {
        Kind::Int { size, signed } => encode_text_int(text, *size, *signed),
        Kind::Char { signed } => encode_text_int(text, 1, *signed),
        Kind::Bool { size } => {
            let v = match text {
                "true" | "1" | "yes" | "on" => 1,
                "false" | "0" | "no" | "off" => 0,
                _ => return Err("expected true or false".into()),
            };
            encode_int(v, *size, false)
        }
        Kind::Enum {
            size,
            signed,
            values,
        } => match values.iter().find(|v| v.name == text) {
            Some(v) => encode_int(v.value, *size, *signed),
            None if parse_int(text) == Err(IntError::NotInteger) => {
                let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
                Err(format!("expected one of {} or a number", names.join(", ")))
            }
            None => encode_text_int(text, *size, *signed),
        },
        Kind::Array { len, .. } if ty.is_text() => {
            let len = *len as usize;
            if text.len() >= len {
                return Err(format!(
                    "at most {} bytes fit (got {})",
                    len.saturating_sub(1),
                    text.len()
                ));
            }
            if text.contains('\0') {
                return Err("a NUL byte cannot be passed".into());
            }
            let mut bytes = text.as_bytes().to_vec();
            bytes.resize(len, 0);
            Ok(bytes)
        }
        _ => Err(unsettable_reason(ty).unwrap_or("not settable").into()),
    }
}

/// Why a text is not an integer of some type.
#[derive(Debug, PartialEq, Eq)]
enum IntError {
    NotInteger,
    /// An integer, but beyond what 128 bits hold.
    TooLarge,
}

/// Decimal, `0x` hex, `0o` octal or `0b` binary, with an optional sign.
fn parse_int(text: &str) -> Result<i128, IntError> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = match digits.get(..2) {
        Some("0x" | "0X") => (16, &digits[2..]),
        Some("0o" | "0O") => (8, &digits[2..]),
        Some("0b" | "0B") => (2, &digits[2..]),
        _ => (10, digits),
    };
    if digits.starts_with(['+', '-']) {
        return Err(IntError::NotInteger);
    }
    let magnitude =
        u128::from_str_radix(&digits.replace('_', ""), radix).map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow => IntError::TooLarge,
            _ => IntError::NotInteger,
        })?;
    if neg && magnitude == i128::MIN.unsigned_abs() {
        return Ok(i128::MIN);
    }
    let magnitude = i128::try_from(magnitude).map_err(|_| IntError::TooLarge)?;
    Ok(if neg { -magnitude } else { magnitude })
}

/// The values an integer of `size` bytes holds.
fn int_range(size: u32, signed: bool) -> (i128, i128) {
    let bits = size * 8;
    if bits >= 128 {
        (if signed { i128::MIN } else { 0 }, i128::MAX)
    } else if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    }
}

fn out_of_range(value: &str, size: u32, signed: bool) -> String {
    let (min, max) = int_range(size, signed);
    format!(
        "{value} is out of range for {}{} ({min}..={max})",
        if signed { "i" } else { "u" },
        size * 8
    )
}

/// `text` as an integer of `size` bytes, encoded little-endian.
fn encode_text_int(text: &str, size: u32, signed: bool) -> Result<Vec<u8>, String> {
    match parse_int(text) {
        Ok(v) => encode_int(v, size, signed),
        Err(IntError::TooLarge) => Err(out_of_range(text, size, signed)),
        Err(IntError::NotInteger) => Err("expected an integer".into()),
    }
}

fn encode_int(v: i128, size: u32, signed: bool) -> Result<Vec<u8>, String> {
    let (min, max) = int_range(size, signed);
    if v < min || v > max {
        return Err(out_of_range(&v.to_string(), size, signed));
    }
    Ok(v.to_le_bytes()[..size as usize].to_vec())
}

/// Join `--flag -0x80` into `--flag=-0x80` for the flags of integer globals, so a negative
/// value reads the same with a space as with `=` (clap takes only decimal negative
/// numbers as values, and would read `-0x80` as an option).
pub fn join_negative_values(globals: &[Global], args: &[OsString]) -> Vec<OsString> {
    let takes_numbers: Vec<String> = globals
        .iter()
        .filter(|g| {
            matches!(
                g.ty.kind,
                Kind::Int { .. } | Kind::Char { .. } | Kind::Enum { .. }
            )
        })
        .filter_map(|g| match &g.flag {
            Flag::Name(name) => Some(name),
            Flag::None(_) => None,
        })
        .flat_map(|name| {
            let (long, alias) = spellings(name);
            std::iter::once(long).chain(alias)
        })
        .map(|name| format!("--{name}"))
        .collect();
    let mut out = Vec::with_capacity(args.len());
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(rest.cloned());
            break;
        }
        let next_is_negative = rest.as_slice().first().is_some_and(|next| {
            let next = next.as_encoded_bytes();
            next.len() > 1 && next[0] == b'-' && next[1].is_ascii_digit()
        });
        if next_is_negative
            && arg
                .to_str()
                .is_some_and(|a| takes_numbers.iter().any(|f| f == a))
        {
            let mut joined = arg.clone();
            joined.push("=");
            joined.push(rest.next().expect("checked"));
            out.push(joined);
        } else {
            out.push(arg.clone());
        }
    }
    out
}

/// The long flag name and its kebab-case alias.
pub fn spellings(name: &str) -> (String, Option<String>) {
    let kebab = name.replace('_', "-");
    (name.to_string(), (kebab != name).then_some(kebab))
}

/// The clap argument for a settable global; `None` when it has no flag.
pub fn arg_for(global: &Global) -> Option<Arg> {
    let Flag::Name(name) = &global.flag else {
        return None;
    };
    let (long, alias) = spellings(name);
    let ty = global.ty.clone();
    let parser = move |text: &str| encode(&ty, text);
    let default = match &global.default {
        serde_json::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    let kind = match &global.ty.kind {
        Kind::Enum { .. } => format!("{}; {}", global.ty.c, global.ty.summary()),
        _ => global.ty.c.clone(),
    };
    let help = if global.help.is_empty() {
        format!("[{kind}, default {default}]")
    } else {
        format!("{} [{kind}, default {default}]", global.help)
    };
    let mut arg = Arg::new(long.clone())
        .long(long)
        .help(crate::stdio::escape_controls(&help, false).into_owned())
        .value_name(value_name(&global.ty))
        .value_parser(parser)
        .help_heading("Program options");
    if let Some(alias) = alias {
        arg = arg.alias(alias);
    }
    if matches!(
        global.ty.kind,
        Kind::Int { signed: true, .. } | Kind::Char { .. } | Kind::Enum { .. }
    ) {
        arg = arg.allow_negative_numbers(true);
    }
    if let Kind::Bool { .. } = &global.ty.kind {
        arg = arg
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .action(ArgAction::Set);
    }
    Some(arg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::types::EnumValue;

    fn int(size: u32, signed: bool) -> Type {
        Type {
            c: "t".into(),
            kind: Kind::Int { size, signed },
        }
    }

    #[test]
    fn ints_round_trip_and_check_range() {
        for (size, signed) in [
            (1, true),
            (1, false),
            (2, true),
            (2, false),
            (4, true),
            (4, false),
            (8, true),
            (8, false),
        ] {
            let bits = size * 8;
            let (min, max) = if signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            for v in [min, max, 0, 1] {
                let bytes = encode(&int(size, signed), &v.to_string()).unwrap();
                assert_eq!(bytes.len(), size as usize);
                let mut buf = [0u8; 16];
                buf[..bytes.len()].copy_from_slice(&bytes);
                let mut back = i128::from_le_bytes(buf);
                if signed && back > max {
                    back -= 1i128 << bits;
                }
                assert_eq!(back, v, "size {size} signed {signed}");
            }
            assert!(encode(&int(size, signed), &(max + 1).to_string()).is_err());
            assert!(encode(&int(size, signed), &(min - 1).to_string()).is_err());
        }
        assert_eq!(encode(&int(4, false), "0x10").unwrap(), vec![16, 0, 0, 0]);
        assert_eq!(encode(&int(1, true), "-0x80").unwrap(), vec![0x80]);
        let huge = (1u128 << 127).to_string() + "0"; // beyond 128 bits
        assert_eq!(
            encode(&int(1, true), &huge).unwrap_err(),
            format!("{huge} is out of range for i8 (-128..=127)")
        );
        assert_eq!(
            encode(&int(8, false), "340282366920938463463374607431768211456").unwrap_err(),
            "340282366920938463463374607431768211456 is out of range for u64 (0..=18446744073709551615)"
        );
        assert!(encode(&int(16, true), "-170141183460469231731687303715884105728").is_ok());
        assert!(encode(&int(4, true), "12abc")
            .unwrap_err()
            .contains("integer"));
    }

    #[test]
    fn bools_enums_strings() {
        let b = Type {
            c: "bool".into(),
            kind: Kind::Bool { size: 1 },
        };
        assert_eq!(encode(&b, "true").unwrap(), vec![1]);
        assert_eq!(encode(&b, "false").unwrap(), vec![0]);
        assert!(encode(&b, "maybe").is_err());
        let e = Type {
            c: "enum color".into(),
            kind: Kind::Enum {
                size: 4,
                signed: false,
                values: vec![
                    EnumValue {
                        name: "RED".into(),
                        value: 0,
                    },
                    EnumValue {
                        name: "BLUE".into(),
                        value: 7,
                    },
                ],
            },
        };
        assert_eq!(encode(&e, "BLUE").unwrap(), vec![7, 0, 0, 0]);
        assert_eq!(encode(&e, "3").unwrap(), vec![3, 0, 0, 0]);
        assert!(encode(&e, "GREEN").unwrap_err().contains("RED, BLUE"));
        let s = Type {
            c: "char[4]".into(),
            kind: Kind::Array {
                len: 4,
                elem: Box::new(Type {
                    c: "char".into(),
                    kind: Kind::Char { signed: true },
                }),
            },
        };
        assert_eq!(encode(&s, "abc").unwrap(), b"abc\0".to_vec());
        assert!(encode(&s, "abcd").unwrap_err().contains("at most 3"));
    }
}
