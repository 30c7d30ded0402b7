//! Map view golden tests (no root): entries of a map, as the kernel would hand them over,
//! go through a `ViewWriter` in every format, and what it prints is compared byte for byte
//! with `tests/golden/views/<case>.txt`. Time is frozen (UTC). Every JSON line must parse
//! and every CSV block must be RFC 4180 with as many fields per row as its header.
//!
//! Regenerate after an intended change with
//! `RUNNER_BLESS=1 cargo test -p runner --test render_views`, and review the diff.

mod common;

use std::path::Path;

use runner::output::{Format, ViewWriter};
use runner::spec::mapview;
use runner::spec::package::{Map, MapType, View};
use runner::spec::types::{Kind, Member, Type};

fn int(c: &str, size: u32, signed: bool) -> Type {
    Type {
        c: c.into(),
        kind: Kind::Int { size, signed },
    }
}

fn u32_() -> Type {
    int("__u32", 4, false)
}

fn u64_() -> Type {
    int("__u64", 8, false)
}

fn array(elem: Type, len: u32) -> Type {
    Type {
        c: format!("{}[{len}]", elem.c),
        kind: Kind::Array {
            len,
            elem: Box::new(elem),
        },
    }
}

fn chars(len: u32) -> Type {
    array(
        Type {
            c: "char".into(),
            kind: Kind::Char { signed: true },
        },
        len,
    )
}

/// A struct of `members`, each at the next offset aligned to its size (arrays: element).
fn structure(c: &str, members: &[(&str, Type)]) -> Type {
    let mut offset = 0u32;
    let mut out = Vec::new();
    let mut largest = 1;
    for (name, ty) in members {
        let align = match &ty.kind {
            Kind::Array { elem, .. } => elem.size() as u32,
            _ => ty.size() as u32,
        }
        .max(1);
        largest = largest.max(align);
        offset = offset.div_ceil(align) * align;
        out.push(Member {
            name: name.to_string(),
            offset,
            bitfield: None,
            ty: ty.clone(),
            shown: None,
        });
        offset += ty.size() as u32;
    }
    let size = offset.div_ceil(largest) * largest;
    Type {
        c: c.into(),
        kind: Kind::Struct { size, members: out },
    }
}

fn map(name: &str, kind: MapType, key: Type, value: Type, unit: Option<&str>) -> Map {
    Map {
        name: name.into(),
        kind,
        key_size: key.size() as u32,
        value_size: value.size() as u32,
        max_entries: 1024,
        key: Some(key),
        value: Some(value),
        view: None,
        unit: unit.map(str::to_string),
        size: None,
    }
}

/// Little-endian bytes of several integers of the given sizes, then `text` fields.
struct Bytes(Vec<u8>);

impl Bytes {
    fn new() -> Bytes {
        Bytes(Vec::new())
    }
    fn int(mut self, v: u64, size: usize) -> Bytes {
        self.0.extend_from_slice(&v.to_le_bytes()[..size]);
        self
    }
    fn ints(mut self, vs: &[u64], size: usize) -> Bytes {
        for v in vs {
            self = self.int(*v, size);
        }
        self
    }
    fn text(mut self, s: &str, len: usize) -> Bytes {
        let mut field = s.as_bytes().to_vec();
        field.resize(len, 0);
        self.0.extend_from_slice(&field);
        self
    }
    /// Zero bytes up to `len` (a struct's padding).
    fn pad(mut self, len: usize) -> Bytes {
        self.0.resize(len, 0);
        self
    }
}

/// Frozen time of every view: 2023-11-14T22:13:20.123456 UTC.
const FIXED_TIME: (i64, i64) = (1_700_000_000, 123_456_789);

fn render(format: Format, map: &Map, view: View, entries: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut writer = ViewWriter::new(format, map, view).unwrap_or_else(|e| panic!("{e}"));
    writer.fix_time(FIXED_TIME.0, FIXED_TIME.1);
    let mut out = Vec::new();
    writer.render(entries.to_vec(), &mut out);
    String::from_utf8(out).expect("views write UTF-8")
}

/// CSV blocks: each starts with a header row (`@time,@map,...`); every row has as many
/// fields as its header.
fn check_csv(name: &str, text: &str) {
    let mut width = 0;
    for record in common::csv_records(text) {
        if record[0] == "@time" {
            width = record.len();
        }
        assert_eq!(
            record.len(),
            width,
            "{name}: a CSV row of another width: {record:?}"
        );
    }
}

/// Render `entries` of `map` as `view` in every format and compare with the golden file.
fn case(name: &str, map: Map, view: View, entries: Vec<(Bytes, Bytes)>) {
    let entries: Vec<(Vec<u8>, Vec<u8>)> = entries.into_iter().map(|(k, v)| (k.0, v.0)).collect();
    let mut text = format!(
        "# map {} ({}: {} -> {}), {} view, {} entries\n",
        map.name,
        map.kind.name(),
        map.key.as_ref().unwrap().c,
        map.value.as_ref().unwrap().c,
        view.name(),
        entries.len()
    );
    for (title, format) in [
        ("table", Format::Table),
        ("json", Format::Json),
        ("csv", Format::Csv),
    ] {
        let out = render(format, &map, view, &entries);
        match format {
            Format::Json => {
                for line in out.lines() {
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap_or_else(|e| panic!("{name}: bad JSON ({e}): {line}"));
                }
            }
            Format::Csv => check_csv(name, &out),
            Format::Table | Format::None => {}
        }
        text.push_str(&format!("## {title}\n{out}"));
    }
    assert_eq!(
        render(Format::None, &map, view, &entries),
        "",
        "{name}: -o none printed"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/views")
        .join(format!("{name}.txt"));
    if std::env::var("RUNNER_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); create it with RUNNER_BLESS=1 cargo test -p runner --test render_views",
            path.display()
        )
    });
    assert!(
        golden == text,
        "{} differs; if intended: RUNNER_BLESS=1 cargo test -p runner --test render_views\n--- actual ---\n{text}",
        path.display()
    );
}

/// bcc's `struct hist { __u32 slots[N]; char comm[16]; }`.
fn hist(slots: u32) -> Type {
    structure(
        "struct hist",
        &[("slots", array(u32_(), slots)), ("comm", chars(16))],
    )
}

fn hist_value(slots: &[u64], comm: &str) -> Bytes {
    Bytes::new().ints(slots, 4).text(comm, 16)
}

#[test]
fn histogram_per_key_labelled_by_the_other_members() {
    // runqlat -P: pid -> struct hist, in usecs; keys in an order where little-endian bytes
    // sort 257 before 3.
    let m = map("hists", MapType::Hash, u32_(), hist(8), Some("usecs"));
    assert_eq!(mapview::default_view(&m), Some(View::Log2Hist));
    case(
        "hist_per_key",
        m,
        View::Log2Hist,
        vec![
            (
                Bytes::new().int(257, 4),
                hist_value(&[0, 1, 5, 9, 2, 0, 0, 0], "sshd"),
            ),
            (
                Bytes::new().int(3, 4),
                hist_value(&[1, 0, 0, 0, 0, 0, 0, 1], "kworker/0:1"),
            ),
            // Nothing counted: its label, no histogram.
            (Bytes::new().int(1, 4), hist_value(&[0; 8], "idle")),
        ],
    );
}

#[test]
fn histograms_with_no_slots_used_are_rows_of_counts() {
    // hardirqs without -d: name -> {count, total_time, slots}, the slots never filled.
    let info = structure(
        "struct info",
        &[
            ("count", u64_()),
            ("total_time", u64_()),
            ("slots", array(u32_(), 4)),
        ],
    );
    let key = structure("struct irq_key", &[("name", chars(16))]);
    let m = map("infos", MapType::Hash, key, info, None);
    assert_eq!(mapview::default_view(&m), Some(View::Log2Hist));
    let entry = |name: &str, count: u64, total: u64| {
        (
            Bytes::new().text(name, 16),
            Bytes::new().int(count, 8).int(total, 8).ints(&[0; 4], 4),
        )
    };
    case(
        "hist_rows",
        m,
        View::Log2Hist,
        vec![
            entry("virtio0-input.0", 12, 3400),
            entry("acpi", 1, 20),
            entry("timer", 950, 81000),
            entry("ahci", 12, 5000),
        ],
    );
}

#[test]
fn tables_sort_by_count_then_by_key_as_numbers() {
    // syscount: syscall number -> {count, total_ns, comm}.
    let data = structure(
        "struct data_t",
        &[("count", u64_()), ("total_ns", u64_()), ("comm", chars(16))],
    );
    let m = map("data", MapType::Hash, u32_(), data, None);
    assert_eq!(mapview::default_view(&m), Some(View::Table));
    let entry = |nr: u64, count: u64, total: u64| {
        (
            Bytes::new().int(nr, 4),
            Bytes::new().int(count, 8).int(total, 8).text("", 16),
        )
    };
    case(
        "table_counts",
        m,
        View::Table,
        vec![
            entry(257, 40, 9000),
            entry(0, 500, 1000),
            entry(3, 40, 100),
            entry(1, 7, 50),
            entry(262, 4212, 777_000),
        ],
    );
}

#[test]
fn tables_of_struct_keys_and_text_with_commas() {
    let key = structure(
        "struct sig_key",
        &[("comm", chars(16)), ("sig", int("__s32", 4, true))],
    );
    let m = map("signals", MapType::Hash, key, u64_(), None);
    // A bare number per key is not shown by default (a count or a start time?).
    assert_eq!(mapview::default_view(&m), None);
    let entry = |comm: &str, sig: u64, count: u64| {
        (
            Bytes::new().text(comm, 16).int(sig, 4).pad(20),
            Bytes::new().int(count, 8),
        )
    };
    case(
        "table_struct_keys",
        m,
        View::Table,
        vec![
            entry("b,\"quoted\"", 15, 2),
            entry("bash", 2, 2),
            entry("bash", 10, 2),
            entry("a", 28, 9),
        ],
    );
}

#[test]
fn one_histogram_for_a_map_keyed_by_slot() {
    let m = map("latency", MapType::Array, u32_(), u64_(), Some("nsecs"));
    let slot = |i: u64, count: u64| (Bytes::new().int(i, 4), Bytes::new().int(count, 8));
    let entries = || vec![slot(3, 4), slot(0, 2), slot(1, 0), slot(2, 1), slot(5, 0)];
    case("log2_by_slot", m.clone(), View::Log2Hist, entries());
    case("linear_by_slot", m, View::LinearHist, entries());
}

#[test]
fn wide_histograms_and_arrays_of_slots() {
    // Past slot 32 bcc widens the columns and halves the bar.
    let m = map("wide", MapType::Hash, u32_(), array(u64_(), 40), None);
    let mut slots = vec![0u64; 40];
    slots[0] = 1;
    slots[35] = 6;
    slots[36] = 3;
    case(
        "log2_wide",
        m,
        View::Log2Hist,
        vec![(Bytes::new().int(7, 4), Bytes::new().ints(&slots, 8))],
    );
}
