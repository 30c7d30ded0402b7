//! When the runner wakes up. sigsnoop submits through `runner/ring.h`: its records wake
//! the runner only while the runner says it sleeps (or a quarter of the ring waits), so an
//! idle runner blocks with no timer, a lone event is printed at once, and no event waits
//! for the next one, even when it is published just as the runner falls asleep. A package
//! written before (no `wakeup` global) keeps the 10 ms drain timer.
//!
//! The events are this test process's own `kill(getpid(), 0)`, filtered on its pid; the
//! tests run one at a time, so no tracer sees another test's kills.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// One tracer at a time (see the module doc).
static ONE: Mutex<()> = Mutex::new(());

/// A running `runner run … -o json`, its stdout lines stamped with when they arrived.
struct Stream {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Stream {
    /// Start sigsnoop (`package`) in `--syscalls_only` mode for `pid`'s kills, and wait
    /// until it is attached.
    fn start(package: &Path, pid: i64) -> Stream {
        let mut child = Command::new(common::runner())
            .arg("run")
            .arg(package)
            .args(["--syscalls_only", "-o", "json", "--duration", "120"])
            .args(["--filtered_pid", &pid.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn runner");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("attached; tracing") {
                    let _ = ready_tx.send(());
                }
            }
        });
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        ready
            .recv_timeout(Duration::from_secs(30))
            .expect("runner attached within 30 s");
        Stream { child, lines }
    }

    /// The next event line, if one comes within `limit`.
    fn next(&self, limit: Duration) -> Option<(Instant, String)> {
        self.lines.recv_timeout(limit).ok()
    }

    /// CPU time (ns, from the scheduler) and voluntary context switches (times it blocked
    /// and was woken) so far.
    fn cpu_and_wakeups(&self) -> (u64, u64) {
        let pid = self.child.id();
        let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
        let cpu = schedstat
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (cpu, switches)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill_self() {
    // SAFETY: kill(2) with signal 0 only checks that we exist.
    let rc = unsafe { libc::syscall(libc::SYS_kill, libc::getpid(), 0) };
    assert_eq!(rc, 0);
}

fn own_pid() -> i64 {
    i64::from(std::process::id())
}

fn impossible_pid() -> i64 {
    let max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    max + 1
}

/// (CPU ns, wake-ups) of an attached runner over `span`, after a moment to settle.
fn idle_cost(stream: &Stream, span: Duration) -> (u64, u64) {
    std::thread::sleep(Duration::from_millis(300));
    let (cpu0, woken0) = stream.cpu_and_wakeups();
    std::thread::sleep(span);
    let (cpu1, woken1) = stream.cpu_and_wakeups();
    (cpu1 - cpu0, woken1 - woken0)
}

/// Send one kill and wait for its line: how long it took to arrive.
fn one_event(stream: &Stream) -> Duration {
    let sent = Instant::now();
    kill_self();
    let (seen, line) = stream
        .next(Duration::from_secs(2))
        .expect("an event is printed without another event to push it");
    assert!(line.contains(&format!("\"tpid\":{}", own_pid())), "{line}");
    assert!(line.contains("\"sig\":0"), "{line}");
    seen - sent
}

/// Idle, the runner blocks with no timer: the issue asks for at most one wake-up a second
/// and under 1 ms of CPU per 10 s. The 10 ms drain timer it used before woke it about 100
/// times a second and cost 10 to 60 ms of CPU per 10 s, which this fails on (as the frozen
/// package, which has no wakeup flag and so keeps the timer, shows at the end).
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn an_idle_runner_never_wakes_up_but_an_old_package_keeps_its_timer() {
    common::require_bpf();
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    // Our own pid: the programs run for every kill on the system, and submit nothing
    // until we kill.
    let stream = Stream::start(&common::sigsnoop_package(), own_pid());
    let (cpu, woken) = idle_cost(&stream, Duration::from_secs(5));
    eprintln!("idle 5 s: {woken} wake-ups, {cpu} ns CPU");
    assert!(
        woken <= 5,
        "woke up {woken} times in 5 s with nothing to trace"
    );
    // 1 ms per 10 s would be 500 us here; a blocked process uses none, so the slack is
    // for the measurement alone.
    assert!(
        cpu < 1_000_000,
        "used {cpu} ns of CPU in 5 s with nothing to trace"
    );

    // After that long sleep a single event is printed at once...
    let latency = one_event(&stream);
    eprintln!("a lone event after 5 s idle: {latency:?}");
    assert!(latency < Duration::from_millis(50), "took {latency:?}");
    // ...and once it is printed, the runner falls asleep again.
    let (_, woken) = idle_cost(&stream, Duration::from_secs(2));
    assert!(woken <= 2, "woke up {woken} times in 2 s after one event");
    drop(stream);

    let frozen = common::repo().join("runner/tests/fixtures/compat/sigsnoop-876e3f9a.json");
    let stream = Stream::start(&frozen, impossible_pid());
    let (_, woken) = idle_cost(&stream, Duration::from_secs(1));
    assert!(
        woken >= 30,
        "a package without a wakeup flag must be drained on the 10 ms timer; woke {woken} times in 1 s"
    );
}

/// The latency goal: at 20 events a second, an event reaches the output within
/// 10 ms (median). Each event finds the runner asleep and wakes it, so the median is far
/// lower; the assertion leaves room for a loaded machine.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn events_at_20_a_second_are_printed_within_milliseconds() {
    common::require_bpf();
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let stream = Stream::start(&common::sigsnoop_package(), own_pid());
    let mut latencies = Vec::new();
    let start = Instant::now();
    for i in 1..=60u32 {
        let latency = one_event(&stream);
        latencies.push(latency);
        assert!(stream.next(Duration::ZERO).is_none(), "one line per kill");
        // The next kill 50 ms after the previous one was sent.
        let next = start + Duration::from_millis(50) * i;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    eprintln!("60 events at 20/s: median {median:?}, worst {worst:?}");
    assert!(
        median <= Duration::from_millis(50),
        "median latency {median:?} ({latencies:?})"
    );
}

/// A record published while the runner falls asleep must still wake it: bursts of kills
/// timed around the moment it goes to sleep (about 10 ms after it last found records),
/// each of which must be printed without any later event to push it out.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn no_event_waits_for_the_next_one_when_the_runner_falls_asleep() {
    common::require_bpf();
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let stream = Stream::start(&common::sigsnoop_package(), own_pid());
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let mut stuck = Vec::new();
    for round in 0..400 {
        // 8 to 12 ms after the last records were read: around when the runner, its timer
        // having found nothing, sets the flag and blocks.
        std::thread::sleep(Duration::from_micros(8_000 + random(4_000)));
        let burst = 1 + random(3);
        for _ in 0..burst {
            kill_self();
        }
        for _ in 0..burst {
            if stream.next(Duration::from_secs(1)).is_none() {
                stuck.push(round);
                break;
            }
        }
    }
    assert!(
        stuck.is_empty(),
        "events left waiting for a later one in rounds {stuck:?}"
    );
}
