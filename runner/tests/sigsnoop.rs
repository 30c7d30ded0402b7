//! End-to-end tests of the committed sigsnoop package, run the way a user runs it.
//!
//! A helper process (`sigpoke`, C, compiled with `cc` at test time) with a known pid sends
//! a scripted set of signals through kill(2), tkill(2) and tgkill(2), and one of its own
//! children exits so the kernel sends it a SIGCHLD. It waits on stdin before acting, so a
//! tracer can be started first (even one filtered on the helper's pid), and it exits only
//! after the tracers stopped. Every row the helper causes is checked field by field, in
//! the table, in JSON lines and in CSV. Other processes signal too while tests run in
//! parallel, so assertions only look at rows sent by the helper or its child.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Finished, Tracer};

/// Safety net: a tracer left behind by a failing test stops by itself.
const MAX_RUN: &str = "30";

/// The helper. Its comm is its file name, `sigpoke`; its forked child renames itself
/// `sigpoke-child`. Argument: a pid that cannot exist (above pid_max); kill, tkill and
/// tgkill are each aimed at a different one of `bad`, `bad + 1`, `bad + 2`.
const SIGPOKE_C: &str = r#"
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t thread_tid;

static void *idle_thread(void *arg)
{
	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pid_t self = getpid(), child;
	pid_t bad = argc > 1 ? (pid_t)atoi(argv[1]) : 0;
	pthread_t thread;
	char line[64];
	int status;

	sigset_t none;

	/* Whatever we inherited: default actions and nothing blocked, so SIGUSR1 kills
	 * the child and signal_generate reports its SIGCHLD to us as ignored (1). */
	signal(SIGUSR1, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGURG, SIG_DFL);
	signal(SIGWINCH, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own process group, so kill(-self, 0) reaches nobody else. */
	setpgid(0, 0);
	child = fork();
	if (child == 0) {
		prctl(PR_SET_NAME, "sigpoke-child");
		for (;;)
			pause();
	}
	pthread_create(&thread, NULL, idle_thread, NULL);
	while (!thread_tid)
		usleep(1000);
	printf("pid=%d child=%d thread=%d\n", self, child, thread_tid);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;

	kill(child, 0);
	kill(child, SIGUSR1);             /* kills the child: it sends us SIGCHLD */
	waitpid(child, &status, 0);
	kill(bad, 0);                     /* ESRCH */
	kill(-self, 0);                   /* our process group */
	syscall(SYS_tkill, thread_tid, SIGURG);
	syscall(SYS_tkill, bad + 1, 0);   /* ESRCH */
	syscall(SYS_tgkill, self, thread_tid, SIGWINCH);
	syscall(SYS_tgkill, self, bad + 2, 0); /* ESRCH */

	printf("done\n");
	fflush(stdout);
	/* Exit only when stdin closes, after the tracers stopped. */
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
"#;

const SIGCHLD: i64 = libc::SIGCHLD as i64;
const SIGUSR1: i64 = libc::SIGUSR1 as i64;
const SIGURG: i64 = libc::SIGURG as i64;
const SIGWINCH: i64 = libc::SIGWINCH as i64;
const ESRCH: i64 = -(libc::ESRCH as i64);

/// One program per syscall exit (the arguments come from the saved registers), and
/// signal_generate.
const PROGRAMS: [&str; 4] = ["sig_trace", "kill_exit", "tkill_exit", "tgkill_exit"];

/// A pid that cannot exist: above /proc/sys/kernel/pid_max.
fn impossible_pid() -> i64 {
    let max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    max + 1
}

/// What a helper told us about itself.
#[derive(Debug, Clone, Copy)]
struct Facts {
    pid: i64,
    child: i64,
    thread: i64,
    bad: i64,
}

/// A running helper, waiting for "go".
struct Poke {
    process: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    facts: Facts,
}

impl Poke {
    fn spawn() -> Poke {
        let bad = impossible_pid();
        let mut process = Command::new(common::c_helper("sigpoke", SIGPOKE_C))
            .arg(bad.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sigpoke");
        let stdin = process.stdin.take();
        let mut stdout = BufReader::new(process.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let field = |key: &str| -> i64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("sigpoke said {line:?}"))
                .parse()
                .unwrap()
        };
        let facts = Facts {
            pid: field("pid"),
            child: field("child"),
            thread: field("thread"),
            bad,
        };
        assert_eq!(facts.pid, i64::from(process.id()));
        Poke {
            process,
            stdin,
            stdout,
            facts,
        }
    }

    /// Send the signals; returns once all were sent.
    fn go(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "done\n");
    }

    /// Let it exit (call after the tracers stopped).
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = common::wait_timeout(&mut self.process, Duration::from_secs(10));
        assert!(status.success(), "sigpoke: {status}");
    }
}

impl Drop for Poke {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            // Its own process group: this also reaches its forked child.
            // SAFETY: kill(2) has no memory preconditions.
            unsafe { libc::kill(-(self.facts.pid as i32), libc::SIGKILL) };
            let _ = self.process.wait();
        }
    }
}

/// One decoded event, as any of the three formats shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    pid: i64,
    tpid: i64,
    sig: i64,
    ret: i64,
    comm: String,
}

fn row(pid: i64, tpid: i64, sig: i64, ret: i64, comm: &str) -> Row {
    Row {
        pid,
        tpid,
        sig,
        ret,
        comm: comm.into(),
    }
}

/// Every row one helper run must produce in the default mode, in the order sent. The
/// child's SIGCHLD comes from signal/signal_generate: sender = the exiting child, target =
/// the helper, result 1 (TRACE_SIGNAL_IGNORED: the helper leaves SIGCHLD at SIG_DFL).
fn expected(f: &Facts) -> Vec<Row> {
    vec![
        row(f.pid, f.child, 0, 0, "sigpoke"),
        row(f.pid, f.child, SIGUSR1, 0, "sigpoke"),
        row(f.child, f.pid, SIGCHLD, 1, "sigpoke-child"),
        row(f.pid, f.bad, 0, ESRCH, "sigpoke"),
        row(f.pid, -f.pid, 0, 0, "sigpoke"),
        row(f.pid, f.thread, SIGURG, 0, "sigpoke"),
        row(f.pid, f.bad + 1, 0, ESRCH, "sigpoke"),
        row(f.pid, f.thread, SIGWINCH, 0, "sigpoke"),
        row(f.pid, f.bad + 2, 0, ESRCH, "sigpoke"),
    ]
}

/// The rows sent by the helper or by its child.
fn rows_of(rows: &[Row], f: &Facts) -> Vec<Row> {
    rows.iter()
        .filter(|r| r.pid == f.pid || r.pid == f.child)
        .cloned()
        .collect()
}

/// Compare as multisets (the child's SIGCHLD may be reserved in the ring buffer before
/// the helper's kill(2) returns), and the helper's own rows also in the order sent.
fn assert_rows(seen: &[Row], want: &[Row], f: &Facts, output: &str) {
    let mut a = seen.to_vec();
    let mut b = want.to_vec();
    a.sort();
    b.sort();
    assert_eq!(a, b, "rows of sigpoke {}; whole output:\n{output}", f.pid);
    let own = |rows: &[Row]| {
        rows.iter()
            .filter(|r| r.pid == f.pid)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        own(seen),
        own(want),
        "order of the rows of sigpoke {}",
        f.pid
    );
}

fn is_hms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 8
        && b[2] == b':'
        && b[5] == b':'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 2 || i == 5 || c.is_ascii_digit())
        && s[..2].parse::<u8>().unwrap() < 24
        && s[3..5].parse::<u8>().unwrap() < 60
        && s[6..].parse::<u8>().unwrap() < 61
}

/// `2026-11-22T10:25:29.123456+01:00`
fn is_rfc3339_micros(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() == 32
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && is_hms(&s[11..19])
        && b[19] == b'.'
        && digits(20..26)
        && (b[26] == b'+' || b[26] == b'-')
        && digits(27..29)
        && b[29] == b':'
        && digits(30..32)
}

/// Parse the table: the exact header, then `HH:MM:SS PID TPID SIG RET COMM` rows.
fn table_rows(out: &str) -> Vec<Row> {
    let mut lines = out.lines();
    let header = lines.next().expect("a header line");
    assert_eq!(
        common::cells(header),
        ["TIME", "PID", "TPID", "SIG", "RET", "COMM"],
        "header {header:?}"
    );
    lines
        .map(|line| {
            let cells = common::cells(line);
            // A process may have an empty comm.
            assert!(cells.len() >= 5, "short row {line:?}");
            assert!(
                common::is_time_of_day(cells[0]),
                "TIME {:?} in {line:?}",
                cells[0]
            );
            let n = |i: usize| -> i64 {
                cells[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("column {i} of {line:?} is not a number"))
            };
            row(n(1), n(2), n(3), n(4), &cells[5..].join(" "))
        })
        .collect()
}

/// Parse JSON lines: one object per line, keys in this order, numbers as numbers.
fn json_rows(out: &str) -> Vec<Row> {
    out.lines()
        .map(|line| {
            let v = common::json_line(line);
            let obj = v
                .as_object()
                .unwrap_or_else(|| panic!("not an object: {line:?}"));
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["@time", "pid", "tpid", "sig", "ret", "comm"],
                "{line}"
            );
            let time = obj["@time"].as_str().unwrap();
            assert!(is_rfc3339_micros(time), "time {time:?}");
            let n = |k: &str| {
                obj[k]
                    .as_i64()
                    .unwrap_or_else(|| panic!("{k} is not an integer in {line}"))
            };
            row(
                n("pid"),
                n("tpid"),
                n("sig"),
                n("ret"),
                obj["comm"].as_str().unwrap(),
            )
        })
        .collect()
}

/// Parse CSV: header `@time,pid,tpid,sig,ret,comm`, then one record per line.
fn csv_rows(out: &str) -> Vec<Row> {
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("@time,pid,tpid,sig,ret,comm"));
    lines
        .map(|line| {
            // A comm with a comma or a quote would be quoted; none of ours has one.
            let cells: Vec<&str> = line.splitn(6, ',').collect();
            assert_eq!(cells.len(), 6, "{line:?}");
            assert!(common::is_time_of_day(cells[0]), "time {:?}", cells[0]);
            let n = |i: usize| -> i64 { cells[i].parse().unwrap_or_else(|_| panic!("{line:?}")) };
            row(n(1), n(2), n(3), n(4), cells[5])
        })
        .collect()
}

fn start(args: &[String]) -> Tracer {
    start_package(&common::sigsnoop_package(), args)
}

fn start_package(pkg: &std::path::Path, args: &[String]) -> Tracer {
    let mut all = vec![pkg.to_str().unwrap().to_string()];
    all.extend(args.iter().cloned());
    all.extend(["--duration".to_string(), MAX_RUN.to_string()]);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    Tracer::start(&refs)
}

fn stopped(tracer: Tracer) -> Finished {
    let done = tracer.stop();
    assert!(
        done.status.success(),
        "runner: {}\n{}",
        done.status,
        done.stderr
    );
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    done
}

/// Run `helpers` helpers while an unfiltered tracer (the control) and a tracer with
/// `flags` watch. The control must see every helper's full set of rows, so whatever the
/// filtered tracer leaves out was really sent. Returns the helpers' facts and the filtered
/// tracer's table.
fn watch(helpers: usize, flags: impl Fn(&[Facts]) -> Vec<String>) -> (Vec<Facts>, Finished) {
    let mut pokes: Vec<Poke> = (0..helpers).map(|_| Poke::spawn()).collect();
    let facts: Vec<Facts> = pokes.iter().map(|p| p.facts).collect();
    let control = start(&[]);
    let tracer = start(&flags(&facts));
    for poke in &mut pokes {
        poke.go();
    }
    let control = stopped(control);
    let filtered = stopped(tracer);
    for poke in pokes {
        poke.finish();
    }
    let all = table_rows(&control.stdout);
    for f in &facts {
        assert_rows(&rows_of(&all, f), &expected(f), f, &control.stdout);
    }
    (facts, filtered)
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn table_shows_every_signal_once_with_exact_fields() {
    common::require_bpf();
    let mut poke = Poke::spawn();
    let tracer = start(&[]);
    poke.go();
    let done = stopped(tracer);
    let f = poke.facts;
    poke.finish();
    let rows = rows_of(&table_rows(&done.stdout), &f);
    assert_rows(&rows, &expected(&f), &f, &done.stdout);
    // Reported once, at syscall exit: not a second time from signal_generate.
    let usr1 = rows.iter().filter(|r| r.sig == SIGUSR1).count();
    assert_eq!(
        usr1, 1,
        "kill(child, SIGUSR1) must be one row:\n{}",
        done.stdout
    );
    assert!(
        done.stderr
            .contains("runner: sigsnoop: 4 programs attached; tracing, Ctrl-C to stop"),
        "{}",
        done.stderr
    );
    let last = done.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("runner: ") && last.ends_with(" lost") && last.contains(" events, "),
        "last stderr line {last:?}"
    );
}

/// The package of an earlier runner (`fixtures/compat/`), whose object traces with entry
/// and exit probes and a hash map between them: this runner still runs it, without a
/// warning, and sees exactly what the current package sees.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_package_from_an_earlier_runner_still_shows_every_signal_exactly() {
    common::require_bpf();
    let frozen = common::repo().join("runner/tests/fixtures/compat/sigsnoop-876e3f9a.json");
    let mut poke = Poke::spawn();
    let tracer = start_package(&frozen, &[]);
    poke.go();
    let done = stopped(tracer);
    let f = poke.facts;
    poke.finish();
    let rows = rows_of(&table_rows(&done.stdout), &f);
    assert_rows(&rows, &expected(&f), &f, &done.stdout);
    assert!(!done.stderr.contains("warning"), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("runner: sigsnoop: 7 programs attached; tracing, Ctrl-C to stop"),
        "{}",
        done.stderr
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn json_lines_have_exact_fields_as_numbers() {
    common::require_bpf();
    let mut poke = Poke::spawn();
    let tracer = start(&["-o".into(), "json".into()]);
    poke.go();
    let done = stopped(tracer);
    let f = poke.facts;
    poke.finish();
    let rows = rows_of(&json_rows(&done.stdout), &f);
    assert_rows(&rows, &expected(&f), &f, &done.stdout);
    // The process-group target is a negative JSON number, not 4294xxxxxx.
    let group = format!(
        "\"pid\":{},\"tpid\":-{},\"sig\":0,\"ret\":0,\"comm\":\"sigpoke\"}}",
        f.pid, f.pid
    );
    assert!(
        done.stdout.contains(&group),
        "{group} not in\n{}",
        done.stdout
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn csv_has_header_and_exact_fields() {
    common::require_bpf();
    let mut poke = Poke::spawn();
    let tracer = start(&["--output".into(), "csv".into()]);
    poke.go();
    let done = stopped(tracer);
    let f = poke.facts;
    poke.finish();
    let rows = rows_of(&csv_rows(&done.stdout), &f);
    assert_rows(&rows, &expected(&f), &f, &done.stdout);
}

/// What a name that is not one of sigpoke's reads as: no row of sigpoke can match it
/// (other processes signal too, with other signals and errors).
const OTHER: i64 = i64::MIN;

/// A signal as `--names` shows it, back to its number: only the names of the signals
/// sigpoke sends, and `N/A` for 0 (a number never matches).
fn signal_named(text: &str) -> i64 {
    match text {
        "N/A" => 0,
        "SIGUSR1" => SIGUSR1,
        "SIGCHLD" => SIGCHLD,
        "SIGURG" => SIGURG,
        "SIGWINCH" => SIGWINCH,
        _ => OTHER,
    }
}

/// A return as `--names` shows it, back to its number: a failed syscall's errno by name,
/// anything else (0, signal_generate's result) as a number (a negative number never
/// matches).
fn ret_named(text: &str) -> i64 {
    match text {
        "ESRCH" => ESRCH,
        other => other.parse().ok().filter(|n| *n >= 0).unwrap_or(OTHER),
    }
}

/// The `--names` table: `TIME PID TPID SIG RET COMM` with names.
fn named_table_rows(out: &str) -> Vec<Row> {
    let mut lines = out.lines();
    let header = lines.next().expect("a header line");
    assert_eq!(
        common::cells(header),
        ["TIME", "PID", "TPID", "SIG", "RET", "COMM"]
    );
    lines
        .map(|line| {
            let cells = common::cells(line);
            let n = |i: usize| -> i64 { cells[i].parse().unwrap() };
            row(
                n(1),
                n(2),
                signal_named(cells[3]),
                ret_named(cells[4]),
                &cells[5..].join(" "),
            )
        })
        .collect()
}

/// The `--names` JSON lines: names, and the numbers as `sig@raw` and `ret@raw`.
fn named_json_rows(out: &str) -> Vec<Row> {
    out.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["@time", "pid", "tpid", "sig", "sig@raw", "ret", "ret@raw", "comm"],
                "{line}"
            );
            let n = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {line}"));
            let sig = signal_named(v["sig"].as_str().unwrap());
            let ret = ret_named(v["ret"].as_str().unwrap());
            for (name, shown) in [("sig", sig), ("ret", ret)] {
                let raw = n(&format!("{name}@raw"));
                assert!(shown == OTHER || shown == raw, "{name}@raw {raw} in {line}");
            }
            row(n("pid"), n("tpid"), sig, ret, v["comm"].as_str().unwrap())
        })
        .collect()
}

/// The `--names` CSV: the same header as without, names in the cells.
fn named_csv_rows(out: &str) -> Vec<Row> {
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("@time,pid,tpid,sig,ret,comm"));
    lines
        .map(|line| {
            let cells: Vec<&str> = line.splitn(6, ',').collect();
            let n = |i: usize| -> i64 { cells[i].parse().unwrap() };
            row(
                n(1),
                n(2),
                signal_named(cells[3]),
                ret_named(cells[4]),
                cells[5],
            )
        })
        .collect()
}

/// `--names` (`-n`), as bcc's `sigsnoop -n`: the signals and the failed syscalls' errnos
/// by name in the table, JSON (with the numbers beside them) and CSV, every row exact.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn names_are_shown_when_asked() {
    common::require_bpf();
    let mut poke = Poke::spawn();
    let table = start(&["--names".into()]);
    let json = start(&["-n".into(), "-o".into(), "json".into()]);
    let csv = start(&["--names".into(), "-o".into(), "csv".into()]);
    poke.go();
    let (table, json, csv) = (stopped(table), stopped(json), stopped(csv));
    let f = poke.facts;
    poke.finish();
    for (out, rows) in [
        (&table.stdout, named_table_rows(&table.stdout)),
        (&json.stdout, named_json_rows(&json.stdout)),
        (&csv.stdout, named_csv_rows(&csv.stdout)),
    ] {
        assert_rows(&rows_of(&rows, &f), &expected(&f), &f, out);
    }
    let group = format!(
        "\"tpid\":-{},\"sig\":\"N/A\",\"sig@raw\":0,\"ret\":\"0\",\"ret@raw\":0",
        f.pid
    );
    assert!(json.stdout.contains(&group), "{group} in\n{}", json.stdout);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn syscalls_only_leaves_out_generated_signals() {
    common::require_bpf();
    let mut poke = Poke::spawn();
    let control = start(&[]);
    let tracer = start(&["--syscalls_only".into()]);
    // sig_trace is neither loaded nor attached in this mode.
    let names: BTreeSet<String> = bpf_fds(tracer.pid())
        .progs
        .iter()
        .map(|&id| prog_name(id))
        .collect();
    let want: BTreeSet<String> = PROGRAMS
        .iter()
        .filter(|p| **p != "sig_trace")
        .map(|p| p.to_string())
        .collect();
    poke.go();
    let control = stopped(control);
    let done = stopped(tracer);
    let f = poke.facts;
    poke.finish();
    assert_eq!(names, want);
    assert!(
        done.stderr.contains("sigsnoop: 3 programs attached"),
        "{}",
        done.stderr
    );
    // The control saw the child's SIGCHLD...
    assert_rows(
        &rows_of(&table_rows(&control.stdout), &f),
        &expected(&f),
        &f,
        &control.stdout,
    );
    // ...--syscalls_only shows only what kill, tkill and tgkill sent.
    let want: Vec<Row> = expected(&f)
        .into_iter()
        .filter(|r| r.sig != SIGCHLD)
        .collect();
    assert_eq!(want.len(), 8);
    assert_rows(
        &rows_of(&table_rows(&done.stdout), &f),
        &want,
        &f,
        &done.stdout,
    );
    // No generated signal at all: every row of this tracer was sent by a kill syscall,
    // so none is a SIGCHLD that signal_generate reported as not delivered (> 0).
    let chld = table_rows(&done.stdout)
        .into_iter()
        .filter(|r| r.sig == SIGCHLD && r.ret > 0)
        .count();
    assert_eq!(chld, 0, "{}", done.stdout);
}

fn filtered_pid(spelling: &str) {
    let (facts, done) = watch(2, |f| vec![format!("{spelling}={}", f[0].pid)]);
    let rows = table_rows(&done.stdout);
    // Only what the first helper itself sent: not its child's SIGCHLD, not the other helper.
    let want: Vec<Row> = expected(&facts[0])
        .into_iter()
        .filter(|r| r.pid == facts[0].pid)
        .collect();
    assert_eq!(want.len(), 8);
    assert_rows(&rows_of(&rows, &facts[0]), &want, &facts[0], &done.stdout);
    assert_eq!(rows_of(&rows, &facts[1]), [], "{}", done.stdout);
    let strangers: Vec<&Row> = rows.iter().filter(|r| r.pid != facts[0].pid).collect();
    assert!(
        strangers.is_empty(),
        "rows from other senders: {strangers:?}"
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn filtered_pid_keeps_only_that_sender() {
    common::require_bpf();
    filtered_pid("--filtered_pid");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn filtered_pid_has_a_kebab_case_alias() {
    common::require_bpf();
    filtered_pid("--filtered-pid");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn target_signal_keeps_only_that_signal() {
    common::require_bpf();
    let (facts, done) = watch(1, |_| vec!["--target_signal".into(), SIGUSR1.to_string()]);
    let f = &facts[0];
    let rows = table_rows(&done.stdout);
    assert_rows(
        &rows_of(&rows, f),
        &[row(f.pid, f.child, SIGUSR1, 0, "sigpoke")],
        f,
        &done.stdout,
    );
    assert!(rows.iter().all(|r| r.sig == SIGUSR1), "{}", done.stdout);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn failed_only_keeps_only_failures() {
    common::require_bpf();
    let (facts, done) = watch(1, |_| vec!["--failed_only".into()]);
    let f = &facts[0];
    let rows = table_rows(&done.stdout);
    // The three ESRCH calls, and the SIGCHLD that signal_generate reports as ignored (1).
    let want: Vec<Row> = expected(f).into_iter().filter(|r| r.ret != 0).collect();
    assert_eq!(want.len(), 4);
    assert_rows(&rows_of(&rows, f), &want, f, &done.stdout);
    assert!(rows.iter().all(|r| r.ret != 0), "{}", done.stdout);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn failed_only_false_keeps_everything() {
    common::require_bpf();
    let (facts, done) = watch(1, |_| vec!["--failed_only=false".into()]);
    let f = &facts[0];
    assert_rows(
        &rows_of(&table_rows(&done.stdout), f),
        &expected(f),
        f,
        &done.stdout,
    );
}

/// BPF objects a process holds, by id, read from /proc/<pid>/fdinfo.
#[derive(Debug, Default)]
struct BpfFds {
    progs: BTreeSet<u64>,
    links: BTreeSet<u64>,
    maps: BTreeSet<u64>,
}

fn bpf_fds(pid: u32) -> BpfFds {
    let mut found = BpfFds::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let Ok(info) = std::fs::read_to_string(entry.unwrap().path()) else {
            continue;
        };
        let field = |key: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().parse::<u64>().unwrap())
        };
        if let Some(id) = field("link_id:") {
            found.links.insert(id);
        } else if let Some(id) = field("prog_id:") {
            found.progs.insert(id);
        } else if let Some(id) = field("map_id:") {
            found.maps.insert(id);
        }
    }
    found
}

fn bpftool(args: &[&str]) -> serde_json::Value {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .expect("run bpftool");
    assert!(
        out.status.success(),
        "bpftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn prog_name(id: u64) -> String {
    bpftool(&["prog", "show", "id", &id.to_string()])["name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Ids of every loaded program, link or map (`what`), as bpftool lists them.
fn loaded(what: &str) -> BTreeSet<u64> {
    let list = bpftool(&[what, "show"]);
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_u64().unwrap())
        .collect()
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn nothing_stays_loaded_after_exit() {
    common::require_bpf();
    let tracer = start(&[]);
    let held = bpf_fds(tracer.pid());
    let names: BTreeSet<String> = held.progs.iter().map(|&id| prog_name(id)).collect();
    assert_eq!(names, PROGRAMS.iter().map(|p| p.to_string()).collect());
    assert_eq!(held.links.len(), 4, "{held:?}");
    // events, .rodata and .bss.
    assert_eq!(held.maps.len(), 3, "{held:?}");
    for (what, ids) in [
        ("prog", &held.progs),
        ("link", &held.links),
        ("map", &held.maps),
    ] {
        assert!(
            ids.is_subset(&loaded(what)),
            "bpftool does not list the runner's {what}s {ids:?}"
        );
    }
    stopped(tracer);
    // The kernel may free them a moment after the process is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    for (what, ids) in [
        ("prog", &held.progs),
        ("link", &held.links),
        ("map", &held.maps),
    ] {
        loop {
            let left: Vec<u64> = loaded(what).intersection(ids).copied().collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}s {left:?} are still loaded after the runner exited"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn duration_exits_by_itself() {
    common::require_bpf();
    let pkg = common::sigsnoop_package();
    let started = Instant::now();
    let done = common::run_runner(&["run", pkg.to_str().unwrap(), "--duration", "1"]);
    let took = started.elapsed();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert!(took >= Duration::from_secs(1), "stopped after {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(
        common::cells(done.stdout.lines().next().unwrap()),
        ["TIME", "PID", "TPID", "SIG", "RET", "COMM"]
    );
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", done.stderr);
    assert_eq!(
        lines[0],
        "runner: sigsnoop: 4 programs attached; tracing, Ctrl-C to stop"
    );
    let counts = lines[1]
        .strip_prefix("runner: ")
        .and_then(|l| l.strip_suffix(" lost"))
        .unwrap();
    let (events, lost) = counts.split_once(" events, ").unwrap();
    let events: u64 = events.parse().unwrap();
    let lost: u64 = lost.parse().unwrap();
    assert_eq!(lost, 0);
    assert_eq!(
        events as usize,
        done.stdout.lines().count() - 1,
        "one row per event counted"
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn closed_pipe_exits_quietly() {
    common::require_bpf();
    // `runner run ... | head -1`: the reader goes away after the header.
    let pkg = common::sigsnoop_package();
    let mut runner = Command::new(common::runner())
        .args(["run", pkg.to_str().unwrap(), "--duration", MAX_RUN])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(runner.stdout.take().unwrap());
    let mut header = String::new();
    stdout.read_line(&mut header).unwrap();
    assert_eq!(
        common::cells(&header),
        ["TIME", "PID", "TPID", "SIG", "RET", "COMM"]
    );
    drop(stdout);
    // Give it events to write until it notices nobody reads.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = runner.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "runner kept running with its stdout closed"
        );
        // SAFETY: kill(2) has no memory preconditions; signal 0 delivers nothing.
        unsafe { libc::kill(std::process::id() as i32, 0) };
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    runner
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with("runner: sigsnoop: 4 programs attached; tracing, Ctrl-C to stop\n"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("error") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
