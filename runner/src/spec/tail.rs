//! Variable-length records: the rules for a record that ends inside the last member of its
//! struct, used by the decoder (`spec::plan`).
//!
//! A struct's **trailing array** is its last member (by offset, not a bitfield, not an
//! anonymous struct or union) when that member is an array: execsnoop's
//! `char args[FULL_MAX_ARGS_ARR]`, or a flexible array member (`__u64 ips[]`, length 0).
//! Everything before it is the struct's **fixed part**. A program that submits
//! `offsetof(struct event, args) + n` bytes sends a **variable-length record**: it is
//! decoded up to its length, and the trailing array holds the whole elements that were
//! submitted. A record shorter than the fixed part cannot be decoded; the event loop
//! counts and skips it.
//!
//! A trailing `char` array of a record that ends inside it (a *cut* record) holds
//! NUL-separated strings, as execsnoop's argv does: every string is shown. A record as long
//! as its struct carries no length, so its char arrays read as text up to the first NUL, as
//! everywhere else: the bytes after that NUL may be left over from an earlier event (ring
//! buffer reservations and per-CPU scratch maps are not zeroed).

use crate::spec::types::{Kind, Member, Type};

/// The trailing array of `ty`, if it has one: its last member, an array.
pub(crate) fn trailing_member(ty: &Type) -> Option<&Member> {
    let Kind::Struct { members, .. } = &ty.kind else {
        return None;
    };
    let last = members.iter().max_by_key(|m| m.offset)?;
    let is_last = members.last().is_some_and(|m| std::ptr::eq(m, last));
    (is_last
        && last.bitfield.is_none()
        && !last.name.is_empty()
        && matches!(last.ty.kind, Kind::Array { .. }))
    .then_some(last)
}

/// The NUL-separated strings of a cut trailing char array, as the bytes that hold them:
/// `a\0b\0c`, split at each NUL by the sinks. Trailing NULs are dropped (zero padding,
/// and an empty last string cannot be told from it). On a channel that pads records to
/// 8 bytes (a perf buffer), bytes after the last NUL that are fewer than 8 are that
/// padding, which some kernels leave holding whatever the buffer held before, and are
/// dropped too; on other channels an unterminated last string is shown.
pub(crate) fn strings(bytes: &[u8], padded: bool) -> &[u8] {
    let mut end = bytes.len();
    if padded {
        let unterminated = bytes.iter().rev().take_while(|&&b| b != 0).count();
        if unterminated < 8 {
            end -= unterminated;
        }
    }
    while end > 0 && bytes[end - 1] == 0 {
        end -= 1;
    }
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(size: u32) -> Type {
        Type {
            c: format!("u{}", size * 8),
            kind: Kind::Int {
                size,
                signed: false,
            },
        }
    }

    fn member(name: &str, offset: u32, ty: Type) -> Member {
        Member {
            name: name.into(),
            offset,
            bitfield: None,
            ty,
            shown: None,
        }
    }

    fn array(len: u32) -> Type {
        Type {
            c: format!("char[{len}]"),
            kind: Kind::Array {
                len,
                elem: Box::new(Type {
                    c: "char".into(),
                    kind: Kind::Char { signed: true },
                }),
            },
        }
    }

    fn structure(members: Vec<Member>, size: u32) -> Type {
        Type {
            c: "struct event".into(),
            kind: Kind::Struct { size, members },
        }
    }

    #[test]
    fn only_a_last_array_trails() {
        let ty = structure(
            vec![member("n", 0, int(4)), member("args", 4, array(60))],
            64,
        );
        assert_eq!(trailing_member(&ty).unwrap().name, "args");
        let flexible = structure(vec![member("n", 0, int(4)), member("args", 4, array(0))], 4);
        assert_eq!(trailing_member(&flexible).unwrap().name, "args");
        let not_last = structure(
            vec![member("args", 0, array(8)), member("n", 8, int(4))],
            12,
        );
        assert!(trailing_member(&not_last).is_none());
        let scalar = structure(vec![member("n", 0, int(4))], 4);
        assert!(trailing_member(&scalar).is_none());
        assert!(trailing_member(&array(4)).is_none());
    }

    #[test]
    fn strings_end_at_the_last_nul_on_padded_channels() {
        assert_eq!(strings(b"ls\0-l\0", false), b"ls\0-l");
        assert_eq!(strings(b"ls\0-l\0\0\0\0", true), b"ls\0-l");
        // Stale padding after the last string.
        assert_eq!(strings(b"ls\0-l\0xyz", true), b"ls\0-l");
        // Exact length: an unterminated last string is data.
        assert_eq!(strings(b"ls\0-l\0xyz", false), b"ls\0-l\0xyz");
        // Eight bytes or more cannot be padding alone.
        assert_eq!(strings(b"ls\0abcdefgh", true), b"ls\0abcdefgh");
        // Empty strings between others are kept.
        assert_eq!(strings(b"a\0\0b\0", true), b"a\0\0b");
        assert_eq!(strings(b"", true), b"");
        assert_eq!(strings(b"\0\0", false), b"");
    }
}
