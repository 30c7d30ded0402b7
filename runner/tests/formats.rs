//! Value formats (README "Value formats"), tested three ways:
//!
//! - golden files (no root): the corpus program `formats` is built with `runner::compile`
//!   (clang), and records of its event struct, whose formats come from its own BTF, are
//!   rendered in table, JSON and CSV, with and without `--names`, and compared with
//!   `tests/golden/formats*.txt` (`RUNNER_BLESS=1` regenerates them);
//! - an invariant over generated structs (no root): whatever the member names (those of
//!   the runner's own keys, ones no C compiler writes, repeated ones), no JSON object has
//!   a key twice and no CSV header a column twice, for events and map views;
//! - end to end (root): the runner runs the corpus program, the test makes prctl(2) calls
//!   that say what each member holds, and every value is checked exactly in all three
//!   outputs (the kernel timestamp within the call's window, the device against stat(2)).

mod common;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::OnceLock;

use runner::output::{EventWriter, Format, ViewWriter};
use runner::spec::package::{Map, MapType, Package, View};
use runner::spec::plan::{Plan, Shows};
use runner::spec::types::{Kind, Member, Shown, Type};
use runner::spec::vocab::ValueFormat;
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};

// The constants of corpus/formats/formats.h.
const OPTION: u64 = 0x5246_0001;
const COMM: &str = "corpus-formats";

/// `struct formats_input` of formats.h, as the program reads it from the caller.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Input {
    ret: i64,
    sig: u32,
    flags: i32,
    mode: u32,
    family: u16,
    ip4: [u8; 4],
    ip6: [u8; 16],
    lat_ns: u64,
    addr: u64,
}

fn ip6(text: &str) -> [u8; 16] {
    text.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// The calls the tests make: (input, the prctl's third argument).
fn inputs() -> Vec<(Input, u64)> {
    vec![
        (
            Input {
                ret: -2,
                sig: 9,
                flags: 0o1101,
                mode: 0o644,
                family: 6,
                ip4: [10, 1, 2, 3],
                ip6: ip6("fe80::1"),
                lat_ns: 1_234_567,
                addr: 0x7fff_1234_5678_9abc,
            },
            1 << 60,
        ),
        (
            Input {
                ret: 5,
                sig: 0x8b,
                flags: 0o2000000,
                mode: 0o755,
                family: 4,
                ip4: [192, 168, 0, 1],
                ip6: ip6("::ffff:10.0.0.1"),
                lat_ns: 999,
                addr: 0x1000,
            },
            42,
        ),
        (
            Input {
                ret: -512,
                sig: 64,
                flags: 0o4010002,
                mode: 0,
                family: 9,
                ip4: [127, 0, 0, 1],
                ip6: ip6("::1"),
                lat_ns: 2_500_000_000,
                addr: 0,
            },
            0,
        ),
    ]
}

/// What each member shows for `input` (x86_64 and arm64 names agree on all of these),
/// as (member, table/CSV text, JSON value, JSON raw value if kept); `ts` and `dev` are
/// checked apart (the kernel's clock, the caller's executable).
fn shown(
    input: &Input,
    time: u64,
    names: bool,
) -> Vec<(&'static str, String, Value, Option<Value>)> {
    let errno = |v: i64| match v {
        -2 => "ENOENT".to_string(),
        -512 => "ERESTARTSYS".to_string(),
        v => v.to_string(),
    };
    let signal = match input.sig {
        9 => "SIGKILL",
        0x8b => "SIGSEGV (core dumped)",
        64 => "SIGNAL-64",
        _ => unreachable!(),
    };
    let flags = match input.flags {
        0o1101 => "O_WRONLY|O_CREAT|O_TRUNC",
        0o2000000 => "O_RDONLY|O_CLOEXEC",
        0o4010002 => "O_RDWR|O_SYNC",
        _ => unreachable!(),
    };
    let (ms_text, ms_json, span_text) = match input.lat_ns {
        1_234_567 => ("1.235", json!(1.234567), "1.235ms"),
        999 => ("0.001", json!(0.000999), "999ns"),
        2_500_000_000 => ("2500.000", json!(2500), "2.5s"),
        _ => unreachable!(),
    };
    let addr = match input.family {
        4 => "192.168.0.1".to_string(),
        6 => "fe80::1".to_string(),
        _ => format!(
            "0x{}",
            input
                .ip6
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    };
    let v6 = std::net::Ipv6Addr::from(input.ip6).to_string();
    let v4 = std::net::Ipv4Addr::from(input.ip4).to_string();
    let hex = |v: u64| format!("{v:#x}");
    let mode = if input.mode == 0 {
        "0".to_string()
    } else {
        format!("0{:o}", input.mode)
    };
    let at = input.lat_ns / 1000;
    let (sig_named, ret_named) = if names {
        (
            (signal.to_string(), json!(signal), Some(json!(input.sig))),
            (
                errno(input.ret),
                json!(errno(input.ret)),
                Some(json!(input.ret)),
            ),
        )
    } else {
        (
            (input.sig.to_string(), json!(input.sig), None),
            (input.ret.to_string(), json!(input.ret), None),
        )
    };
    let big = |v: u64| {
        if v < 1 << 53 {
            json!(v)
        } else {
            json!(v.to_string())
        }
    };
    vec![
        ("time", time.to_string(), big(time), None),
        ("event", "7".into(), json!(7), None),
        (
            "ret",
            errno(input.ret),
            json!(errno(input.ret)),
            Some(json!(input.ret)),
        ),
        ("sig", signal.into(), json!(signal), Some(json!(input.sig))),
        ("sig_named", sig_named.0, sig_named.1, sig_named.2),
        ("ret_named", ret_named.0, ret_named.1, ret_named.2),
        (
            "sys",
            "prctl".into(),
            json!("prctl"),
            Some(json!(libc::SYS_prctl)),
        ),
        ("lat", ms_text.into(), ms_json, Some(json!(input.lat_ns))),
        (
            "span",
            span_text.into(),
            json!(input.lat_ns),
            Some(json!(input.lat_ns)),
        ),
        ("v4", v4.clone(), json!(v4), None),
        ("v6", v6.clone(), json!(v6), None),
        (
            "family",
            input.family.to_string(),
            json!(input.family),
            None,
        ),
        ("addr", addr.clone(), json!(addr), None),
        ("ptr", hex(input.addr), json!(hex(input.addr)), None),
        (
            "callers",
            format!("[{},{}]", hex(input.addr), hex(input.lat_ns)),
            json!([hex(input.addr), hex(input.lat_ns)]),
            None,
        ),
        ("mode", mode.clone(), json!(mode), None),
        (
            "flags",
            flags.into(),
            json!(flags),
            Some(json!(input.flags)),
        ),
        ("tpid", input.ret.to_string(), json!(input.ret), None),
        (
            "inner",
            format!("{{at={at},err={}}}", errno(input.ret)),
            json!({"at": at, "at@raw": at, "err": errno(input.ret), "err@raw": input.ret}),
            None,
        ),
        ("comm", COMM.into(), json!(COMM), None),
    ]
}

// ---------------------------------------------------------------------------------------
// The corpus program, built without root.

fn package() -> &'static Package {
    static BUILT: OnceLock<Package> = OnceLock::new();
    BUILT.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/corpus/formats/formats.bpf.c");
        let opts = runner::compile::BuildOptions {
            source,
            ..Default::default()
        };
        runner::compile::build(&opts).unwrap_or_else(|e| panic!("building corpus formats: {e}"))
    })
}

fn event_type() -> &'static Type {
    &package().events[0].ty
}

/// The offset of member `name` of the event struct.
fn offset(name: &str) -> usize {
    let Kind::Struct { members, .. } = &event_type().kind else {
        panic!("not a struct");
    };
    members
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no member {name}"))
        .offset as usize
}

/// The record the program writes for `input` (with `ts` and `dev` as given).
fn record(input: &Input, time: u64, ts: u64, dev: u32) -> Vec<u8> {
    let mut rec = vec![0u8; event_type().size() as usize];
    let mut put = |name: &str, bytes: &[u8]| {
        let at = offset(name);
        rec[at..at + bytes.len()].copy_from_slice(bytes);
    };
    put("time", &time.to_le_bytes());
    put("event", &7u32.to_le_bytes());
    put("ret", &(input.ret as i32).to_le_bytes());
    put("sig", &input.sig.to_le_bytes());
    put("sig_named", &input.sig.to_le_bytes());
    put("ret_named", &(input.ret as i32).to_le_bytes());
    put("sys", &(libc::SYS_prctl as i32).to_le_bytes());
    put("ts", &ts.to_le_bytes());
    put("lat", &input.lat_ns.to_le_bytes());
    put("span", &input.lat_ns.to_le_bytes());
    put("dev", &dev.to_le_bytes());
    put("v4", &input.ip4);
    put("v6", &input.ip6);
    put("family", &input.family.to_le_bytes());
    put(
        "addr",
        if input.family == 4 {
            &input.ip4[..]
        } else {
            &input.ip6[..]
        },
    );
    put("ptr", &input.addr.to_le_bytes());
    put(
        "callers",
        &[input.addr.to_le_bytes(), input.lat_ns.to_le_bytes()].concat(),
    );
    put("mode", &input.mode.to_le_bytes());
    put("flags", &input.flags.to_le_bytes());
    put("tpid", &(input.ret as u32).to_le_bytes());
    put(
        "inner",
        &[
            (input.lat_ns / 1000).to_le_bytes().to_vec(),
            (input.ret as i32).to_le_bytes().to_vec(),
        ]
        .concat(),
    );
    put("comm", COMM.as_bytes());
    rec
}

// ---------------------------------------------------------------------------------------
// Golden files.

/// Frozen time of every event: 2023-11-14T22:13:20.123456 UTC (a `ktime` of 0 reads as
/// this instant too).
const FIXED_TIME: (i64, i64) = (1_700_000_000, 123_456_789);

fn render(format: Format, names: bool, records: &[Vec<u8>]) -> String {
    let plan = Plan::record_showing(event_type(), false, Shows { names }).unwrap();
    let mut writer = EventWriter::new(format, plan);
    writer.fix_time(FIXED_TIME.0, FIXED_TIME.1);
    let mut out = Vec::new();
    writer.header(&mut out);
    for rec in records {
        writer.event(rec, &mut out);
    }
    String::from_utf8(out).unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("RUNNER_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}); create it with RUNNER_BLESS=1 cargo test -p runner --test formats", path.display())
    });
    assert!(
        expected == actual,
        "{} differs; if intended: RUNNER_BLESS=1 cargo test -p runner --test formats\n--- actual ---\n{actual}",
        path.display()
    );
}

/// The corpus program's struct, its formats from its own BTF, in every output, with and
/// without `--names`; `ts` 1.5 s after the frozen instant, `dev` 254:1.
#[test]
fn formats_render_as_golden() {
    let records: Vec<Vec<u8>> = inputs()
        .iter()
        .map(|(input, time)| record(input, *time, 1_500_000_123, (254 << 20) | 1))
        .collect();
    for (file, names) in [("formats.txt", false), ("formats_names.txt", true)] {
        let mut text = format!("# corpus formats, struct event, --names: {names}\n");
        for (title, format) in [
            ("table", Format::Table),
            ("json", Format::Json),
            ("csv", Format::Csv),
        ] {
            let out = render(format, names, &records);
            text.push_str(&format!("## {title}\n{out}"));
        }
        golden(file, &text);
    }
}

/// The golden files hold what `shown` says, value by value (so a blessed golden cannot
/// hide a wrong value): the JSON of each record against the expectations.
#[test]
fn rendered_json_is_what_each_format_promises() {
    for names in [false, true] {
        for (input, time) in inputs() {
            let rec = record(&input, time, 1_500_000_123, (254 << 20) | 1);
            let line = render(Format::Json, names, &[rec]);
            let v: Value = serde_json::from_str(line.trim()).unwrap();
            check_json(&v, &input, time, names);
            assert_eq!(v["ts"], json!("2023-11-14T22:13:21.623456912+00:00"));
            assert_eq!(v["ts@raw"], json!(1_500_000_123u64));
            assert_eq!(v["dev"], json!("254:1"));
            assert_eq!(v["dev@raw"], json!((254u32 << 20) | 1));
        }
    }
}

/// Every member of a JSON event against [`shown`], and the keys in order.
fn check_json(v: &Value, input: &Input, time: u64, names: bool) {
    let mut keys = vec!["@time".to_string()];
    for (name, _, json, raw) in shown(input, time, names) {
        assert_eq!(v[name], json, "{name} in {v}");
        keys.push(name.to_string());
        if let Some(raw) = raw {
            assert_eq!(v[format!("{name}@raw")], raw, "{name}@raw in {v}");
            keys.push(format!("{name}@raw"));
        }
        if name == "sys" {
            keys.extend(["ts".to_string(), "ts@raw".to_string()]);
        }
        if name == "span" {
            keys.extend(["dev".to_string(), "dev@raw".to_string()]);
        }
    }
    let found: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(found, keys.iter().collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// No duplicate JSON key or CSV column, whatever the member names.

/// A JSON value read with every object's keys checked for repeats.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(A::Error::custom(format!("key `{key}` twice")));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

/// xorshift64: the same "random" structs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[(self.next() % from.len() as u64) as usize]
    }
}

/// Member names: the runner's own keys and columns, names with `@`, `.`, `(`, spaces and
/// other characters no C identifier has (BTF need not come from a C compiler), repeats,
/// and none at all.
const NAMES: &[&str] = &[
    "time",
    "event",
    "map",
    "key",
    "value",
    "entries",
    "unit",
    "buckets",
    "low",
    "high",
    "count",
    "bucket_low",
    "x",
    "ret",
    "lat",
    "",
    "@time",
    "@event",
    "@map",
    "x@raw",
    "ret@raw",
    "x@2",
    "lat(ms)",
    "key.x",
    "value.x",
    "a b",
    "é",
    "x",
];

const FORMATS: &[Option<&str>] = &[
    None,
    None,
    Some("errno"),
    Some("signal"),
    Some("duration:ns:ms"),
    Some("duration:ns"),
    Some("hex"),
    Some("ktime"),
    Some("flags:open"),
];

fn int(c: &str, size: u32) -> Type {
    Type {
        c: c.into(),
        kind: Kind::Int {
            size,
            signed: false,
        },
    }
}

/// A random struct of at most `depth` levels, members laid out one after the other.
fn random_struct(rng: &mut Rng, depth: u32) -> Type {
    let mut members = Vec::new();
    let mut offset = 0;
    for _ in 0..(2 + rng.next() % 6) {
        let name = rng.pick(NAMES).to_string();
        let format = rng
            .pick(FORMATS)
            .map(|f| Shown::format(ValueFormat::parse(f).unwrap(), false));
        let (ty, shown) = match rng.next() % 6 {
            0 if depth > 0 => (random_struct(rng, depth - 1), None),
            1 => (
                Type {
                    c: "__u32[2]".into(),
                    kind: Kind::Array {
                        len: 2,
                        elem: Box::new(int("__u32", 4)),
                    },
                },
                format,
            ),
            2 => (int("__u32", 4), format),
            _ => (int("__u64", 8), format),
        };
        let size = ty.size() as u32;
        members.push(Member {
            name,
            offset,
            bitfield: None,
            ty,
            shown,
        });
        offset += size;
    }
    Type {
        c: "struct random".into(),
        kind: Kind::Struct {
            size: offset,
            members,
        },
    }
}

fn assert_unique_json(text: &str, what: &str) {
    for line in text.lines() {
        if let Err(e) = serde_json::from_str::<Unique>(line) {
            panic!("{what}: {e} in {line}");
        }
    }
}

fn assert_unique_csv_headers(text: &str, what: &str) {
    for record in common::csv_records(text) {
        if record[0].starts_with('@') {
            let set: HashSet<&String> = record.iter().collect();
            assert_eq!(
                set.len(),
                record.len(),
                "{what}: a CSV header repeats a column: {record:?}"
            );
        }
    }
}

#[test]
fn no_member_name_repeats_a_json_key_or_a_csv_column() {
    let mut rng = Rng(0x5eed_f00d_dead_beef);
    for round in 0..300 {
        let ty = random_struct(&mut rng, 2);
        let rec = vec![0x5au8; ty.size() as usize];
        for names in [false, true] {
            let plan = Plan::record_showing(&ty, false, Shows { names }).unwrap();
            for format in [Format::Json, Format::Csv] {
                let mut writer = EventWriter::new(format, plan.clone()).with_label("random");
                let mut out = Vec::new();
                writer.header(&mut out);
                writer.event(&rec, &mut out);
                let text = String::from_utf8(out).unwrap();
                let what = format!("round {round}, {format:?}, {ty:?}");
                assert_unique_json_or_csv(format, &text, &what);
            }
        }
        let value = random_struct(&mut rng, 1);
        let map = Map {
            name: "m".into(),
            kind: MapType::Hash,
            key_size: ty.size() as u32,
            value_size: value.size() as u32,
            max_entries: 1,
            key: Some(ty.clone()),
            value: Some(value.clone()),
            view: None,
            unit: None,
            size: None,
        };
        for format in [Format::Json, Format::Csv] {
            let mut writer = ViewWriter::new(format, &map, View::Table).unwrap();
            let mut out = Vec::new();
            let entry = (
                vec![1u8; ty.size() as usize],
                vec![2u8; value.size() as usize],
            );
            writer.render(vec![entry], &mut out);
            let text = String::from_utf8(out).unwrap();
            assert_unique_json_or_csv(
                format,
                &text,
                &format!("map view, round {round}, {format:?}"),
            );
        }
    }
}

fn assert_unique_json_or_csv(format: Format, text: &str, what: &str) {
    match format {
        Format::Json => assert_unique_json(text, what),
        _ => assert_unique_csv_headers(text, what),
    }
}

// ---------------------------------------------------------------------------------------
// End to end.

fn realtime_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// The calls, each with the wall-clock window it was made in.
fn call_all() -> Vec<(i128, i128)> {
    common::set_comm(COMM);
    inputs()
        .iter()
        .map(|(input, time)| {
            let before = realtime_ns();
            common::prctl(OPTION, input as *const Input as u64, *time, 0, 0);
            (before, realtime_ns())
        })
        .collect()
}

/// `major:minor` of the device holding this test's executable, as stat(2) says.
fn exe_dev() -> String {
    let dev = std::fs::metadata("/proc/self/exe").unwrap().dev();
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

fn run(args: &[&str]) -> (String, Vec<(i128, i128)>) {
    common::require_bpf();
    let pkg = common::corpus_package("formats");
    let pid = std::process::id().to_string();
    let mut all = vec![pkg.as_str(), "--target_tgid", &pid];
    all.extend(args);
    let mut windows = Vec::new();
    let done = common::trace(&all, || windows = call_all());
    (done.stdout, windows)
}

/// Wall-clock nanoseconds of the local time of day `HH:MM:SS.uuuuuu` on the day of
/// `near` (the window of the call it must fall in).
fn local_ns(text: &str, near: i128) -> i128 {
    let secs = (near / 1_000_000_000) as libc::time_t;
    // SAFETY: a zeroed `tm` is a valid out-parameter.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid; localtime_r is thread-safe.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    let midnight = i128::from(secs - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec) as i64);
    let field = |r: std::ops::Range<usize>| text[r].parse::<i128>().unwrap();
    let of_day = field(0..2) * 3600 + field(3..5) * 60 + field(6..8);
    (midnight + of_day) * 1_000_000_000 + field(9..15) * 1000
}

/// Epoch nanoseconds of RFC 3339 `2026-12-01T19:56:23.860473123+01:00`.
fn rfc3339_ns(text: &str) -> i128 {
    let n = |r: std::ops::Range<usize>| text[r].parse::<i128>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from 1970-01-01 to y-m-d (civil calendar).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    let sign = if &text[29..30] == "-" { -1 } else { 1 };
    let zone = sign * (n(30..32) * 3600 + n(33..35) * 60);
    (secs - zone) * 1_000_000_000 + n(20..29)
}

/// The kernel's timestamp, as wall-clock time, falls in the call's window (the runner
/// takes CLOCK_REALTIME - CLOCK_MONOTONIC once: allow a millisecond).
fn assert_in_window(at: i128, (before, after): (i128, i128), what: &str) {
    let slack = 1_000_000;
    assert!(
        before - slack <= at && at <= after + slack,
        "{what}: {at} not within [{before}, {after}]"
    );
}

/// A table line with its runs of spaces as one (cells may hold spaces: `SIGSEGV (core
/// dumped)`), its TIME and `ts` set aside.
fn table_cells(line: &str) -> (String, String, String) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let time = words[0].to_string();
    assert!(common::is_time_of_day(&time), "{line}");
    let ts = words
        .iter()
        .find(|w| w.len() == 15 && w.as_bytes()[8] == b'.' && w.as_bytes()[2] == b':')
        .unwrap_or_else(|| panic!("no ts in {line}"))
        .to_string();
    let rest: Vec<&str> = words[1..].iter().filter(|w| **w != ts).copied().collect();
    (time, ts, rest.join(" "))
}

fn expected_line(input: &Input, time: u64, names: bool) -> String {
    let mut cells = Vec::new();
    for (name, text, _, _) in shown(input, time, names) {
        cells.push(text);
        if name == "span" {
            cells.push(exe_dev());
        }
    }
    cells.join(" ")
}

fn table_case(names: bool) {
    let args: &[&str] = if names { &["--names"] } else { &[] };
    let (out, windows) = run(args);
    let mut lines = out.lines();
    assert_eq!(
        common::cells(lines.next().unwrap()),
        [
            "TIME",
            "TIME",
            "EVENT",
            "RET",
            "SIG",
            "SIG_NAMED",
            "RET_NAMED",
            "SYS",
            "TS",
            "LAT(ms)",
            "SPAN",
            "DEV",
            "V4",
            "V6",
            "FAMILY",
            "ADDR",
            "PTR",
            "CALLERS",
            "MODE",
            "FLAGS",
            "TPID",
            "INNER",
            "COMM"
        ]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{out}");
    for ((row, (input, time)), window) in rows.iter().zip(inputs()).zip(windows) {
        let (_, ts, rest) = table_cells(row);
        assert_eq!(rest, expected_line(&input, time, names), "{out}");
        assert_in_window(local_ns(&ts, window.0), window, row);
    }
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn every_format_in_the_table() {
    table_case(false);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn every_format_in_the_table_with_names() {
    table_case(true);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn every_format_in_json() {
    for names in [false, true] {
        let args: &[&str] = if names {
            &["-o", "json", "-n"]
        } else {
            &["-o", "json"]
        };
        let (out, windows) = run(args);
        let lines: Vec<Value> = out.lines().map(common::json_line).collect();
        assert_eq!(lines.len(), 3, "{out}");
        for ((v, (input, time)), window) in lines.iter().zip(inputs()).zip(windows) {
            check_json(v, &input, time, names);
            assert_in_window(rfc3339_ns(v["ts"].as_str().unwrap()), window, "ts");
            assert_eq!(v["dev"], json!(exe_dev()));
        }
    }
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn every_format_in_csv() {
    let (out, windows) = run(&["-o", "csv"]);
    let records = common::csv_records(&out);
    assert_eq!(
        records[0],
        [
            "@time",
            "time",
            "event",
            "ret",
            "sig",
            "sig_named",
            "ret_named",
            "sys",
            "ts",
            "lat(ms)",
            "span",
            "dev",
            "v4",
            "v6",
            "family",
            "addr",
            "ptr",
            "callers",
            "mode",
            "flags",
            "tpid",
            "inner",
            "comm"
        ]
    );
    assert_eq!(records.len(), 4, "{out}");
    for ((record, (input, time)), window) in records[1..].iter().zip(inputs()).zip(windows) {
        assert!(common::is_time_of_day(&record[0]), "{record:?}");
        let ts = &record[8];
        assert_in_window(local_ns(ts, window.0), window, ts);
        let rest: Vec<&str> = record[1..]
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 7)
            .map(|(_, c)| c.as_str())
            .collect();
        assert_eq!(rest.join(" "), expected_line(&input, time, false), "{out}");
    }
}
