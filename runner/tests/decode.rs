//! Decoding golden tests (no root): for every kind of event member, raw bytes go through
//! the one decoder (`Plan`) and the table, JSON and CSV renderers, and what they print is
//! compared byte for byte with `tests/golden/<case>.txt`. Times are frozen (UTC) so the
//! output is reproducible.
//!
//! Regenerate the golden files after an intended change with
//! `RUNNER_BLESS=1 cargo test -p runner --test decode`, and review the diff.
//!
//! The types are built by hand, mirroring the corpus headers; `corpus_types_match_btf`
//! builds the corpus programs (clang, no root) and checks that the BTF walker resolves
//! their event structs to exactly these types, so the goldens decode real layouts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use runner::compile::BuildError;
use runner::output::{EventWriter, Format};
use runner::spec::plan::Plan;
use runner::spec::types::{Bitfield, EnumValue, Kind, Member, Type};

// ---------------------------------------------------------------------------------------
// Types, spelled the way the BTF walker spells them.

fn int(c: &str, size: u32, signed: bool) -> Type {
    Type {
        c: c.into(),
        kind: Kind::Int { size, signed },
    }
}

fn s8() -> Type {
    int("__s8", 1, true)
}
fn u8_() -> Type {
    int("__u8", 1, false)
}
fn s16() -> Type {
    int("__s16", 2, true)
}
fn u16_() -> Type {
    int("__u16", 2, false)
}
fn s32() -> Type {
    int("__s32", 4, true)
}
fn u32_() -> Type {
    int("__u32", 4, false)
}
fn s64() -> Type {
    int("__s64", 8, true)
}
fn u64_() -> Type {
    int("__u64", 8, false)
}

fn bool_() -> Type {
    Type {
        c: "bool".into(),
        kind: Kind::Bool { size: 1 },
    }
}

fn char_() -> Type {
    Type {
        c: "char".into(),
        kind: Kind::Char { signed: true },
    }
}

fn float(c: &str, size: u32) -> Type {
    Type {
        c: c.into(),
        kind: Kind::Float { size },
    }
}

fn pointer(c: &str) -> Type {
    Type {
        c: c.into(),
        kind: Kind::Pointer { size: 8 },
    }
}

/// `elem[len]`, with C's spelling of arrays of arrays (`__s16[2][3]`).
fn array(elem: Type, len: u32) -> Type {
    let c = match elem.c.find('[') {
        Some(at) => format!("{}[{len}]{}", &elem.c[..at], &elem.c[at..]),
        None => format!("{}[{len}]", elem.c),
    };
    Type {
        c,
        kind: Kind::Array {
            len,
            elem: Box::new(elem),
        },
    }
}

fn chars(len: u32) -> Type {
    array(char_(), len)
}

fn enumeration(c: &str, size: u32, signed: bool, values: &[(&str, i128)]) -> Type {
    Type {
        c: c.into(),
        kind: Kind::Enum {
            size,
            signed,
            values: values
                .iter()
                .map(|(name, value)| EnumValue {
                    name: name.to_string(),
                    value: *value,
                })
                .collect(),
        },
    }
}

fn m(name: &str, offset: u32, ty: Type) -> Member {
    Member {
        name: name.into(),
        offset,
        bitfield: None,
        ty,
        shown: None,
    }
}

/// A bitfield `bits` wide at `bit_offset` bits from the start of the struct.
fn bits(name: &str, bit_offset: u32, bits: u32, ty: Type) -> Member {
    Member {
        name: name.into(),
        offset: bit_offset / 8,
        bitfield: Some(Bitfield { bit_offset, bits }),
        ty,
        shown: None,
    }
}

fn structure(c: &str, size: u32, members: Vec<Member>) -> Type {
    Type {
        c: c.into(),
        kind: Kind::Struct { size, members },
    }
}

fn union(c: &str, size: u32, members: Vec<Member>) -> Type {
    Type {
        c: c.into(),
        kind: Kind::Union { size, members },
    }
}

fn color() -> Type {
    enumeration(
        "enum color",
        4,
        false,
        &[("RED", 0), ("GREEN", 1), ("BLUE", 7)],
    )
}

fn wide() -> Type {
    enumeration(
        "enum wide",
        8,
        false,
        &[
            ("WIDE_SMALL", 1),
            ("WIDE_BIG", 0x1_0000_0000),
            ("WIDE_TOP", 0xffff_ffff_0000_0000),
        ],
    )
}

fn delta() -> Type {
    enumeration(
        "enum delta",
        4,
        true,
        &[("DELTA_DOWN", -1), ("DELTA_NONE", 0), ("DELTA_UP", 1)],
    )
}

fn point() -> Type {
    structure("struct point", 8, vec![m("x", 0, s32()), m("y", 4, s32())])
}

/// `struct event` of corpus/scalars/scalars.h.
fn scalars_event() -> Type {
    structure(
        "struct event",
        96,
        vec![
            m("ts_ns", 0, u64_()),
            m("i8", 8, s8()),
            m("u8", 9, u8_()),
            m("i16", 10, s16()),
            m("u16", 12, u16_()),
            m("i32", 16, s32()),
            m("u32", 20, u32_()),
            m("i64", 24, s64()),
            m("u64", 32, u64_()),
            m("odd", 40, bool_()),
            m("comm", 41, chars(16)),
            m("full", 57, chars(8)),
            m("raw", 65, array(u8_(), 6)),
            m("words", 72, array(u32_(), 3)),
            m("grid", 84, array(array(s16(), 3), 2)),
        ],
    )
}

/// `struct shape_event` of corpus/shapes/shapes.h.
fn shapes_event() -> Type {
    let handle = int("corpus_handle", 4, false);
    let boxed = structure(
        "struct box",
        20,
        vec![
            m("min", 0, point()),
            m("max", 8, point()),
            m("id", 16, u16_()),
        ],
    );
    let word = union(
        "union word",
        4,
        vec![
            m("value", 0, u32_()),
            m("halves", 0, array(s16(), 2)),
            m("bytes", 0, array(u8_(), 4)),
        ],
    );
    let anon = union(
        "union <anon>",
        4,
        vec![m("anon_u32", 0, u32_()), m("anon_u16", 0, u16_())],
    );
    structure(
        "struct shape_event",
        96,
        vec![
            m("handle", 0, handle),
            m("tag", 4, u8_()),
            m("after_pad", 8, u64_()),
            m("box", 16, boxed),
            m("word", 36, word),
            m("", 40, anon),
            m("color", 44, color()),
            m("odd_color", 48, color()),
            m("wide", 56, wide()),
            m("odd_wide", 64, wide()),
            m("delta", 72, delta()),
            bits("lo", 608, 3, u32_()),
            bits("mid", 611, 5, u32_()),
            bits("neg", 616, 4, s32()),
            bits("bf_color", 620, 3, color()),
            bits("big", 640, 40, u64_()),
            m("after_bits", 86, u16_()),
            m("ptr", 88, pointer("void *")),
        ],
    )
}

// ---------------------------------------------------------------------------------------
// Records.

/// A record under construction: little-endian writes at byte and bit offsets.
struct Rec(Vec<u8>);

impl Rec {
    fn new(size: usize) -> Rec {
        Rec(vec![0; size])
    }

    /// Every byte set to `fill`: padding that must never show.
    fn filled(size: usize, fill: u8) -> Rec {
        Rec(vec![fill; size])
    }

    fn put(mut self, off: usize, bytes: &[u8]) -> Rec {
        self.0[off..off + bytes.len()].copy_from_slice(bytes);
        self
    }

    fn bits(mut self, bit_off: usize, bits: u32, value: u64) -> Rec {
        for i in 0..bits as usize {
            let bit = bit_off + i;
            let mask = 1u8 << (bit % 8);
            if value >> i & 1 == 1 {
                self.0[bit / 8] |= mask;
            } else {
                self.0[bit / 8] &= !mask;
            }
        }
        self
    }
}

// ---------------------------------------------------------------------------------------
// Rendering and golden files.

/// Frozen time of every event: 2023-11-14T22:13:20.123456 UTC.
const FIXED_TIME: (i64, i64) = (1_700_000_000, 123_456_789);

/// Render records of `ty` as an event channel's; `padded`: as a perf buffer's.
fn render(format: Format, ty: &Type, padded: bool, records: &[Vec<u8>]) -> String {
    let plan = Plan::record(ty, padded).unwrap_or_else(|e| panic!("{}: {e}", ty.c));
    let mut renderer = EventWriter::new(format, plan);
    renderer.fix_time(FIXED_TIME.0, FIXED_TIME.1);
    let mut out = Vec::new();
    renderer.header(&mut out);
    for rec in records {
        assert!(rec.len() >= renderer.fixed(), "record size of {}", ty.c);
        renderer.event(rec, &mut out);
    }
    String::from_utf8(out).expect("renderers write UTF-8")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn blessing() -> bool {
    std::env::var("RUNNER_BLESS").as_deref() == Ok("1")
}

/// Compare `actual` with the golden file `name`, or rewrite it under RUNNER_BLESS=1.
fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}); create it with RUNNER_BLESS=1 cargo test -p runner --test decode", path.display())
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the decoder's output, first at line {}:\n  golden: {:?}\n  actual: {:?}\n\
             If the change is intended: RUNNER_BLESS=1 cargo test -p runner --test decode\n\
             --- actual ---\n{actual}",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// Render `records` of `ty` in every format and compare with `golden/<name>.txt`.
fn case(name: &str, ty: Type, records: Vec<Rec>) {
    for rec in &records {
        assert_eq!(rec.0.len() as u64, ty.size(), "record size of {}", ty.c);
    }
    case_on(name, ty, false, records)
}

/// [`case`] for records of any length (at least the fixed part of the struct), from a
/// channel that pads them (`padded`, a perf buffer) or not.
fn case_on(name: &str, ty: Type, padded: bool, records: Vec<Rec>) {
    let records: Vec<Vec<u8>> = records.into_iter().map(|r| r.0).collect();
    let lengths: Vec<String> = records.iter().map(|r| r.len().to_string()).collect();
    let mut text = format!(
        "# {} ({} bytes), {} records\n",
        ty.c,
        ty.size(),
        records.len()
    );
    if records.iter().any(|r| r.len() as u64 != ty.size()) {
        text.push_str(&format!(
            "# record lengths {}{}\n",
            lengths.join(", "),
            if padded { ", padded to 8 bytes" } else { "" }
        ));
    }
    for (title, format) in [
        ("table", Format::Table),
        ("json", Format::Json),
        ("csv", Format::Csv),
    ] {
        text.push_str(&format!("## {title}\n"));
        text.push_str(&render(format, &ty, padded, &records));
    }
    // Every JSON line is valid JSON.
    for line in render(Format::Json, &ty, padded, &records).lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{name}: bad JSON ({e}): {line}"));
    }
    golden(&format!("{name}.txt"), &text);
}

// ---------------------------------------------------------------------------------------
// The cases: one per kind of member.

#[test]
fn integers() {
    let ty = structure(
        "struct ints",
        64,
        vec![
            m("i8", 0, s8()),
            m("u8", 1, u8_()),
            m("i16", 2, s16()),
            m("u16", 4, u16_()),
            m("i32", 8, s32()),
            m("u32", 12, u32_()),
            m("i64", 16, s64()),
            m("u64", 24, u64_()),
            m("c", 32, char_()),
            m("i128", 48, int("__int128", 16, true)),
        ],
    );
    let rec = |i8_: i8,
               u8v: u8,
               i16v: i16,
               u16v: u16,
               i32v: i32,
               u32v: u32,
               i64v: i64,
               u64v: u64,
               c: i8,
               i128v: i128| {
        Rec::new(64)
            .put(0, &i8_.to_le_bytes())
            .put(1, &u8v.to_le_bytes())
            .put(2, &i16v.to_le_bytes())
            .put(4, &u16v.to_le_bytes())
            .put(8, &i32v.to_le_bytes())
            .put(12, &u32v.to_le_bytes())
            .put(16, &i64v.to_le_bytes())
            .put(24, &u64v.to_le_bytes())
            .put(32, &c.to_le_bytes())
            .put(48, &i128v.to_le_bytes())
    };
    case(
        "integers",
        ty,
        vec![
            rec(
                i8::MIN,
                u8::MIN,
                i16::MIN,
                u16::MIN,
                i32::MIN,
                u32::MIN,
                i64::MIN,
                u64::MIN,
                i8::MIN,
                i128::MIN,
            ),
            rec(
                i8::MAX,
                u8::MAX,
                i16::MAX,
                u16::MAX,
                i32::MAX,
                u32::MAX,
                i64::MAX,
                u64::MAX,
                i8::MAX,
                i128::MAX,
            ),
            rec(-1, 1, -1, 1, -1, 1, -1, 1, b'A' as i8, -1),
        ],
    );
}

#[test]
fn bools_pointers_floats_timestamps() {
    let ty = structure(
        "struct misc",
        40,
        vec![
            m("yes", 0, bool_()),
            m("no", 1, bool_()),
            m("ptr", 8, pointer("const char *")),
            m("f32", 16, float("float", 4)),
            m("ts_ns", 24, u64_()),
            m("f64", 32, float("double", 8)),
        ],
    );
    let rec = |yes: u8, no: u8, ptr: u64, f: f32, ts: u64, d: f64| {
        Rec::new(40)
            .put(0, &[yes])
            .put(1, &[no])
            .put(8, &ptr.to_le_bytes())
            .put(16, &f.to_le_bytes())
            .put(24, &ts.to_le_bytes())
            .put(32, &d.to_le_bytes())
    };
    case(
        "misc",
        ty,
        vec![
            rec(
                1,
                0,
                0xffff_8880_1234_5678,
                1.5,
                1_234_567_890_123_456_789,
                -0.25,
            ),
            // Any non-zero byte is true; a null pointer; infinities and NaN (null in JSON).
            rec(2, 0, 0, f32::INFINITY, 0, f64::NAN),
        ],
    );
}

#[test]
fn strings() {
    let ty = structure(
        "struct strings",
        68,
        vec![
            m("comm", 0, chars(16)),
            m("full", 16, chars(8)),
            m("empty", 24, chars(4)),
            m("ctrl", 28, chars(12)),
            m("latin1", 40, chars(8)),
            m("quoted", 48, chars(20)),
        ],
    );
    let rec =
        |comm: &[u8], full: &[u8], empty: &[u8], ctrl: &[u8], latin1: &[u8], quoted: &[u8]| {
            Rec::new(68)
                .put(0, comm)
                .put(16, full)
                .put(24, empty)
                .put(28, ctrl)
                .put(40, latin1)
                .put(48, quoted)
        };
    case(
        "strings",
        ty,
        vec![
            // 15 bytes then NUL; 8 bytes with no NUL; nothing; tab and newline; invalid
            // UTF-8; quotes, a comma and a backslash (CSV and JSON escaping).
            rec(
                b"scalars-0123456",
                b"ABCDEFGH",
                b"",
                b"a\tb\nc\x7f",
                b"caf\xe9\xff",
                b"say \"hi\", \\o/",
            ),
            // Text stops at the first NUL, whatever follows it; UTF-8 passes through.
            rec(
                b"bash\0garbage",
                b"abc\0defg",
                b"\0xyz",
                b"\x01",
                "héé".as_bytes(),
                b"plain",
            ),
        ],
    );
}

#[test]
fn arrays() {
    let ty = structure(
        "struct arrays",
        68,
        vec![
            m("raw", 0, array(u8_(), 6)),
            m("signed_bytes", 6, array(s8(), 4)),
            m("words", 12, array(u32_(), 3)),
            m("grid", 24, array(array(s16(), 3), 2)),
            m("pair", 36, array(u64_(), 2)),
            m("points", 52, array(point(), 2)),
        ],
    );
    let mut grid = Vec::new();
    for v in [-2500i16, -1500, -500, 500, 1500, 2500] {
        grid.extend_from_slice(&v.to_le_bytes());
    }
    let mut points = Vec::new();
    for v in [-1i32, 2, 3, -4] {
        points.extend_from_slice(&v.to_le_bytes());
    }
    let first = Rec::new(68)
        .put(0, &[0xef, 0xcd, 0xab, 0x89, 0x00, 0x01])
        .put(6, &[0x80, 0xff, 0x00, 0x7f])
        .put(
            12,
            &[
                1u32.to_le_bytes(),
                u32::MAX.to_le_bytes(),
                0u32.to_le_bytes(),
            ]
            .concat(),
        )
        .put(24, &grid)
        .put(36, &[u64::MAX.to_le_bytes(), 7u64.to_le_bytes()].concat())
        .put(52, &points);
    case("arrays", ty, vec![first, Rec::new(68)]);
}

#[test]
fn enums() {
    let tiny = enumeration("enum tiny", 1, false, &[("TINY_A", 1), ("TINY_B", 200)]);
    let neg64 = enumeration(
        "enum neg64",
        8,
        true,
        &[("NEG_BIG", -0x1_0000_0000), ("POS_BIG", 0x1_0000_0000)],
    );
    let ty = structure(
        "struct enums",
        32,
        vec![
            m("color", 0, color()),
            m("delta", 4, delta()),
            m("wide", 8, wide()),
            m("neg64", 16, neg64),
            m("tiny", 24, tiny),
        ],
    );
    let rec = |color: u32, delta: i32, wide: u64, neg: i64, tiny: u8| {
        Rec::new(32)
            .put(0, &color.to_le_bytes())
            .put(4, &delta.to_le_bytes())
            .put(8, &wide.to_le_bytes())
            .put(16, &neg.to_le_bytes())
            .put(24, &[tiny])
    };
    case(
        "enums",
        ty,
        vec![
            // Every value has a name.
            rec(7, -1, 0xffff_ffff_0000_0000, -0x1_0000_0000, 200),
            rec(0, 1, 0x1_0000_0000, 0x1_0000_0000, 1),
            // None has: numbers, signed or not as the enum is.
            rec(5, -7, 0x2_0000_0000, -5, 3),
        ],
    );
}

#[test]
fn bitfields() {
    // struct flags { __u32 lo:3, mid:5; __s32 neg:4; enum color c:3; __u8 one:1;
    //                __u64 big:40; __s64 sbig:33; __u16 after; }
    let ty = structure(
        "struct flags",
        24,
        vec![
            bits("lo", 0, 3, u32_()),
            bits("mid", 3, 5, u32_()),
            bits("neg", 8, 4, s32()),
            bits("c", 12, 3, color()),
            bits("one", 15, 1, u8_()),
            bits("big", 64, 40, u64_()),
            bits("sbig", 104, 33, s64()),
            m("after", 20, u16_()),
        ],
    );
    let rec = |fill: u8,
               lo: u64,
               mid: u64,
               neg: u64,
               c: u64,
               one: u64,
               big: u64,
               sbig: u64,
               after: u16| {
        Rec::filled(24, fill)
            .bits(0, 3, lo)
            .bits(3, 5, mid)
            .bits(8, 4, neg)
            .bits(12, 3, c)
            .bits(15, 1, one)
            .bits(64, 40, big)
            .bits(104, 33, sbig)
            .put(20, &after.to_le_bytes())
    };
    case(
        "bitfields",
        ty,
        vec![
            // Unused bits all ones must not leak into any field.
            rec(
                0xff,
                5,
                17,
                (-3i64) as u64,
                1,
                1,
                0xfe_dcba_9876,
                (-(1i64 << 32)) as u64,
                4242,
            ),
            rec(0x00, 7, 31, 7, 7, 0, 0xff_ffff_ffff, (1 << 32) - 1, 0),
            rec(0xff, 0, 0, (-8i64) as u64, 5, 0, 0, 0, u16::MAX),
        ],
    );
}

#[test]
fn padding_typedefs_nesting() {
    // struct outer { corpus_handle handle; __u8 tag; /* 3 */ __u64 after_pad;
    //   struct box box; union word word; union { __u32 anon_u32; __u16 anon_u16; };
    //   struct { __u8 inner_a; __u8 inner_b; }; }
    let shapes = shapes_event();
    let Kind::Struct { members, .. } = &shapes.kind else {
        unreachable!()
    };
    let mut members: Vec<Member> = members.iter().take(6).cloned().collect();
    members.push(m(
        "",
        44,
        structure(
            "struct <anon>",
            2,
            vec![m("inner_a", 0, u8_()), m("inner_b", 1, u8_())],
        ),
    ));
    let ty = structure("struct outer", 48, members);
    let rec = |fill: u8, handle: u32, word: u32| {
        let mut body = Vec::new();
        for v in [-1i32, 2, 3, -4] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        Rec::filled(48, fill)
            .put(0, &handle.to_le_bytes())
            .put(4, &[0xab])
            .put(8, &0x1122_3344_5566_7788u64.to_le_bytes())
            .put(16, &body)
            .put(32, &65535u16.to_le_bytes())
            .put(36, &word.to_le_bytes())
            .put(40, &0xdead_beefu32.to_le_bytes())
            .put(44, &[1, 2])
    };
    // Padding bytes (5..8, 34..36, 46..48) all ones, then all zeros: the same values.
    case(
        "nesting",
        ty,
        vec![
            rec(0xff, 0x89ab_cdef, 0xfffe_0102),
            rec(0x00, 0, 0x7fff_8000),
        ],
    );
}

#[test]
fn scalar_root() {
    // An event that is a bare integer, not a struct: one column named VALUE.
    case(
        "scalar_root",
        u64_(),
        vec![
            Rec::new(8).put(0, &42u64.to_le_bytes()),
            Rec::new(8).put(0, &u64::MAX.to_le_bytes()),
        ],
    );
}

/// execsnoop's shape: a fixed part, then a char array of NUL-separated strings of which a
/// record carries only what was submitted (`offsetof(args) + args_size` bytes).
fn exec_event() -> Type {
    structure(
        "struct exec_event",
        92,
        vec![
            m("pid", 0, s32()),
            m("retval", 4, s32()),
            m("args_size", 8, u32_()),
            m("comm", 12, chars(16)),
            m("args", 28, chars(64)),
        ],
    )
}

/// An exec_event carrying `args` (NUL-separated, as submitted), cut after them.
fn exec_record(pid: i32, comm: &[u8], args: &[u8]) -> Rec {
    Rec::new(28 + args.len())
        .put(0, &pid.to_le_bytes())
        .put(8, &(args.len() as u32).to_le_bytes())
        .put(12, comm)
        .put(28, args)
}

#[test]
fn variable_length_records() {
    case_on(
        "varlen",
        exec_event(),
        false,
        vec![
            // argv with a space inside one argument.
            exec_record(100, b"ls", b"ls\0-l\0/tmp/a dir\0"),
            // An empty argument between two others is kept.
            exec_record(101, b"sh", b"sh\0\0-c\0"),
            // No arguments at all: exactly the fixed part.
            exec_record(102, b"none", b""),
            // A ring buffer hands over exactly what was submitted: an unterminated last
            // string is data.
            exec_record(103, b"cat", b"cat\0file"),
            // Quotes, commas, control characters and invalid UTF-8 in arguments.
            exec_record(104, b"echo", b"echo\0a,b\0say \"hi\"\0tab\there\0\xff\0"),
            // As long as the struct: no length was given, so text up to the first NUL
            // (what follows may be left over from an earlier event).
            Rec::filled(92, b'x')
                .put(0, &105i32.to_le_bytes())
                .put(4, &0i32.to_le_bytes())
                .put(8, &64u32.to_le_bytes())
                .put(12, b"full\0")
                .put(28, b"first\0second\0"),
        ],
    );
}

#[test]
fn variable_length_records_from_a_perf_buffer() {
    // The kernel pads a perf record (with its 4-byte size) to 8 bytes; on some kernels
    // the padding holds whatever the buffer held before.
    let padded = |args: &[u8], pad: &[u8]| {
        let rec = exec_record(200, b"ls", args);
        let len = rec.0.len() + pad.len();
        assert_eq!((len + 4) % 8, 0, "pad {args:?} to 8 bytes");
        let mut bytes = rec.0;
        bytes.extend_from_slice(pad);
        Rec(bytes)
    };
    case_on(
        "varlen_perf",
        exec_event(),
        true,
        vec![
            padded(b"ls\0-l\0", b"xy"),
            padded(b"ls\0", b"abcde"),
            padded(b"ls\0-la\0", b"\0"),
            padded(b"true\0", b"\0\0\0"),
        ],
    );
}

#[test]
fn variable_length_arrays_of_numbers() {
    let ty = structure(
        "struct samples",
        28,
        vec![m("n", 0, u32_()), m("vals", 4, array(u32_(), 6))],
    );
    let rec = |vals: &[u32], extra: &[u8]| {
        let mut bytes: Vec<u8> = (vals.len() as u32).to_le_bytes().to_vec();
        for v in vals {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(extra);
        Rec(bytes)
    };
    case_on(
        "varlen_numbers",
        ty,
        false,
        vec![
            rec(&[7, 8], b""),
            // Only whole elements: two bytes of a third are not one.
            rec(&[7, 8], b"\x09\x00"),
            rec(&[], b""),
            rec(&[1, 2, 3, 4, 5, 6], b""),
        ],
    );
    // A flexible array member (`__u64 ips[]`): the struct ends where it starts, and a
    // record holds as many elements as it carries.
    let flexible = structure(
        "struct stack",
        8,
        vec![m("depth", 0, u32_()), m("ips", 8, array(u64_(), 0))],
    );
    let stack = |ips: &[u64]| {
        let mut bytes = vec![0u8; 8];
        bytes[..4].copy_from_slice(&(ips.len() as u32).to_le_bytes());
        for ip in ips {
            bytes.extend_from_slice(&ip.to_le_bytes());
        }
        Rec(bytes)
    };
    case_on(
        "varlen_flexible",
        flexible,
        false,
        vec![
            stack(&[]),
            stack(&[0xffff_ffff_8100_0000, 0xffff_ffff_8100_0010]),
        ],
    );
}

/// The records the corpus test `scalars_*` makes the program write (see corpus.rs).
#[test]
fn corpus_scalars() {
    let calls: [[u64; 4]; 2] = [
        [
            0x8000_0000_8000_8080,
            0xfedc_ba98_7654_3211,
            0x4847_4645_4443_4241,
            0x0123_4567_89ab_cdef,
        ],
        [0x7fff_ffff_7fff_7f7f, 42, 0x63_6261, 0x00ff_0000_0001],
    ];
    let records = calls
        .iter()
        .enumerate()
        .map(|(i, &[a2, a3, a4, a5])| {
            let mut grid = Vec::new();
            for r in 0..2i16 {
                for c in 0..3i16 {
                    grid.extend_from_slice(&((r * 3 + c) * 1000 - 2500).to_le_bytes());
                }
            }
            let (lo, hi) = (a5 as u32, (a5 >> 32) as u32);
            Rec::new(96)
                .put(0, &(1_000_000_000u64 + i as u64).to_le_bytes())
                .put(8, &a2.to_le_bytes()[..1])
                .put(9, &a2.to_le_bytes()[..1])
                .put(10, &a2.to_le_bytes()[..2])
                .put(12, &a2.to_le_bytes()[..2])
                .put(16, &a2.to_le_bytes()[..4])
                .put(20, &a2.to_le_bytes()[..4])
                .put(24, &a2.to_le_bytes())
                .put(32, &a3.to_le_bytes())
                .put(40, &[(a3 & 1) as u8])
                .put(41, b"scalars-0123456\0")
                .put(57, &a4.to_le_bytes())
                .put(65, &a5.to_le_bytes()[..6])
                .put(
                    72,
                    &[lo.to_le_bytes(), hi.to_le_bytes(), (lo ^ hi).to_le_bytes()].concat(),
                )
                .put(84, &grid)
        })
        .collect();
    case("corpus_scalars", scalars_event(), records);
}

/// The records the corpus test `shapes_*` makes the program write (see corpus.rs).
#[test]
fn corpus_shapes() {
    let calls: [[u64; 4]; 2] = [
        [
            0x89ab_cdef,
            0x7fff_1234_5678,
            0xfffe_0102,
            0xffff_ffff_0000_0000,
        ],
        [0, 0, 0x7fff_8000, 3],
    ];
    let records = calls
        .iter()
        .map(|&[a, b, c, d]| {
            let mut body = Vec::new();
            for v in [-1i32, 2, 3, -4] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            Rec::new(96)
                .put(0, &(a as u32).to_le_bytes())
                .put(4, &[0xab])
                .put(8, &0x1122_3344_5566_7788u64.to_le_bytes())
                .put(16, &body)
                .put(32, &65535u16.to_le_bytes())
                .put(36, &(c as u32).to_le_bytes())
                .put(40, &0xdead_beefu32.to_le_bytes())
                .put(44, &7u32.to_le_bytes())
                .put(48, &5u32.to_le_bytes())
                .put(56, &d.to_le_bytes())
                .put(64, &0x2_0000_0000u64.to_le_bytes())
                .put(72, &(-1i32).to_le_bytes())
                .bits(608, 3, 5)
                .bits(611, 5, 17)
                .bits(616, 4, (-3i64) as u64)
                .bits(620, 3, 1)
                .bits(640, 40, 0xfe_dcba_9876)
                .put(86, &4242u16.to_le_bytes())
                .put(88, &b.to_le_bytes())
        })
        .collect();
    case("corpus_shapes", shapes_event(), records);
}

/// Unsigned 128-bit integers above i128::MAX must not be shown as negative numbers; JSON
/// holds them exactly, as a string of their digits.
#[test]
fn unsigned_128_bit_is_not_wrapped() {
    let ty = structure(
        "struct big",
        16,
        vec![m("u128", 0, int("unsigned __int128", 16, false))],
    );
    let out = render(
        Format::Json,
        &ty,
        false,
        &[u128::MAX.to_le_bytes().to_vec()],
    );
    assert!(
        out.contains(&format!("\"u128\":\"{}\"", u128::MAX)),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// The hand-built types against the BTF of the real corpus programs.

/// The corpus programs, each one directory of `tests/fixtures/corpus`.
const CORPUS: [&str; 15] = [
    "scalars", "shapes", "twochan", "globals", "uprobe", "cpuclock", "views", "noprobe", "varlen",
    "hists", "twins", "sized", "declared", "kfunc", "formats",
];

/// Every corpus program built with `runner::compile` (clang, no root), once. clang-19 and
/// bpftool come from `scripts/install-deps`; without them this fails and says so.
fn corpus_packages() -> &'static [(String, runner::spec::package::Package)] {
    static BUILT: OnceLock<Vec<(String, runner::spec::package::Package)>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut out = Vec::new();
        for name in CORPUS {
            let source = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/corpus")
                .join(name)
                .join(format!("{name}.bpf.c"));
            let opts = runner::compile::BuildOptions {
                source,
                ..Default::default()
            };
            match runner::compile::build(&opts) {
                Ok(pkg) => out.push((name.to_string(), pkg)),
                Err(e @ (BuildError::NoClang { .. } | BuildError::Vmlinux { .. })) => {
                    panic!("building the corpus needs clang-19 and bpftool (scripts/install-deps installs them): {e}")
                }
                Err(e) => panic!("building corpus program {name}: {e:?}"),
            }
        }
        out
    });
    built
}

#[test]
fn corpus_types_match_btf() {
    let packages = corpus_packages();
    for (name, expected) in [("scalars", scalars_event()), ("shapes", shapes_event())] {
        let (_, pkg) = packages.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(pkg.events.len(), 1, "{name}");
        assert_eq!(
            pkg.events[0].ty, expected,
            "{name}: the BTF walker disagrees with the hand-built type"
        );
    }
}

/// What the packer makes of each corpus program (globals, events, maps, programs; the
/// embedded object, which depends on the clang version, left out) against
/// `golden/packages/<name>.json`.
#[test]
fn corpus_packages_golden() {
    let packages = corpus_packages();
    for (name, pkg) in packages {
        let mut value = serde_json::to_value(pkg).unwrap();
        value.as_object_mut().unwrap().remove("object");
        let mut text = serde_json::to_string_pretty(&value).unwrap();
        text.push('\n');
        golden(&format!("packages/{name}.json"), &text);
    }
}
