//! A run under pressure: floods of big records into small buffers (memory stays bounded,
//! losses are counted or said to be possible, never reported as zero when unknown), a
//! stdout nobody reads (every stop still ends within a second, with the summary), a
//! stdout that closes or fills up. The fixture, `tests/fixtures/flood/`, sends a burst of
//! 4 KiB records for every getppid(2) call of this process, numbered so that the tests
//! see every gap.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON), clang and bpftool: `#[ignore]`d, run by
//! `scripts/test` (see `common::require_bpf`).

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::run_runner;

/// Records per getppid() call.
const BURST: u64 = 16;
/// The most a flooded runner may hold, in KiB: the channels (three 256 KiB rings, a
/// 256 KiB perf buffer per CPU) plus the output cap plus the binary. Without the cap it
/// grew to hundreds of MiB.
const RSS_BOUND_KIB: u64 = 16 * 1024;

fn package() -> &'static str {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flood");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("flood.json");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flood/flood.bpf.c");
        let done = run_runner(&[
            "build",
            source.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(done.status.success(), "runner build flood: {}", done.stderr);
        out.to_str().unwrap().to_string()
    })
}

/// One flood at a time: each filters on this process's pid.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static FLOODING: Mutex<()> = Mutex::new(());
    FLOODING.lock().unwrap_or_else(|e| e.into_inner())
}

fn getppid_times(n: u64) {
    for _ in 0..n {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::getppid() };
    }
}

/// A pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just created and are owned here.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// `runner run` of the flood package on `channel`, stdout to `stdout`, stderr collected
/// line by line by a thread.
struct Run {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Run {
    /// Start it with its rings at the 256 KiB the program declares (the runner would
    /// give them room for a burst) and return once it says it is attached.
    fn start(channel: u32, format: &str, stdout: Stdio) -> Run {
        Run::start_with(channel, format, stdout, true, &[])
    }

    /// `declared_rings`: keep the rings at their declared 256 KiB; `more`: more options.
    fn start_with(
        channel: u32,
        format: &str,
        stdout: Stdio,
        declared_rings: bool,
        more: &[&str],
    ) -> Run {
        let keep: &[&str] = if declared_rings {
            &["--map-size", "ring=262144", "--map-size", "counted=262144"]
        } else {
            &[]
        };
        let mut child = Command::new(common::runner())
            .args(["run", package(), "-o", format])
            .args(keep)
            .args(more)
            .args(["--target_tgid", &std::process::id().to_string()])
            .args([
                "--channel",
                &channel.to_string(),
                "--burst",
                &BURST.to_string(),
            ])
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in err.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut run = Run {
            child,
            stderr: rx,
            seen: Vec::new(),
        };
        loop {
            let line = run
                .stderr
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("runner did not attach:\n{}", run.seen.join("\n")));
            let ready = line.contains("attached; tracing");
            run.seen.push(line);
            if ready {
                return run;
            }
        }
    }

    /// Peak resident memory so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Wait for the exit; returns the status and everything it wrote on stderr.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = common::wait_timeout(&mut self.child, Duration::from_secs(20));
        self.wait_reaped(status)
    }

    /// Send `signal`; returns how long the runner took to exit, its status and stderr.
    fn stop(mut self, signal: i32) -> (Duration, std::process::ExitStatus, String) {
        let sent = Instant::now();
        // SAFETY: kill(2) has no memory preconditions; the child is ours and not reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let status = common::wait_timeout(&mut self.child, Duration::from_secs(20));
        let took = sent.elapsed();
        let (_, stderr) = self.wait_reaped(status);
        (took, status, stderr)
    }

    fn wait_reaped(
        mut self,
        status: std::process::ExitStatus,
    ) -> (std::process::ExitStatus, String) {
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }
}

impl Drop for Run {
    /// A test that fails midway must not leave its runner attached.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `seq` of every JSON line.
fn seqs(json_lines: &str) -> Vec<u64> {
    json_lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// The summary line: `runner: N events...`.
fn summary(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| l.contains(" events"))
        .unwrap_or_else(|| panic!("no summary in\n{stderr}"))
}

fn number_before(line: &str, what: &str) -> Option<u64> {
    let end = line.find(what)?;
    line[..end].rsplit(' ').next()?.parse().ok()
}

/// Flood `channel` with stdout into a file; returns the records seen, the stderr and the
/// peak RSS.
fn flood_into_a_file(channel: u32, calls: u64) -> (Vec<u64>, String, u64) {
    let _one = one_at_a_time();
    let out = tempfile::NamedTempFile::new().unwrap();
    let run = Run::start(channel, "json", Stdio::from(out.reopen().unwrap()));
    getppid_times(calls);
    std::thread::sleep(Duration::from_millis(500));
    let rss = run.peak_rss_kib();
    let (_, status, stderr) = run.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let text = std::fs::read_to_string(out.path()).unwrap();
    (seqs(&text), stderr, rss)
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_flooded_ring_without_a_counter_says_events_may_have_been_lost() {
    common::require_bpf();
    let calls = 2000;
    let (seen, stderr, rss) = flood_into_a_file(0, calls);
    let sent = calls * BURST;
    let missing = sent - seen.len() as u64;
    eprintln!(
        "ring without a counter: {sent} sent, {} seen, peak RSS {rss} KiB",
        seen.len()
    );
    assert!(
        missing > 0,
        "a 256 KiB ring took {sent} records of 4 KiB at once?"
    );
    let line = summary(&stderr);
    assert!(
        line.contains("events may have been lost: the ring was full "),
        "{missing} records missing, yet: {line}"
    );
    assert!(!line.ends_with(" 0 lost"), "{line}");
    assert_eq!(
        number_before(line, " events"),
        Some(seen.len() as u64),
        "{line}"
    );
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
}

/// Run `load` with the ring channel grown to room for 1024 records (no `--map-size`), and
/// stdout into a file; returns the records seen and the stderr of a clean stop.
fn on_a_grown_ring(load: impl FnOnce()) -> (Vec<u64>, String) {
    let _one = one_at_a_time();
    let out = tempfile::NamedTempFile::new().unwrap();
    let run = Run::start_with(0, "json", Stdio::from(out.reopen().unwrap()), false, &[]);
    load();
    std::thread::sleep(Duration::from_millis(500));
    let (_, status, stderr) = run.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{stderr}");
    (seqs(&std::fs::read_to_string(out.path()).unwrap()), stderr)
}

/// A ring that holds too few of its records for a burst gets room for one: the 256 KiB
/// ring holds 63 records of 4 KiB, and 40 calls send 640 at once, faster than any reader
/// drains them; given 4 MiB (the most it gives on its own: 1022 records), all arrive.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_ring_too_small_for_a_burst_gets_room_for_one() {
    common::require_bpf();
    let (seen, stderr) = on_a_grown_ring(|| getppid_times(40));
    assert_eq!(seen, (0..40 * BURST).collect::<Vec<_>>(), "{stderr}");
    assert!(
        stderr.contains("runner: ring `ring` holds 63 records of 4096 bytes; giving it 4096 KiB (--map-size ring=262144 keeps its size)"),
        "{stderr}"
    );
    assert_eq!(summary(&stderr), "runner: 640 events, 0 lost");
}

/// Bursts close together, as in a storm, are read with the ring's position held back (no
/// wake-up per record; `channel::ringbuf`): every record arrives once, in order, and a
/// burst after a pause (the position published again) arrives too.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_storm_read_on_a_timer_loses_and_repeats_nothing() {
    common::require_bpf();
    // The ring grows to 4 MiB (1022 records): room for many bursts of 64 while the reader
    // waits up to its millisecond; 3 ms apart, they keep it holding and leave it time to
    // write each burst's 256 KiB as JSON, even on a busy machine.
    let (rounds, calls) = (40, 4);
    let (seen, stderr) = on_a_grown_ring(|| {
        for _ in 0..rounds {
            getppid_times(calls);
            std::thread::sleep(Duration::from_millis(3));
        }
        std::thread::sleep(Duration::from_millis(200));
        getppid_times(1);
    });
    let sent = (rounds * calls + 1) * BURST;
    let first_wrong = (0..sent).zip(&seen).find(|(want, got)| want != *got);
    assert!(
        seen.len() as u64 == sent && first_wrong.is_none(),
        "{} of {sent} records, first out of order: {first_wrong:?}; {stderr}",
        seen.len()
    );
    assert_eq!(summary(&stderr), format!("runner: {sent} events, 0 lost"));
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_counted_ring_reports_its_exact_losses() {
    common::require_bpf();
    let calls = 2000;
    let (seen, stderr, rss) = flood_into_a_file(1, calls);
    let missing = calls * BURST - seen.len() as u64;
    assert!(missing > 0);
    let line = summary(&stderr);
    assert_eq!(
        line,
        format!("runner: {} events, {missing} lost", seen.len()),
        "{stderr}"
    );
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_flooded_perf_buffer_counts_losses_and_reports_them_once_a_second() {
    common::require_bpf();
    let _one = one_at_a_time();
    let out = tempfile::NamedTempFile::new().unwrap();
    let run = Run::start(2, "json", Stdio::from(out.reopen().unwrap()));
    // A flood that lasts: 3 seconds of bursts.
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(3) {
        getppid_times(100);
        calls += 100;
    }
    let flooded = started.elapsed();
    let rss = run.peak_rss_kib();
    let (_, status, stderr) = run.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let seen = seqs(&std::fs::read_to_string(out.path()).unwrap()).len() as u64;
    let missing = calls * BURST - seen;
    let line = summary(&stderr);
    let lost = number_before(line, " lost").unwrap();
    eprintln!(
        "perf: {} sent, {seen} seen, {lost} counted lost, peak RSS {rss} KiB",
        calls * BURST
    );
    assert!(lost > 0 && lost <= missing, "{missing} missing: {line}");
    if lost < missing {
        assert!(
            line.contains("more may have been lost"),
            "{missing} missing: {line}"
        );
    }
    let loss_lines = stderr
        .lines()
        .filter(|l| l.contains("lost on map `perf`"))
        .count();
    let allowed = flooded.as_secs() as usize + 2;
    assert!(
        (1..=allowed).contains(&loss_lines),
        "{loss_lines} loss lines in {flooded:?}:\n{stderr}"
    );
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
}

/// Flood with stdout into a pipe nobody reads, then stop with `signal`: the runner must
/// exit 0 within a second, with its summary, its memory bounded all along.
fn stop_with_stdout_stalled(signal: i32) {
    let _one = one_at_a_time();
    let (read, write) = pipe();
    let run = Run::start(0, "table", Stdio::from(write));
    getppid_times(2000);
    std::thread::sleep(Duration::from_millis(300));
    let rss = run.peak_rss_kib();
    let (took, status, stderr) = run.stop(signal);
    drop(read);
    eprintln!("signal {signal}: exited {took:?} after it, peak RSS {rss} KiB");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        took < Duration::from_secs(1),
        "took {took:?} to stop:\n{stderr}"
    );
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
    assert!(
        stderr.contains("runner: stdout is not being read: "),
        "{stderr}"
    );
    assert!(summary(&stderr).starts_with("runner: "), "{stderr}");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sigterm_stops_within_a_second_while_stdout_is_stalled() {
    common::require_bpf();
    stop_with_stdout_stalled(libc::SIGTERM);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sigint_stops_within_a_second_while_stdout_is_stalled() {
    common::require_bpf();
    stop_with_stdout_stalled(libc::SIGINT);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sighup_stops_within_a_second_while_stdout_is_stalled() {
    common::require_bpf();
    stop_with_stdout_stalled(libc::SIGHUP);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sigusr1_reports_and_goes_on() {
    common::require_bpf();
    let _one = one_at_a_time();
    let mut run = Run::start(1, "json", Stdio::null());
    // 48 records: the ring holds 63.
    getppid_times(3);
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill(2) has no memory preconditions.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGUSR1) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "SIGUSR1 ended the run"
    );
    let (_, status, stderr) = run.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("runner: so far 48 events, 0 lost"),
        "{stderr}"
    );
    assert_eq!(summary(&stderr), "runner: 48 events, 0 lost");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_closed_stdout_is_noticed_without_another_event() {
    common::require_bpf();
    let _one = one_at_a_time();
    let (read, write) = pipe();
    let mut run = Run::start(0, "json", Stdio::from(write));
    // JSON has no header: nothing was written, and no event will come.
    let closed = Instant::now();
    drop(read);
    let status = common::wait_timeout(&mut run.child, Duration::from_secs(20));
    let took = closed.elapsed();
    let (_, stderr) = run.wait_reaped(status);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(took < Duration::from_secs(1), "took {took:?}:\n{stderr}");
    assert_eq!(summary(&stderr), "runner: 0 events, 0 lost");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_full_disk_is_one_line_and_exit_1() {
    common::require_bpf();
    let _one = one_at_a_time();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let run = Run::start(0, "json", Stdio::from(full));
    getppid_times(4);
    let (status, stderr) = run.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(
        errors,
        ["runner: error: cannot write to stdout: No space left on device (os error 28)"],
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Scheduling policy and real-time priority of process `pid`'s main thread, the one that
/// reads the channels (fields 41 and 40 of /proc/PID/task/PID/stat).
fn scheduling(pid: u32) -> (u32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).unwrap();
    // Fields count from 1; the third starts after the command name's parenthesis.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let field = |n: usize| fields[n - 3].parse::<u32>().unwrap();
    (field(41), field(40))
}

/// `Max realtime timeout` of /proc/PID/limits: the soft limit, in µs.
fn rt_time_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max realtime timeout"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().to_string()
}

/// The reader runs at `SCHED_FIFO` 1 by default, watched by `RLIMIT_RTTIME`; at normal
/// priority with `--reader-priority 0`; an out-of-range priority is a usage error.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn the_reader_runs_at_real_time_priority_unless_told_not_to() {
    common::require_bpf();
    let _one = one_at_a_time();
    let run = Run::start(0, "json", Stdio::null());
    let pid = run.child.id();
    assert_eq!(scheduling(pid), (libc::SCHED_FIFO as u32, 1));
    assert_eq!(rt_time_limit(pid), "200000");
    getppid_times(2);
    std::thread::sleep(Duration::from_millis(200));
    let (_, status, stderr) = run.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        summary(&stderr),
        format!("runner: {} events, 0 lost", 2 * BURST)
    );

    let run = Run::start_with(0, "json", Stdio::null(), true, &["--reader-priority", "0"]);
    let pid = run.child.id();
    assert_eq!(scheduling(pid), (libc::SCHED_OTHER as u32, 0));
    assert_eq!(rt_time_limit(pid), "unlimited");
    let (_, status, stderr) = run.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{stderr}");

    let done = run_runner(&["run", package(), "--reader-priority", "100"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("--reader-priority <N>") && done.stderr.contains("100"),
        "{}",
        done.stderr
    );
}

/// A reader that cannot keep up never sleeps; at real-time priority it would hold its CPU.
/// Past 200 ms of CPU without a pause the kernel says so (SIGXCPU) and the runner goes on
/// at normal priority, says so once, and still stops cleanly. Here a 256 KiB ring of 4 KiB
/// records takes 16 of them per getppid() call, far faster than they print as JSON.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_reader_that_cannot_keep_up_goes_back_to_normal_priority() {
    common::require_bpf();
    let _one = one_at_a_time();
    let mut run = Run::start(0, "json", Stdio::null());
    let pid = run.child.id();
    assert_eq!(scheduling(pid), (libc::SCHED_FIFO as u32, 1));
    let note = "runner: the reader ran 200 ms at real-time priority without a pause; it goes on at normal priority";
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lowered = false;
    while !lowered && Instant::now() < deadline {
        getppid_times(20);
        while let Ok(line) = run.stderr.try_recv() {
            lowered |= line == note;
            run.seen.push(line);
        }
    }
    assert!(lowered, "{}", run.seen.join("\n"));
    assert_eq!(scheduling(pid), (libc::SCHED_OTHER as u32, 0));
    let (took, status, stderr) = run.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(took < Duration::from_secs(2), "stopped in {took:?}");
    assert_eq!(stderr.matches(note).count(), 1, "{stderr}");
}
