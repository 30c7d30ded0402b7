//! End-to-end tests over the corpus (`tests/fixtures/corpus/`): small BPF programs that
//! together cover every BTF shape of an event, both event channels, every attach type this
//! kernel offers, map views and every kind of global. Each test builds its program with
//! `runner build`, runs it with `runner run`, triggers it with values it chooses (its own
//! pid, syscall arguments, a uprobe's arguments) and asserts the exact decoded values, in
//! table and in JSON output.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON), clang and bpftool: the tests are `#[ignore]`d
//! and `scripts/test` runs them (see `common::require_bpf`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{
    corpus_package, json_lines, one_at_a_time, prctl, run_runner, set_comm, trace, Tracer,
};
use serde_json::{json, Value};

// The trigger constants of the corpus headers.
const SCALARS_OPTION: u64 = 0x5243_0001;
const SHAPES_MAGIC: u64 = 0x5348_0001;
const TWOCHAN_WHICH: u64 = 0x5443;
const GLOBALS_OPTION: u64 = 0x5247_0001;
const VIEWS_OPTION: u64 = 0x5256_0001;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pid() -> String {
    std::process::id().to_string()
}

fn gettid() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn is_time(cell: &str) -> bool {
    common::is_time_of_day(cell)
}

/// The event rows of a table: lines that start with a time of day, split into cells
/// (but not the `<time> map <name>: ...` title of a map view).
fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(common::cells)
        .filter(|cells| cells.first().is_some_and(|c| is_time(c)) && cells.get(1) != Some(&"map"))
        .map(|cells| cells.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// The header lines of a table (one per event channel), split into cells.
fn table_headers(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| l.starts_with("TIME "))
        .map(|l| common::cells(l).iter().map(|c| c.to_string()).collect())
        .collect()
}

/// JSON events (lines that are not map views), without their `@time`, which is checked
/// to be an RFC 3339 timestamp.
fn json_events(stdout: &str) -> Vec<Value> {
    common::json_events(stdout, |v| {
        let time = v["@time"]
            .as_str()
            .unwrap_or_else(|| panic!("no time in {v}"))
            .to_string();
        assert!(
            time.len() >= 26 && time.as_bytes()[10] == b'T',
            "time {time:?}"
        );
    })
}

/// An integer as the runner's JSON holds it: a number when every JSON reader holds it
/// exactly (below 2^53), a string of its digits beyond.
fn exact(v: impl Into<i128>) -> Value {
    let v: i128 = v.into();
    if v.unsigned_abs() < 1 << 53 {
        json!(v as i64)
    } else {
        json!(v.to_string())
    }
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// scalars: tracepoint, ring buffer, every scalar member kind.

/// What prctl(SCALARS_OPTION, a2, a3, a4, a5) must decode to: table cells after TIME and
/// TS_NS, and the JSON object without time and ts_ns.
fn scalars_expected(comm: &str, [a2, a3, a4, a5]: [u64; 4]) -> (Vec<String>, Value) {
    let full_bytes = a4.to_le_bytes();
    let full_len = full_bytes.iter().position(|&b| b == 0).unwrap_or(8);
    let full = String::from_utf8(full_bytes[..full_len].to_vec()).unwrap();
    let raw = &a5.to_le_bytes()[..6];
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let (lo, hi) = (a5 as u32, (a5 >> 32) as u32);
    let cells = vec![
        (a2 as i8).to_string(),
        (a2 as u8).to_string(),
        (a2 as i16).to_string(),
        (a2 as u16).to_string(),
        (a2 as i32).to_string(),
        (a2 as u32).to_string(),
        (a2 as i64).to_string(),
        a3.to_string(),
        (a3 & 1 == 1).to_string(),
        comm.to_string(),
        full.clone(),
        hex,
        format!("[{lo},{hi},{}]", lo ^ hi),
        "[[-2500,-1500,-500],[500,1500,2500]]".to_string(),
    ];
    let value = json!({
        "i8": a2 as i8, "u8": a2 as u8, "i16": a2 as i16, "u16": a2 as u16,
        "i32": a2 as i32, "u32": a2 as u32, "i64": exact(a2 as i64), "u64": exact(a3),
        "odd": a3 & 1 == 1, "comm": comm, "full": full, "raw": raw,
        "words": [lo, hi, lo ^ hi],
        "grid": [[-2500, -1500, -500], [500, 1500, 2500]],
    });
    (cells, value)
}

const SCALARS_CALLS: [[u64; 4]; 2] = [
    // Every width's minimum, an odd u64 above i64::MAX, 8 letters, 6 bytes.
    [
        0x8000_0000_8000_8080,
        0xfedc_ba98_7654_3211,
        0x4847_4645_4443_4241,
        0x0123_4567_89ab_cdef,
    ],
    // Every width's maximum, an even u64, a 3-letter string, bytes with zeros.
    [0x7fff_ffff_7fff_7f7f, 42, 0x63_6261, 0x00ff_0000_0001],
];

/// Make the SCALARS_CALLS from a thread named `comm`; returns the monotonic clock before
/// and after.
fn scalars_trigger(comm: &str) -> (u64, u64) {
    let comm = comm.to_string();
    std::thread::spawn(move || {
        set_comm(&comm);
        let before = monotonic_ns();
        for [a2, a3, a4, a5] in SCALARS_CALLS {
            prctl(SCALARS_OPTION, a2, a3, a4, a5);
        }
        (before, monotonic_ns())
    })
    .join()
    .unwrap()
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn scalars_table() {
    common::require_bpf();
    check_scalars_table(&corpus_package("scalars"));
}

/// The scalars package of an earlier runner (`fixtures/compat/`) still decodes every width
/// exactly.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn scalars_from_an_earlier_runner_still_decode_exactly() {
    common::require_bpf();
    let frozen = std::fs::read_dir(corpus_dir().join("../compat"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("scalars-")
        })
        .expect("a frozen scalars package");
    check_scalars_table(frozen.to_str().unwrap());
}

fn check_scalars_table(pkg: &str) {
    let comm = "scalars-0123456"; // 15 bytes: the longest comm, NUL in the last byte
    let mut window = (0, 0);
    let done = trace(&[pkg, "--target_tgid", &pid()], || {
        window = scalars_trigger(comm)
    });
    assert_eq!(
        table_headers(&done.stdout),
        vec![strings(&[
            "TIME", "TS_NS", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "ODD", "COMM",
            "FULL", "RAW", "WORDS", "GRID"
        ])]
    );
    let rows = table_rows(&done.stdout);
    assert_eq!(rows.len(), 2, "{}", done.stdout);
    for (row, call) in rows.iter().zip(SCALARS_CALLS) {
        let ts: u64 = row[1].parse().unwrap();
        assert!(
            window.0 <= ts && ts <= window.1,
            "ts_ns {ts} outside {window:?}"
        );
        assert_eq!(
            row[2..],
            scalars_expected(comm, call).0[..],
            "{}",
            done.stdout
        );
    }
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn scalars_json() {
    common::require_bpf();
    let pkg = corpus_package("scalars");
    let comm = "scalars-json";
    let mut window = (0, 0);
    let done = trace(&[&pkg, "--target-tgid", &pid(), "-o", "json"], || {
        window = scalars_trigger(comm)
    });
    let events = json_events(&done.stdout);
    assert_eq!(events.len(), 2, "{}", done.stdout);
    for (mut event, call) in events.into_iter().zip(SCALARS_CALLS) {
        let ts = event
            .as_object_mut()
            .unwrap()
            .remove("ts_ns")
            .unwrap()
            .as_u64()
            .unwrap();
        assert!(
            window.0 <= ts && ts <= window.1,
            "ts_ns {ts} outside {window:?}"
        );
        assert_eq!(event, scalars_expected(comm, call).1);
    }
}

/// `runner:lost=events`: what the program could not submit is counted, and reported, so
/// that events printed + events lost = calls made.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn scalars_lost_events_are_counted() {
    common::require_bpf();
    let pkg = corpus_package("scalars");
    // Far more than the 256 KiB ring holds while the runner is blocked writing to a pipe
    // that nobody reads until the end.
    const CALLS: u64 = 20_000;
    let done = trace(&[&pkg, "--target_tgid", &pid(), "-o", "json"], || {
        for i in 0..CALLS {
            prctl(SCALARS_OPTION, i, i, 0, 0);
        }
    });
    let printed = json_events(&done.stdout).len() as u64;
    let summary = done
        .stderr
        .lines()
        .find(|l| l.contains(" events, ") && l.ends_with(" lost"))
        .unwrap_or_else(|| panic!("no summary line in:\n{}", done.stderr));
    let numbers: Vec<u64> = summary
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(',').parse().ok())
        .collect();
    let [events, lost] = numbers[..] else {
        panic!("summary {summary:?}")
    };
    assert_eq!(events, printed, "{summary}");
    assert!(lost > 0, "nothing lost: {summary}");
    assert_eq!(events + lost, CALLS, "{summary}");
    assert!(
        done.stderr.contains("events lost on map `events`"),
        "{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------------------
// shapes: raw tracepoint, perf event array, every aggregate member kind.

const SHAPES_CALLS: [[u64; 4]; 2] = [
    [
        0x89ab_cdef,
        0x7fff_1234_5678,
        0xfffe_0102,
        0xffff_ffff_0000_0000,
    ],
    [0, 0, 0x7fff_8000, 3],
];

fn shapes_trigger() {
    for [a, b, c, d] in SHAPES_CALLS {
        prctl(SHAPES_MAGIC, a, b, c, d);
    }
}

fn wide_name(d: u64) -> Value {
    match d {
        1 => json!("WIDE_SMALL"),
        0x1_0000_0000 => json!("WIDE_BIG"),
        0xffff_ffff_0000_0000 => json!("WIDE_TOP"),
        other => json!(other),
    }
}

fn shapes_expected([a, b, c, d]: [u64; 4]) -> (Vec<String>, Value) {
    let word = c as u32;
    let halves = [word as u16 as i16, (word >> 16) as u16 as i16];
    let bytes = word.to_le_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let wide = wide_name(d);
    let cells = vec![
        (a as u32).to_string(),
        "171".into(),
        "1234605616436508552".into(),
        "{min={x=-1,y=2},max={x=3,y=-4},id=65535}".into(),
        format!(
            "{{value={word},halves=[{},{}],bytes={hex}}}",
            halves[0], halves[1]
        ),
        "3735928559".into(),
        "48879".into(),
        "BLUE".into(),
        "5".into(),
        wide.as_str()
            .map_or_else(|| wide.to_string(), str::to_string),
        "8589934592".into(),
        "DELTA_DOWN".into(),
        "5".into(),
        "17".into(),
        "-3".into(),
        "GREEN".into(),
        "1094624909430".into(),
        "4242".into(),
        format!("{b:#x}"),
    ];
    let value = json!({
        "handle": a as u32,
        "tag": 171,
        "after_pad": exact(0x1122_3344_5566_7788u64),
        "box": {"min": {"x": -1, "y": 2}, "max": {"x": 3, "y": -4}, "id": 65535},
        "word": {"value": word, "halves": halves, "bytes": bytes},
        "anon_u32": 0xdead_beefu32,
        "anon_u16": 0xbeef,
        "color": "BLUE",
        "odd_color": 5,
        "wide": wide,
        "odd_wide": 0x2_0000_0000u64,
        "delta": "DELTA_DOWN",
        "lo": 5,
        "mid": 17,
        "neg": -3,
        "bf_color": "GREEN",
        "big": 0xfe_dcba_9876u64,
        "after_bits": 4242,
        "ptr": format!("{b:#x}"),
    });
    (cells, value)
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn shapes_table() {
    common::require_bpf();
    let pkg = corpus_package("shapes");
    let done = trace(&[&pkg, "--target_tgid", &pid()], shapes_trigger);
    assert_eq!(
        table_headers(&done.stdout),
        vec![strings(&[
            "TIME",
            "HANDLE",
            "TAG",
            "AFTER_PAD",
            "BOX",
            "WORD",
            "ANON_U32",
            "ANON_U16",
            "COLOR",
            "ODD_COLOR",
            "WIDE",
            "ODD_WIDE",
            "DELTA",
            "LO",
            "MID",
            "NEG",
            "BF_COLOR",
            "BIG",
            "AFTER_BITS",
            "PTR"
        ])]
    );
    let rows = table_rows(&done.stdout);
    assert_eq!(rows.len(), 2, "{}", done.stdout);
    for (row, call) in rows.iter().zip(SHAPES_CALLS) {
        assert_eq!(row[1..], shapes_expected(call).0[..], "{}", done.stdout);
    }
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn shapes_json() {
    common::require_bpf();
    let pkg = corpus_package("shapes");
    let done = trace(
        &[&pkg, "--target_tgid", &pid(), "-o", "json"],
        shapes_trigger,
    );
    let events = json_events(&done.stdout);
    assert_eq!(events.len(), 2, "{}", done.stdout);
    for (event, call) in events.into_iter().zip(SHAPES_CALLS) {
        assert_eq!(event, shapes_expected(call).1);
    }
}

// ---------------------------------------------------------------------------------------
// twochan: tracepoint → ring buffer of one struct, tp_btf → perf event array of another.

const TWOCHAN_WHO: i64 = -77;

/// getpriority(TWOCHAN_WHICH, TWOCHAN_WHO) from a thread named `comm`; returns its tid.
fn twochan_trigger(comm: &str) -> u32 {
    let comm = comm.to_string();
    std::thread::spawn(move || {
        set_comm(&comm);
        // SAFETY: an invalid `which` only makes the call fail with EINVAL.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_getpriority,
                TWOCHAN_WHICH as libc::c_long,
                TWOCHAN_WHO,
            )
        };
        assert_eq!(rc, -1);
        gettid()
    })
    .join()
    .unwrap()
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn twochan_table() {
    common::require_bpf();
    let pkg = corpus_package("twochan");
    let comm = "corpus-twochan";
    let mut tid = 0;
    let done = trace(&[&pkg, "--target_tgid", &pid()], || {
        tid = twochan_trigger(comm)
    });
    assert_eq!(
        table_headers(&done.stdout),
        vec![
            strings(&["TIME", "EVENT", "WHICH", "WHO", "TID", "COMM"]),
            strings(&["TIME", "EVENT", "RET", "WHICH", "TID", "MARKER"]),
        ]
    );
    let mut rows = table_rows(&done.stdout);
    assert_eq!(rows.len(), 2, "{}", done.stdout);
    for row in &mut rows {
        row.remove(0);
    }
    rows.sort();
    let tid = tid.to_string();
    let which = TWOCHAN_WHICH.to_string();
    assert_eq!(
        rows,
        vec![
            strings(&["prio_request", &which, &TWOCHAN_WHO.to_string(), &tid, comm]),
            strings(&["prio_return", "-22", &which, &tid, "48879"]),
        ]
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn twochan_json() {
    common::require_bpf();
    let pkg = corpus_package("twochan");
    let comm = "corpus-twochan";
    let mut tid = 0;
    let done = trace(&[&pkg, "--target_tgid", &pid(), "-o", "json"], || {
        tid = twochan_trigger(comm)
    });
    let mut events = json_events(&done.stdout);
    events.sort_by_key(|e| e.get("ret").is_some());
    assert_eq!(
        events,
        vec![
            json!({"@event": "prio_request", "which": TWOCHAN_WHICH, "who": TWOCHAN_WHO, "tid": tid, "comm": comm}),
            json!({"@event": "prio_return", "ret": -22, "which": TWOCHAN_WHICH, "tid": tid, "marker": 0xbeef}),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// uprobe / uretprobe with the target given at run time.

/// Compile the uprobe corpus program's user-space side once; returns its path.
fn trigger_binary() -> String {
    static BUILT: Mutex<Option<String>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.as_ref() {
        return path.clone();
    }
    let out = scratch_dir().join("corpus-trigger");
    let status = Command::new("cc")
        .args(["-O0", "-g", "-o"])
        .arg(&out)
        .arg(corpus_dir().join("uprobe/trigger.c"))
        .status()
        .expect("run cc");
    assert!(status.success(), "cc trigger.c failed");
    let path = out.to_str().unwrap().to_string();
    *built = Some(path.clone());
    path
}

const UPROBE_A: i64 = -1_234_567_890_123;
const UPROBE_B: i32 = -42;

/// Run the trigger binary; returns its pid.
fn uprobe_trigger(binary: &str) -> u32 {
    let child = Command::new(binary)
        .args([UPROBE_A.to_string(), UPROBE_B.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        (UPROBE_A * 2 + i64::from(UPROBE_B)).to_string()
    );
    pid
}

fn uprobe_args(pkg: &str, binary: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        pkg.to_string(),
        "--attach".into(),
        format!("on_entry={binary}:corpus_trigger"),
        "--attach".into(),
        format!("on_return={binary}:corpus_trigger"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn uprobe_table() {
    common::require_bpf();
    let pkg = corpus_package("uprobe");
    let binary = trigger_binary();
    let args = uprobe_args(&pkg, &binary, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = 0;
    let done = trace(&args, || child = uprobe_trigger(&binary));
    assert_eq!(
        table_headers(&done.stdout),
        vec![strings(&["TIME", "POINT", "PID", "A", "B", "RET", "COMM"])]
    );
    let rows: Vec<Vec<String>> = table_rows(&done.stdout)
        .into_iter()
        .map(|r| r[1..].to_vec())
        .collect();
    let child = child.to_string();
    let ret = (UPROBE_A * 2 + i64::from(UPROBE_B)).to_string();
    assert_eq!(
        rows,
        vec![
            strings(&[
                "PROBE_ENTRY",
                &child,
                &UPROBE_A.to_string(),
                &UPROBE_B.to_string(),
                "0",
                "corpus-trigger"
            ]),
            strings(&["PROBE_RETURN", &child, "0", "0", &ret, "corpus-trigger"]),
        ]
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn uprobe_json() {
    common::require_bpf();
    let pkg = corpus_package("uprobe");
    let binary = trigger_binary();
    let args = uprobe_args(&pkg, &binary, &["-o", "json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = 0;
    let done = trace(&args, || child = uprobe_trigger(&binary));
    let comm = "corpus-trigger";
    assert_eq!(
        json_events(&done.stdout),
        vec![
            json!({"point": "PROBE_ENTRY", "pid": child, "a": UPROBE_A, "b": UPROBE_B, "ret": 0, "comm": comm}),
            json!({"point": "PROBE_RETURN", "pid": child, "a": 0, "b": 0, "ret": UPROBE_A * 2 + i64::from(UPROBE_B), "comm": comm}),
        ]
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn uprobe_without_target_is_one_clear_error() {
    common::require_bpf();
    let pkg = corpus_package("uprobe");
    let done = run_runner(&["run", &pkg, "--duration", "1"]);
    // A usage error, as clap reports one.
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", done.stderr);
    assert!(
        lines[0].starts_with("error: program `on_entry`"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("--attach on_entry=<BINARY>:<FUNCTION>"),
        "{}",
        lines[0]
    );
}

// ---------------------------------------------------------------------------------------
// cpuclock: perf_event program on the software cpu-clock, plus a table view.

/// Run `body` while a thread named `corpus-spin` burns CPU; `body` gets its tid.
fn with_spinner<T>(body: impl FnOnce(u32) -> T) -> T {
    let _one = one_at_a_time();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let spinner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            set_comm("corpus-spin");
            tx.send(gettid()).unwrap();
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        })
    };
    let tid = rx.recv().unwrap();
    let result = body(tid);
    stop.store(true, Ordering::Relaxed);
    spinner.join().unwrap();
    result
}

/// Samples must number 1, 2, ... n, all of the spinner, and the view must count n.
fn check_samples(samples: &[u64], view_count: u64) {
    assert!(
        samples.len() >= 5,
        "only {} samples in a second of spinning",
        samples.len()
    );
    let expected: Vec<u64> = (1..=samples.len() as u64).collect();
    assert_eq!(samples, expected);
    assert_eq!(view_count, samples.len() as u64);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn cpuclock_json() {
    common::require_bpf();
    let pkg = corpus_package("cpuclock");
    let done = with_spinner(|tid| {
        let tid_s = tid.to_string();
        let tracer = Tracer::start(&[&pkg, "--target_tid", &tid_s, "-o", "json"]);
        std::thread::sleep(Duration::from_secs(1));
        (tid, tracer.stop())
    });
    let (tid, done) = done;
    assert!(done.status.success(), "{}", done.stderr);
    let mut samples = Vec::new();
    for event in json_events(&done.stdout) {
        assert_eq!(event["pid"], json!(std::process::id()));
        assert_eq!(event["tid"], json!(tid));
        assert_eq!(event["comm"], json!("corpus-spin"));
        samples.push(event["sample"].as_u64().unwrap());
    }
    let views: Vec<Value> = json_lines(&done.stdout)
        .into_iter()
        .filter(|v| v.get("@map").is_some())
        .collect();
    assert_eq!(views.len(), 1, "{}", done.stdout);
    assert_eq!(views[0]["@map"], json!("samples"));
    assert_eq!(
        views[0]["entries"],
        json!([{"key": tid, "value": samples.len()}])
    );
    check_samples(&samples, samples.len() as u64);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn cpuclock_table() {
    common::require_bpf();
    let pkg = corpus_package("cpuclock");
    let (tid, done) = with_spinner(|tid| {
        let tid_s = tid.to_string();
        // 199 Hz instead of the default 99, given as the program's attach target.
        let tracer = Tracer::start(&[&pkg, "--target_tid", &tid_s, "--attach", "on_sample=199"]);
        std::thread::sleep(Duration::from_secs(1));
        (tid, tracer.stop())
    });
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(
        table_headers(&done.stdout)[0],
        strings(&["TIME", "PID", "TID", "SAMPLE", "COMM"])
    );
    let pid = pid();
    let tid = tid.to_string();
    let mut samples = Vec::new();
    for row in table_rows(&done.stdout) {
        assert_eq!(row[1..3], [pid.clone(), tid.clone()]);
        assert_eq!(row[4], "corpus-spin");
        samples.push(row[3].parse().unwrap());
    }
    // The view at exit: `<time> map samples: 1 entries`, a KEY VALUE header, one row.
    let lines: Vec<&str> = done.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("map samples: 1 entries"))
        .unwrap_or_else(|| panic!("no view of map `samples`:\n{}", done.stdout));
    assert_eq!(
        common::cells(lines[at + 1]),
        ["KEY", "VALUE"],
        "{}",
        done.stdout
    );
    let row = common::cells(lines[at + 2]);
    assert_eq!(row[0], tid);
    check_samples(&samples, row[1].parse().unwrap());
}

// ---------------------------------------------------------------------------------------
// views: a hash map shown as a table, and log2 histograms of both shapes.

/// (value, bucket) pairs for prctl(VIEWS_OPTION, value, bucket).
const VIEWS_VALUES: [(u64, u64); 7] =
    [(1, 1), (2, 1), (3, 1), (5, 1), (1000, 2), (1000, 2), (0, 2)];

/// One slot of a log2 histogram: (low, high, count).
type Slot = (u64, u64, u64);

/// A histogram as printed: its map, its key (for a map of slot arrays) and its slots.
#[derive(Debug, PartialEq)]
struct Hist {
    map: String,
    key: Option<u32>,
    slots: Vec<Slot>,
}

/// The expected slots, up to the last non-empty one.
fn hist(counts: &[u64]) -> Vec<Slot> {
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if i == 0 {
                (0, 1, c)
            } else {
                (1 << i, (2 << i) - 1, c)
            }
        })
        .collect()
}

fn views_expected() -> Vec<Hist> {
    [
        ("values", None, hist(&[2, 2, 1, 0, 0, 0, 0, 0, 0, 2])),
        ("by_bucket", Some(1), hist(&[1, 2, 1])),
        ("by_bucket", Some(2), hist(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 2])),
    ]
    .into_iter()
    .map(|(map, key, slots)| Hist {
        map: map.into(),
        key,
        slots,
    })
    .collect()
}

fn views_trigger(comm: &str) {
    let comm = comm.to_string();
    std::thread::spawn(move || {
        set_comm(&comm);
        for (value, bucket) in VIEWS_VALUES {
            prctl(VIEWS_OPTION, value, bucket, 0, 0);
        }
        // Ignored by default: harmless to send to ourselves.
        for sig in [
            libc::SIGURG,
            libc::SIGURG,
            libc::SIGWINCH,
            libc::SIGWINCH,
            libc::SIGWINCH,
        ] {
            // SAFETY: plain kill(2) of our own process with a default-ignored signal.
            unsafe { libc::kill(libc::getpid(), sig) };
        }
    })
    .join()
    .unwrap();
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn views_table() {
    common::require_bpf();
    let pkg = corpus_package("views");
    let comm = "corpus-views";
    let done = trace(&[&pkg, "--target_tgid", &pid()], || views_trigger(comm));
    // No event channel: no event header, only the views at exit.
    assert!(table_headers(&done.stdout).is_empty(), "{}", done.stdout);

    // The table: a header, then one row per (comm, sig).
    let lines: Vec<&str> = done.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("map signals"))
        .expect("a view of `signals`");
    assert_eq!(
        common::cells(lines[at + 1]),
        ["COMM", "SIG", "COUNT", "LAST", "LAST_TARGET"]
    );
    let rows: Vec<Vec<&str>> = lines[at + 2..]
        .iter()
        .take_while(|l| !l.is_empty())
        .map(|l| common::cells(l))
        .filter(|c| c[0] == comm)
        .collect();
    let pid = pid();
    let urg = libc::SIGURG.to_string();
    let winch = libc::SIGWINCH.to_string();
    assert!(
        rows.contains(&vec![comm, &urg, "2", "SIG_IGNORED", &pid]),
        "{}",
        done.stdout
    );
    assert!(
        rows.contains(&vec![comm, &winch, "3", "SIG_IGNORED", &pid]),
        "{}",
        done.stdout
    );

    // The histograms: `low -> high : count |***|`, under `map <name>:` and `key = <k>`.
    let mut found: Vec<Hist> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    let (mut map, mut key) = (String::new(), None);
    for line in &lines {
        if let Some(rest) = line
            .split(" map ")
            .nth(1)
            .filter(|_| is_time(&line[..12.min(line.len())]))
        {
            map = rest.split(':').next().unwrap().to_string();
            key = None;
        } else if let Some(k) = line.strip_prefix("key = ") {
            key = Some(k.trim().parse().unwrap());
        } else if line.contains(": count    distribution") {
            // bcc's header: the unit `runner:unit` declares, else `value`.
            headers.push((map.clone(), common::cells(line)[0].to_string()));
        } else if line.contains(" -> ") {
            let c = common::cells(line);
            let slot = (
                c[0].parse().unwrap(),
                c[2].parse().unwrap(),
                c[4].parse().unwrap(),
            );
            match found.last_mut() {
                Some(h) if h.map == map && h.key == key => h.slots.push(slot),
                _ => found.push(Hist {
                    map: map.clone(),
                    key,
                    slots: vec![slot],
                }),
            }
            let stars = line.split('|').nth(1).expect("a bar");
            assert_eq!(stars.len(), 40, "{line}");
        }
    }
    assert_eq!(found, views_expected(), "{}", done.stdout);
    assert_eq!(
        headers,
        [
            ("values", "value"),
            ("by_bucket", "usecs"),
            ("by_bucket", "usecs")
        ]
        .map(|(m, u)| (m.to_string(), u.to_string())),
        "{}",
        done.stdout
    );
}

/// `--interval`: the views are printed every interval, and once more at exit.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn views_interval_repeats() {
    common::require_bpf();
    let pkg = corpus_package("views");
    let done = trace(
        &[
            &pkg,
            "--target_tgid",
            &pid(),
            "-o",
            "json",
            "--interval",
            "0.3",
        ],
        || {
            views_trigger("corpus-interval");
            std::thread::sleep(Duration::from_millis(800));
        },
    );
    let dumps: Vec<Value> = json_lines(&done.stdout)
        .into_iter()
        .filter(|v| v["@map"] == "values")
        .collect();
    // At 0.3, 0.6 and 0.9 s (give or take the start), then at exit.
    assert!(dumps.len() >= 3, "{} dumps:\n{}", dumps.len(), done.stdout);
    let last = &dumps[dumps.len() - 1]["buckets"];
    assert_eq!(last[0]["count"], 2, "{last}");
    assert_eq!(last[9]["count"], 2, "{last}");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn views_json() {
    common::require_bpf();
    let pkg = corpus_package("views");
    let comm = "corpus-views-js";
    let done = trace(&[&pkg, "--target_tgid", &pid(), "-o", "json"], || {
        views_trigger(comm)
    });
    let lines = json_lines(&done.stdout);
    let table = lines
        .iter()
        .find(|v| v["@map"] == "signals")
        .expect("a view of `signals`");
    let ours: Vec<&Value> = table["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"]["comm"] == comm)
        .collect();
    let pid = std::process::id();
    let urg = json!({"key": {"comm": comm, "sig": libc::SIGURG}, "value": {"count": 2, "last": "SIG_IGNORED", "last_target": pid}});
    let winch = json!({"key": {"comm": comm, "sig": libc::SIGWINCH}, "value": {"count": 3, "last": "SIG_IGNORED", "last_target": pid}});
    assert!(ours.contains(&&urg), "{ours:?}");
    assert!(ours.contains(&&winch), "{ours:?}");

    let hists: Vec<Value> = lines
        .iter()
        .filter(|v| v.get("buckets").is_some())
        .cloned()
        .collect();
    let expected: Vec<Value> = views_expected()
        .into_iter()
        .map(|Hist { map, key, slots }| {
            let buckets: Vec<Value> = slots
                .iter()
                .map(|(low, high, count)| json!({"low": low, "high": high, "count": count}))
                .collect();
            let mut v = json!({"@map": map});
            if let Some(key) = key {
                v["key"] = json!(key);
            }
            if map == "by_bucket" {
                v["unit"] = json!("usecs");
            }
            v["buckets"] = json!(buckets);
            v
        })
        .collect();
    let without_time: Vec<Value> = hists
        .into_iter()
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("@time").expect("a time");
            v
        })
        .collect();
    assert_eq!(without_time, expected);
}

// ---------------------------------------------------------------------------------------
// globals: every kind of global as a flag, round-tripped through the program.

/// The event columns after ORIGIN, in order.
const GLOBAL_FIELDS: [&str; 17] = [
    "small",
    "byte",
    "short_val",
    "ushort_val",
    "int_val",
    "uint_val",
    "long_val",
    "ulong_val",
    "level",
    "label",
    "strict",
    "enabled",
    "budget",
    "greeting",
    "hops",
    "bss_level",
    "counter",
];

fn globals_defaults() -> Value {
    json!({
        "origin": "ORIGIN_ECHO",
        "small": -5, "byte": 200, "short_val": -300, "ushort_val": 60000,
        "int_val": -70000, "uint_val": 4_000_000_000u32, "long_val": -5_000_000_000i64,
        "ulong_val": exact(10_000_000_000_000_000_000u64), "level": "LEVEL_MID", "label": "corpus",
        "strict": false, "enabled": true, "budget": 1000, "greeting": "hello",
        "hops": 0, "bss_level": 0, "counter": 0,
    })
}

/// Every settable global at a limit of its range, with the value the program must see.
/// `--enabled=false` swaps the `echo` program for `idle` (runner:if / runner:unless).
fn globals_set() -> (Vec<String>, Value) {
    let flags = [
        "--small=-128",
        "--byte=255",
        "--short-val=32767",
        "--ushort_val=0",
        "--int_val=-2147483648",
        "--uint_val=0xffffffff",
        "--long_val=-9223372036854775808",
        "--ulong_val=18446744073709551615",
        "--level=LEVEL_HIGH",
        "--label=abcdefghijklmno",
        "--strict",
        "--enabled=false",
        "--budget=7",
        "--greeting=hi there",
        "--hops=9",
        "--bss-level=3",
        "--counter=12345678901",
    ];
    let value = json!({
        "origin": "ORIGIN_IDLE",
        "small": -128, "byte": 255, "short_val": 32767, "ushort_val": 0,
        "int_val": i32::MIN, "uint_val": u32::MAX, "long_val": exact(i64::MIN), "ulong_val": exact(u64::MAX),
        "level": "LEVEL_HIGH", "label": "abcdefghijklmno", "strict": true, "enabled": false,
        "budget": 7, "greeting": "hi there", "hops": 9, "bss_level": 3, "counter": 12_345_678_901u64,
    });
    (flags.iter().map(|s| s.to_string()).collect(), value)
}

fn globals_trigger() {
    prctl(GLOBALS_OPTION, 0, 0, 0, 0);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn globals_defaults_table() {
    common::require_bpf();
    let pkg = corpus_package("globals");
    let done = trace(&[&pkg, "--target_tgid", &pid()], globals_trigger);
    assert!(
        done.stderr.contains("1 programs attached"),
        "{}",
        done.stderr
    );
    let mut header = vec!["TIME".to_string(), "ORIGIN".to_string()];
    header.extend(GLOBAL_FIELDS.iter().map(|f| f.to_ascii_uppercase()));
    assert_eq!(table_headers(&done.stdout), vec![header]);
    let rows = table_rows(&done.stdout);
    assert_eq!(rows.len(), 1, "{}", done.stdout);
    let defaults = globals_defaults();
    let mut expected = vec!["ORIGIN_ECHO".to_string()];
    expected.extend(GLOBAL_FIELDS.iter().map(|f| match &defaults[f] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }));
    assert_eq!(rows[0][1..], expected[..]);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn globals_defaults_json() {
    common::require_bpf();
    let pkg = corpus_package("globals");
    let done = trace(
        &[&pkg, "--target_tgid", &pid(), "-o", "json"],
        globals_trigger,
    );
    assert_eq!(json_events(&done.stdout), vec![globals_defaults()]);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn globals_round_trip_json() {
    common::require_bpf();
    let pkg = corpus_package("globals");
    let (flags, expected) = globals_set();
    let pid = pid();
    let mut args = vec![pkg.as_str(), "--target_tgid", &pid, "-o", "json"];
    args.extend(flags.iter().map(String::as_str));
    let done = trace(&args, globals_trigger);
    assert!(
        done.stderr.contains("1 programs attached"),
        "{}",
        done.stderr
    );
    assert_eq!(json_events(&done.stdout), vec![expected]);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn globals_round_trip_table() {
    common::require_bpf();
    let pkg = corpus_package("globals");
    let (flags, expected) = globals_set();
    let pid = pid();
    let mut args = vec![pkg.as_str(), "--target_tgid", &pid];
    let flags: Vec<String> = flags
        .into_iter()
        .filter(|f| !f.starts_with("--greeting"))
        .collect();
    args.extend(flags.iter().map(String::as_str));
    args.push("--greeting=hi");
    let done = trace(&args, globals_trigger);
    let rows = table_rows(&done.stdout);
    assert_eq!(rows.len(), 1, "{}", done.stdout);
    let mut cells = vec!["ORIGIN_IDLE".to_string()];
    cells.extend(GLOBAL_FIELDS.iter().map(|f| match (*f, &expected[f]) {
        ("greeting", _) => "hi".to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }));
    assert_eq!(rows[0][1..], cells[..]);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn globals_out_of_range_is_usage_error() {
    common::require_bpf();
    let pkg = corpus_package("globals");
    let bad = [
        ("--small=128", "out of range"),
        ("--small=-129", "out of range"),
        ("--byte=256", "out of range"),
        ("--byte=-1", "out of range"),
        ("--short_val=32768", "out of range"),
        ("--short_val=-32769", "out of range"),
        ("--ushort_val=65536", "out of range"),
        ("--int_val=2147483648", "out of range"),
        ("--int_val=-2147483649", "out of range"),
        ("--uint_val=4294967296", "out of range"),
        ("--uint_val=-1", "out of range"),
        ("--long_val=9223372036854775808", "out of range"),
        ("--long_val=-9223372036854775809", "out of range"),
        ("--ulong_val=18446744073709551616", "out of range"),
        ("--ulong_val=-1", "out of range"),
        ("--hops=256", "out of range"),
        ("--counter=x", "expected an integer"),
        (
            "--level=LEVEL_NONE",
            "expected one of LEVEL_LOW, LEVEL_MID, LEVEL_HIGH or a number",
        ),
        ("--bss_level=4294967296", "out of range"),
        ("--label=abcdefghijklmnop", "at most 15 bytes fit (got 16)"),
        (
            "--greeting=0123456789abcdef",
            "at most 15 bytes fit (got 16)",
        ),
        ("--strict=maybe", "expected true or false"),
        ("--anchor=0", "unexpected argument"),
        ("--window=1", "unexpected argument"),
        ("--weights=1", "unexpected argument"),
    ];
    for (flag, why) in bad {
        let done = run_runner(&["run", &pkg, flag]);
        assert_eq!(done.status.code(), Some(2), "{flag}: {}", done.stderr);
        assert!(
            done.stderr.contains(why),
            "{flag}: expected {why:?} in:\n{}",
            done.stderr
        );
        assert!(done.stdout.is_empty(), "{flag}: {}", done.stdout);
    }
}

/// A negative number is a value, not an option: `--small -128` must work as `--small=-128`.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn globals_negative_value_as_separate_argument() {
    common::require_bpf();
    let pkg = corpus_package("globals");
    let done = run_runner(&[
        "run",
        &pkg,
        "--small",
        "-128",
        "--long_val",
        "-1",
        "--duration",
        "0",
    ]);
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn globals_help_lists_every_flag() {
    common::require_bpf();
    let pkg = corpus_package("globals");
    let done = run_runner(&["run", &pkg, "--help"]);
    assert!(done.status.success(), "{}", done.stderr);
    // Help is wrapped to the terminal; compare with whitespace collapsed.
    let help = done.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in [
        "--target_tgid <UINT> only calls made by this process (0: any) [__u32, default 0]",
        "--small <INT> a signed byte [__s8, default -5]",
        "--byte <UINT> an unsigned byte [__u8, default 200]",
        "--short_val <INT> a signed 16-bit value [__s16, default -300]",
        "--ushort_val <UINT> an unsigned 16-bit value [__u16, default 60000]",
        "--int_val <INT> a signed 32-bit value [__s32, default -70000]",
        "--uint_val <UINT> an unsigned 32-bit value [__u32, default 4000000000]",
        "--long_val <INT> a signed 64-bit value [__s64, default -5000000000]",
        "--ulong_val <UINT> an unsigned 64-bit value [__u64, default 10000000000000000000]",
        "--level <NAME|INT> how loud to be [enum level; enum: LEVEL_LOW|LEVEL_MID|LEVEL_HIGH, default \"LEVEL_MID\"]",
        "--label <STRING> a name to echo [char[16], default \"corpus\"]",
        "--strict[=<BOOL>] a read-only bool, false unless set [bool, default false]",
        "--enabled[=<BOOL>] echo (true) or idle (false): which program is attached [bool, default true]",
        "--budget <UINT> a writable 64-bit value [__u64, default 1000]",
        "--greeting <STRING> a writable string [char[16], default \"hello\"]",
        "--hops <UINT> a zero-initialized byte [__u8, default 0]",
        "--bss_level <NAME|INT> a zero-initialized enum [enum level; enum: LEVEL_LOW|LEVEL_MID|LEVEL_HIGH, default 0]",
        "--counter <UINT> a zero-initialized 64-bit value [__u64, default 0]",
    ] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{}", done.stdout);
    }
    for none in ["--anchor", "--window", "--weights"] {
        assert!(
            !help.contains(none),
            "--help lists {none}:\n{}",
            done.stdout
        );
    }
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn globals_info_says_why_no_flag() {
    common::require_bpf();
    let pkg = corpus_package("globals");
    let done = run_runner(&["info", &pkg]);
    assert!(done.status.success(), "{}", done.stderr);
    for why in [
        "anchor: pointers cannot be set from the command line",
        "window: structs cannot be set from the command line",
        "weights: arrays other than char[N] cannot be set from the command line",
    ] {
        assert!(
            done.stdout.contains(why),
            "info lacks {why:?}:\n{}",
            done.stdout
        );
    }
    // Sections and conditions are shown too.
    for shown in [
        ".rodata+4 (1 bytes)",
        ".data+0 (1 bytes)",
        ".bss+0 (1 bytes)",
        "(only when enabled = true)",
        "(only when enabled = false)",
    ] {
        assert!(
            done.stdout.contains(shown),
            "info lacks {shown:?}:\n{}",
            done.stdout
        );
    }
}

// ---------------------------------------------------------------------------------------
// noprobe: kprobe and fentry pack fine, but this kernel cannot run them.

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn noprobe_packs_but_fails_in_one_line() {
    common::require_bpf();
    let pkg = corpus_package("noprobe");
    let info = run_runner(&["info", &pkg]);
    assert!(info.status.success(), "{}", info.stderr);
    let programs: Vec<String> = info
        .stdout
        .lines()
        .skip_while(|l| *l != "Programs:")
        .skip(1)
        .map(|l| common::cells(l).join(" ").to_ascii_lowercase())
        .collect();
    for program in [
        "nanosleep_kprobe kprobe do_nanosleep (only when use_fentry = false)",
        "nanosleep_fentry fentry do_nanosleep (only when use_fentry = true)",
    ] {
        assert!(
            programs.iter().any(|p| p == program),
            "no {program:?} in:\n{}",
            info.stdout
        );
    }

    for (flags, program, kind) in [
        (&[][..], "nanosleep_kprobe", "kprobe"),
        (&["--use-fentry"][..], "nanosleep_fentry", "fentry"),
    ] {
        let mut args = vec!["run", pkg.as_str(), "--duration", "1"];
        args.extend(flags);
        let done = run_runner(&args);
        // Kernels with kprobes (or trampolines) run it; this test is about those without.
        if done.status.success() {
            eprintln!("NOTE: this kernel runs {kind} programs; nothing to check");
            continue;
        }
        assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
        let lines: Vec<&str> = done
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{kind}: expected one line, got:\n{}",
            done.stderr
        );
        let line = lines[0];
        assert!(line.starts_with("runner: error: "), "{line}");
        assert!(
            line.contains(program) && line.contains("do_nanosleep"),
            "{line}"
        );
        assert!(line.to_ascii_lowercase().contains(kind), "{line}");
    }
}
