//! End-to-end tests of what a program's front end decides, found by the runner or declared
//! in a sidecar, over the corpus programs `twins` (a tp_btf and a raw_tp twin), `sized` (a
//! map with no size, a `const` without `volatile`), `declared` (everything a sidecar
//! declares) and `kfunc` (a kfunc the source never declares). Each test builds its program
//! with `runner build`, runs it with `runner run -o json`, triggers it itself and asserts
//! the exact events and the exact lines on stderr.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON), clang and bpftool: the tests are `#[ignore]`d and
//! `scripts/test` runs them (see `common::require_bpf`). This kernel has neither fentry
//! nor kprobes, so the tests also check the fallbacks chosen for them.

mod common;

use std::ffi::CString;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{corpus_package, one_at_a_time, run_runner, Finished};
use serde_json::{json, Value};

const SIZED_OPTION: u64 = 0x525a_0001;
const DECLARED_OPTION: u64 = 0x5244_0001;
const KFUNC_OPTION: u64 = 0x524b_0001;

fn pid() -> String {
    std::process::id().to_string()
}

/// Run `runner run <args> -o json`, `trigger` once attached; the run must end cleanly.
fn trace(args: &[&str], trigger: impl FnOnce()) -> (Vec<Value>, Finished) {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let done = common::trace(&all, trigger);
    (common::json_events(&done.stdout, |_| {}), done)
}

/// The lines of stderr before the "attached" line: what the runner chose and why.
fn notes(done: &Finished) -> Vec<&str> {
    done.stderr
        .lines()
        .take_while(|l| !l.contains("attached; tracing"))
        .collect()
}

/// Run `body` on a new thread named `comm`.
fn on_thread<T: Send + 'static>(comm: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let comm = CString::new(comm).unwrap();
    std::thread::spawn(move || {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        let rc = unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0) };
        assert_eq!(rc, 0);
        body()
    })
    .join()
    .unwrap()
}

fn prctl(option: u64, value: u64) {
    common::prctl(option, value, 0, 0, 0);
}

fn nanosleep() {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1000,
    };
    // SAFETY: `ts` is valid for the call; the remainder is not asked for.
    unsafe {
        libc::syscall(
            libc::SYS_clock_nanosleep,
            libc::CLOCK_MONOTONIC,
            0,
            &ts,
            std::ptr::null_mut::<libc::timespec>(),
        )
    };
}

// ---------------------------------------------------------------------------------------
// twins: tp_btf/task_rename and raw_tp/task_rename, grouped by the packer.

const RENAMES: [&str; 3] = ["twins-0", "twins-1", "twins-2"];

fn rename_thread() -> u32 {
    on_thread("twins-start", || {
        for name in RENAMES {
            let name = CString::new(name).unwrap();
            // SAFETY: as in `on_thread`.
            unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
        }
        // SAFETY: gettid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_gettid) as u32 }
    })
}

fn renames(tid: u32, via: &str) -> Vec<Value> {
    RENAMES
        .iter()
        .map(|name| json!({"tid": tid, "via": via, "comm": name}))
        .collect()
}

/// Both twins are in the object; exactly one is loaded, the BTF one, so every rename is
/// seen once.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn twins_exactly_one_runs_the_best() {
    common::require_bpf();
    let pkg = corpus_package("twins");
    let mut tid = 0;
    let (events, done) = trace(&[&pkg, "--target_tgid", &pid()], || tid = rename_thread());
    let starts = json!({"tid": tid, "via": "VIA_TP_BTF", "comm": "twins-start"});
    let mut expected = vec![starts];
    expected.extend(renames(tid, "VIA_TP_BTF"));
    assert_eq!(events, expected, "{}", done.stderr);
    assert!(notes(&done).is_empty(), "{}", done.stderr);
    assert!(
        done.stderr.contains("twins: 1 programs attached"),
        "{}",
        done.stderr
    );
}

/// With the best one left out (`--no-program`), the fallback runs, and only it.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn twins_without_the_best_the_fallback_runs() {
    common::require_bpf();
    let pkg = corpus_package("twins");
    let mut tid = 0;
    let (events, done) = trace(
        &[&pkg, "--target_tgid", &pid(), "--no-program", "rename_btf"],
        || tid = rename_thread(),
    );
    let mut expected = vec![json!({"tid": tid, "via": "VIA_RAW_TP", "comm": "twins-start"})];
    expected.extend(renames(tid, "VIA_RAW_TP"));
    assert_eq!(events, expected, "{}", done.stderr);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn twins_info_and_bad_no_program() {
    common::require_bpf();
    let pkg = corpus_package("twins");
    let info = run_runner(&["info", &pkg]);
    assert!(info.status.success(), "{}", info.stderr);
    assert!(
        info.stdout.contains("Alternatives (of each group one loads: the first this kernel supports):\n  rename_btf | rename_raw  (the same event)"),
        "{}",
        info.stdout
    );
    let done = run_runner(&["run", &pkg, "--no-program", "rename_typo"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert_eq!(
        done.stderr.trim_end(),
        "error: --no-program names `rename_typo`, which this package does not have (programs: rename_raw, rename_btf)"
    );
}

// ---------------------------------------------------------------------------------------
// sized: a map with no max_entries, and a const without volatile.

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sized_map_needs_a_size_and_gets_exactly_it() {
    common::require_bpf();
    let pkg = corpus_package("sized");
    let done = run_runner(&["run", &pkg, "--duration", "1"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert_eq!(
        done.stderr.trim_end(),
        "error: map `seen` has no size (the object leaves max_entries to userspace): pass --map-size seen=ENTRIES"
    );
    let (events, done) = trace(
        &[&pkg, "--target_tgid", &pid(), "--map-size", "seen=4"],
        || {
            for key in 1..=6 {
                prctl(SIZED_OPTION, key);
            }
        },
    );
    let expected: Vec<Value> = (1..=6)
        .map(|key| json!({"key": key, "ret": if key <= 4 { 0 } else { -7 }, "folded": 7}))
        .collect();
    assert_eq!(
        events, expected,
        "E2BIG once 4 keys are in: {}",
        done.stderr
    );
}

/// `folded` is no flag, `runner info` says why, and passing it is a usage error.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sized_const_without_volatile_is_no_flag() {
    common::require_bpf();
    let pkg = corpus_package("sized");
    let info = run_runner(&["info", &pkg]);
    assert!(info.status.success(), "{}", info.stderr);
    assert!(
        info.stdout.contains("folded: a `const` without `volatile`: clang folded its value into the code, so a flag could not change what the program does (declare it `const volatile` to make it one)"),
        "{}",
        info.stdout
    );
    let done = run_runner(&["run", &pkg, "--map-size", "seen=4", "--folded", "3"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr
            .starts_with("error: unexpected argument '--folded'"),
        "{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------------------
// declared: everything its sidecar declares.

/// The stderr lines of every run of `declared` on a kernel without fentry and kprobes: the
/// fallback of the group, the optional programs whose hook is missing, then the optional
/// programs that fail to load and to attach.
const DECLARED_NOTES: [&str; 5] = [
    "runner: program `sleep_fentry` (fentry do_nanosleep) cannot attach here (this kernel cannot load a fentry hook program (Operation not permitted (os error 1))); using its alternative `sleep_tp` (tracepoint syscalls/sys_enter_clock_nanosleep)",
    "runner: skipping optional program `never_kprobe` (kprobe hrtimer_nanosleep): this kernel has no kprobes (no kprobe PMU, no kprobe_events)",
    "runner: skipping optional program `never_tp` (tracepoint syscalls/sys_enter_no_such_call): no tracepoint syscalls/sys_enter_no_such_call on this kernel",
    "runner: optional program `rejected` (tracepoint syscalls/sys_enter_getppid) failed (the verifier rejected it: R1 invalid mem access 'scalar'); leaving it out",
    "runner: optional program `lost_uprobe` (uprobe /nonexistent/runner-test-binary:main) failed (failed to attach program `lost_uprobe` to uprobe /nonexistent/runner-test-binary:main: elf: failed to open /nonexistent/runner-test-binary: -ENOENT); leaving it out",
];

const VALUES: [u64; 5] = [50, 150, 200, 300, 400];

/// The events of the threads named `declared-*` (the test's own threads sleep too).
fn of_declared_threads(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .filter(|e| {
            e["comm"]
                .as_str()
                .is_some_and(|c| c.starts_with("declared-"))
        })
        .collect()
}

/// From a thread named `comm`: prctl with each of VALUES, then two sleeps.
fn declared_calls(comm: &'static str) {
    on_thread(comm, || {
        for value in VALUES {
            prctl(DECLARED_OPTION, value);
        }
        nanosleep();
        nanosleep();
    });
}

fn prctl_event(value: u64, by: &str, ret: i32, comm: &str) -> Value {
    json!({"value": value, "by": by, "ret": ret, "comm": comm})
}

fn sleep_event(comm: &str) -> Value {
    json!({"value": 0, "by": "SLEEP_TRACEPOINT", "ret": 0, "comm": comm})
}

/// By default: the package's default min_value (100, compiled 0) drops 50; the map holds
/// the 3 entries the sidecar gives it, so the fourth insert fails; sleeps are seen by the
/// tracepoint, the fentry alternative being impossible here; the optional programs are
/// left out, each with its line.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn declared_defaults_sizes_alternatives_and_optional_programs() {
    common::require_bpf();
    let pkg = corpus_package("declared");
    let (events, done) = trace(&[&pkg, "--target_tgid", &pid()], || {
        declared_calls("declared-a")
    });
    let events = of_declared_threads(events);
    let mut expected: Vec<Value> = [150, 200, 300]
        .iter()
        .map(|&v| prctl_event(v, "PRCTL_TRACEPOINT", 0, "declared-a"))
        .collect();
    expected.push(prctl_event(400, "PRCTL_TRACEPOINT", -7, "declared-a"));
    expected.extend([sleep_event("declared-a"), sleep_event("declared-a")]);
    assert_eq!(events, expected, "{}", done.stderr);
    assert_eq!(notes(&done), DECLARED_NOTES, "{}", done.stderr);
    assert!(
        done.stderr.contains("declared: 2 programs attached"),
        "{}",
        done.stderr
    );
}

/// Flags given win over the package's default and over the sidecar's map size.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn declared_flags_win_over_declarations() {
    common::require_bpf();
    let pkg = corpus_package("declared");
    let args = [
        &pkg,
        "--target_tgid",
        &pid(),
        "--min_value",
        "0",
        "--map-size",
        "values=5",
    ];
    let (events, done) = trace(&args, || declared_calls("declared-a"));
    let events = of_declared_threads(events);
    let mut expected: Vec<Value> = VALUES
        .iter()
        .map(|&v| prctl_event(v, "PRCTL_TRACEPOINT", 0, "declared-a"))
        .collect();
    expected.extend([sleep_event("declared-a"), sleep_event("declared-a")]);
    assert_eq!(events, expected, "{}", done.stderr);
}

/// The switch (no global behind it) loads the raw-tracepoint program instead.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn declared_switch_chooses_programs() {
    common::require_bpf();
    let pkg = corpus_package("declared");
    let (events, done) = trace(&[&pkg, "--target_tgid", &pid(), "--raw_mode"], || {
        declared_calls("declared-a")
    });
    let events = of_declared_threads(events);
    let by: Vec<(&str, u64)> = events
        .iter()
        .map(|e| (e["by"].as_str().unwrap(), e["value"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        by,
        [
            ("PRCTL_RAW", 150),
            ("PRCTL_RAW", 200),
            ("PRCTL_RAW", 300),
            ("PRCTL_RAW", 400),
            ("SLEEP_TRACEPOINT", 0),
            ("SLEEP_TRACEPOINT", 0)
        ],
        "{}",
        done.stderr
    );
}

/// `--targ_comm` implies the hidden `filter_comm`: only the named thread's calls.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn declared_implied_global_filters() {
    common::require_bpf();
    let pkg = corpus_package("declared");
    let (events, done) = trace(
        &[&pkg, "--target_tgid", &pid(), "--targ_comm", "declared-b"],
        || {
            declared_calls("declared-a");
            declared_calls("declared-b");
        },
    );
    assert!(!events.is_empty(), "{}", done.stderr);
    assert!(
        events.iter().all(|e| e["comm"] == "declared-b"),
        "{events:?}"
    );
    assert_eq!(events.len(), 6, "{events:?}");
    let hidden = run_runner(&["run", &pkg, "--filter_comm"]);
    assert_eq!(hidden.status.code(), Some(2), "{}", hidden.stderr);
}

/// `--no-program` leaves a program out at run time.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn declared_no_program_leaves_it_out() {
    common::require_bpf();
    let pkg = corpus_package("declared");
    let (events, done) = trace(
        &[&pkg, "--target_tgid", &pid(), "--no-program", "on_prctl"],
        || declared_calls("declared-a"),
    );
    assert_eq!(
        of_declared_threads(events),
        [sleep_event("declared-a"), sleep_event("declared-a")],
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("declared: 1 programs attached"),
        "{}",
        done.stderr
    );
}

/// Without the fallback, the group has nothing that can attach here: one line, exit 1.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn declared_group_without_a_usable_member_is_one_error() {
    common::require_bpf();
    let pkg = corpus_package("declared");
    let done = run_runner(&["run", &pkg, "--no-program", "sleep_tp", "--duration", "1"]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let last = done.stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "runner: error: no program of the group sleep_fentry | sleep_tp can attach on this kernel: `sleep_fentry` (fentry do_nanosleep): this kernel cannot load a fentry hook program (Operation not permitted (os error 1))"
    );
}

/// `runner info` shows the switch, the defaults, the implied global, the groups, the
/// conditions, the optional programs and the map's size and view.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn declared_info_shows_the_declarations() {
    common::require_bpf();
    let pkg = corpus_package("declared");
    let info = run_runner(&["info", &pkg]);
    assert!(info.status.success(), "{}", info.stderr);
    for line in [
        "declared: prctl(DECLARED_OPTION, value) and clock_nanosleep() calls, with its front end's choices declared in this sidecar",
        "  --min_value          __u64 (u64), default 100 (the package's; compiled 0), .rodata+8 (8 bytes)",
        "                       also sets filter_comm = true",
        "                       filter_comm: set by --targ_comm",
        "Switches (flags with no global, for program conditions):",
        "  --raw_mode           trace prctl through the raw sys_enter tracepoint",
        "  values           hash                    8      4          0  table",
        "                   sized at run time: 3",
        "  on_raw           raw_tracepoint sys_enter  (only when raw_mode = true)",
        "  never_tp         tracepoint syscalls/sys_enter_no_such_call  (optional: left out if it cannot load or attach)",
        "  sleep_fentry | sleep_tp  (declared)",
    ] {
        assert!(info.stdout.lines().any(|l| l == line), "no line {line:?} in\n{}", info.stdout);
    }
}

// ---------------------------------------------------------------------------------------
// kfunc: bpf_task_from_pid, declared by the generated vmlinux.h only.

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn kfunc_finds_a_task_by_pid() {
    common::require_bpf();
    let pkg = corpus_package("kfunc");
    let mut child = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let sleeping = child.id();
    let (events, done) = trace(&[&pkg, "--target_tgid", &pid()], || {
        prctl(KFUNC_OPTION, sleeping.into());
        prctl(KFUNC_OPTION, 4_194_305); // above any pid_max
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        events,
        [
            json!({"looked_up": sleeping, "found": 1, "comm": "sleep"}),
            json!({"looked_up": 4_194_305, "found": 0, "comm": ""}),
        ],
        "{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------------------
// A uprobe whose section names no binary, with targets from a sidecar.

/// `runner build` the readline fixture (`uretprobe/readline`) with a sidecar giving
/// `targets`; returns the package path and its directory.
fn readline_with_targets(targets: &[&str]) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build/readline.bpf.c");
    let source = dir.path().join("readline.bpf.c");
    std::fs::copy(fixture, &source).unwrap();
    let sidecar = json!({"programs": {"attach": {"printret": targets}}});
    std::fs::write(dir.path().join("readline.runner.json"), sidecar.to_string()).unwrap();
    let out = dir.path().join("readline.json");
    let done = run_runner(&[
        "build",
        source.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    (out.to_str().unwrap().to_string(), dir)
}

/// The targets are tried in order: a missing binary, then bash's readline, which attaches.
/// When none attaches, the error is the last target's, in one line.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn uprobe_targets_are_tried_in_order() {
    common::require_bpf();
    let (pkg, _dir) = readline_with_targets(&["/nonexistent/bash:readline", "/bin/bash:readline"]);
    let _one = one_at_a_time();
    let done = run_runner(&["run", &pkg, "--duration", "0.5"]);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains("readline: 1 programs attached"),
        "{}",
        done.stderr
    );

    let (pkg, _dir) =
        readline_with_targets(&["/nonexistent/bash:readline", "/bin/bash:no_such_function"]);
    let done = run_runner(&["run", &pkg, "--duration", "0.5"]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", done.stderr);
    assert!(
        lines[0].starts_with("runner: error: failed to attach program `printret` to uretprobe /bin/bash:no_such_function"),
        "{}",
        lines[0]
    );
}
