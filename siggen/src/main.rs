//! `siggen`: a signal-syscall load generator for benchmarks and tests.
//!
//! It issues one kind of signal syscall in a tight loop (or at a fixed rate) and prints one line of
//! JSON describing the run, so a benchmark can compare the cost of a syscall with and without a
//! tracer attached:
//!
//! ```text
//! siggen kill0 --count 1000000
//! {"mode":"kill0","count":1000000,"elapsed_ns":...,"ns_per_call":...,"errors":0,"errno":0,"pid":4242}
//! ```
//!
//! Modes (the signal is 0 unless `--signal` says otherwise, so nothing is delivered):
//! - `kill0`: `kill(target, sig)`, the target being our own pid unless `--target` is given;
//! - `kill-missing`: `kill(pid_max + 1, sig)`, a pid that cannot exist, so every call fails with ESRCH;
//! - `kill-clock`: `kill(2^30 + (CLOCK_MONOTONIC in µs mod 2^30), 0)`, also a pid that cannot exist
//!   (pid_max is at most 2^22), which carries the time it was sent: a tracer's TPID column then tells
//!   when the traced call was made, whatever the tracer's output buffering (see [`clock_stamp`]);
//! - `tgkill`: `tgkill(own tgid, own tid, sig)`;
//! - `tkill`: `tkill(own tid, sig)`.
//!
//! `ns_per_call` is the time spent issuing calls divided by their number: the whole run at full speed,
//! and only the bursts of calls (not the sleeps between them) with `--rate`.
//!
//! With `--rate R`, call `i` is due at `start + i / R`: the generator sleeps until the next deadline
//! (absolute, so errors do not accumulate) and then issues every call that is due. At rates beyond
//! what one sleep can resolve, calls come in short bursts but the average rate stays exact.

use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "\
Usage: siggen <MODE> [--count N] [--rate R] [--target PID] [--signal S]

Issue signal syscalls as fast as possible (or R per second) and print one line of JSON:
{\"mode\",\"count\",\"elapsed_ns\",\"ns_per_call\",\"errors\",\"errno\",\"pid\"}

Modes:
  kill0         kill(target, S); target is our own pid unless --target is given
  kill-missing  kill(pid_max + 1, S): always fails with ESRCH
  kill-clock    kill(2^30 + CLOCK_MONOTONIC µs mod 2^30, 0): a missing pid stamped with the send time
  tgkill        tgkill(own tgid, own tid, S)
  tkill         tkill(own tid, S)

Options:
  --count N     number of calls (default 1000000)
  --rate R      calls per second, paced on absolute deadlines (default: as fast as possible)
  --target PID  target of kill0 (default: own pid)
  --signal S    signal number (default 0: permission check only, nothing is sent). When we are the
                target, the signal is set to SIG_IGN first; SIGKILL and SIGSTOP are refused
  -h, --help    print this help
";

/// Base of the pids used by `kill-clock`: above any possible pid_max (at most 2^22).
const CLOCK_PID_BASE: i64 = 1 << 30;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Kill0,
    KillMissing,
    KillClock,
    Tgkill,
    Tkill,
}

impl Mode {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "kill0" => Self::Kill0,
            "kill-missing" => Self::KillMissing,
            "kill-clock" => Self::KillClock,
            "tgkill" => Self::Tgkill,
            "tkill" => Self::Tkill,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Kill0 => "kill0",
            Self::KillMissing => "kill-missing",
            Self::KillClock => "kill-clock",
            Self::Tgkill => "tgkill",
            Self::Tkill => "tkill",
        }
    }
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    count: u64,
    rate: Option<u64>,
    target: Option<i32>,
    signal: i32,
}

/// What went wrong with the command line, or a request for help.
#[derive(Debug)]
enum Usage {
    Help,
    Bad(String),
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, Usage> {
    let mut mode = None;
    let mut count = 1_000_000;
    let mut rate = None;
    let mut target = None;
    let mut signal = 0;
    while let Some(arg) = argv.next() {
        let mut value = |flag: &str| {
            argv.next()
                .ok_or_else(|| Usage::Bad(format!("`{flag}` needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Err(Usage::Help),
            "--count" => count = parse_number(&arg, &value(&arg)?)?,
            "--rate" => rate = Some(parse_number(&arg, &value(&arg)?)?),
            "--target" => target = Some(parse_number(&arg, &value(&arg)?)?),
            "--signal" => signal = parse_number(&arg, &value(&arg)?)?,
            flag if flag.starts_with('-') => {
                return Err(Usage::Bad(format!("unknown option `{flag}`")))
            }
            name if mode.is_none() => {
                mode = Some(
                    Mode::parse(name)
                        .ok_or_else(|| Usage::Bad(format!("unknown mode `{name}`")))?,
                )
            }
            extra => return Err(Usage::Bad(format!("unexpected argument `{extra}`"))),
        }
    }
    let mode = mode.ok_or_else(|| Usage::Bad("missing mode".into()))?;
    if rate == Some(0) {
        return Err(Usage::Bad("`--rate` must be at least 1".into()));
    }
    if target.is_some() && mode != Mode::Kill0 {
        return Err(Usage::Bad("`--target` only applies to kill0".into()));
    }
    if matches!(target, Some(pid) if pid <= 0) {
        return Err(Usage::Bad("`--target` must be a positive pid".into()));
    }
    if !(0..=libc::SIGRTMAX()).contains(&signal) {
        return Err(Usage::Bad(format!("signal {signal} is out of range")));
    }
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return Err(Usage::Bad("SIGKILL and SIGSTOP cannot be ignored".into()));
    }
    if mode == Mode::KillClock && signal != 0 {
        return Err(Usage::Bad("kill-clock always sends signal 0".into()));
    }
    Ok(Args {
        mode,
        count,
        rate,
        target,
        signal,
    })
}

fn parse_number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, Usage> {
    text.parse()
        .map_err(|_| Usage::Bad(format!("invalid value `{text}` for `{flag}`")))
}

/// One prepared signal syscall: everything but the clock stamp is fixed before the loop.
struct Call {
    mode: Mode,
    pid: i32,
    tid: i32,
    target: i32,
    signal: i32,
}

impl Call {
    fn prepare(args: &Args) -> Result<Self, String> {
        // SAFETY: getpid and gettid cannot fail.
        let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
        let target = match args.mode {
            Mode::Kill0 => args.target.unwrap_or(pid),
            Mode::KillMissing => read_pid_max()? + 1,
            Mode::KillClock | Mode::Tgkill | Mode::Tkill => pid,
        };
        Ok(Self {
            mode: args.mode,
            pid,
            tid,
            target,
            signal: args.signal,
        })
    }

    /// Issue the call once; returns the errno it failed with, or 0.
    fn issue(&self) -> i32 {
        // SAFETY: plain signal syscalls with integer arguments; the signal is 0, ignored by us or
        // meant for a target the user chose.
        let ret = unsafe {
            match self.mode {
                Mode::Kill0 | Mode::KillMissing => {
                    libc::kill(self.target, self.signal) as libc::c_long
                }
                Mode::KillClock => libc::kill(clock_stamp(monotonic_ns()), 0) as libc::c_long,
                Mode::Tgkill => libc::syscall(libc::SYS_tgkill, self.pid, self.tid, self.signal),
                Mode::Tkill => libc::syscall(libc::SYS_tkill, self.tid, self.signal),
            }
        };
        if ret == -1 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        } else {
            0
        }
    }

    /// Whether the signal lands on this very process.
    fn targets_self(&self) -> bool {
        self.target == self.pid
    }
}

/// The pid `kill-clock` sends to at `now_ns`: 2^30 plus the monotonic clock in µs, modulo 2^30.
/// A reader with the same clock recovers the send time as the latest time ≤ now with that residue.
fn clock_stamp(now_ns: u64) -> i32 {
    (CLOCK_PID_BASE + ((now_ns / 1000) % CLOCK_PID_BASE as u64) as i64) as i32
}

fn read_pid_max() -> Result<i32, String> {
    let path = "/proc/sys/kernel/pid_max";
    let text = std::fs::read_to_string(path).map_err(|e| format!("failed to read {path}: {e}"))?;
    text.trim()
        .parse()
        .map_err(|_| format!("unexpected content in {path}: {text:?}"))
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: ts is a valid timespec; an early return (EINTR) is fine, the caller loops.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Ignore `signal` in this process, so that signalling ourselves does not end the run.
fn ignore_signal(signal: i32) -> Result<(), String> {
    // SAFETY: installing SIG_IGN has no handler to be unsafe about.
    if unsafe { libc::signal(signal, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(format!(
            "failed to ignore signal {signal}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Counts of one run.
#[derive(Default)]
struct Outcome {
    elapsed_ns: u64,
    busy_ns: u64,
    errors: u64,
    first_errno: i32,
}

impl Outcome {
    fn record(&mut self, errno: i32) {
        if errno != 0 {
            self.errors += 1;
            if self.first_errno == 0 {
                self.first_errno = errno;
            }
        }
    }
}

fn run_full_speed(call: &Call, count: u64) -> Outcome {
    let mut outcome = Outcome::default();
    let start = monotonic_ns();
    for _ in 0..count {
        outcome.record(call.issue());
    }
    outcome.elapsed_ns = monotonic_ns() - start;
    outcome.busy_ns = outcome.elapsed_ns;
    outcome
}

fn run_at_rate(call: &Call, count: u64, rate: u64) -> Outcome {
    // Ask for wake-ups as precise as the kernel gives (the default slack is 50 µs).
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let deadline = |start: u64, i: u64| start + (i as u128 * 1_000_000_000 / rate as u128) as u64;
    let mut outcome = Outcome::default();
    let start = monotonic_ns();
    let mut issued = 0;
    while issued < count {
        let now = monotonic_ns();
        if now < deadline(start, issued) {
            sleep_until(deadline(start, issued));
            continue;
        }
        let due = ((now - start) as u128 * rate as u128 / 1_000_000_000) as u64 + 1;
        while issued < due.min(count) {
            outcome.record(call.issue());
            issued += 1;
        }
        outcome.busy_ns += monotonic_ns() - now;
    }
    outcome.elapsed_ns = monotonic_ns() - start;
    outcome
}

fn report(args: &Args, call: &Call, outcome: &Outcome) -> String {
    let ns_per_call = if args.count == 0 {
        0.0
    } else {
        outcome.busy_ns as f64 / args.count as f64
    };
    format!(
        "{{\"mode\":\"{}\",\"count\":{},\"elapsed_ns\":{},\"ns_per_call\":{:.1},\"errors\":{},\"errno\":{},\"pid\":{}}}",
        args.mode.name(),
        args.count,
        outcome.elapsed_ns,
        ns_per_call,
        outcome.errors,
        outcome.first_errno,
        call.pid,
    )
}

fn run(args: &Args) -> Result<String, String> {
    let call = Call::prepare(args)?;
    if args.signal != 0 && call.targets_self() {
        ignore_signal(args.signal)?;
    }
    let outcome = match args.rate {
        None => run_full_speed(&call, args.count),
        Some(rate) => run_at_rate(&call, args.count, rate),
    };
    Ok(report(args, &call, &outcome))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(Usage::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Usage::Bad(message)) => {
            eprintln!("siggen: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(line) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe is not a failure of the run.
            let _ = writeln!(stdout, "{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("siggen: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, Usage> {
        parse_args(line.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_mode_and_options() {
        let args = parse("tgkill --count 5 --rate 100 --signal 10").unwrap();
        assert_eq!(args.mode, Mode::Tgkill);
        assert_eq!((args.count, args.rate, args.signal), (5, Some(100), 10));
    }

    #[test]
    fn rejects_bad_usage() {
        for line in [
            "",
            "kill1",
            "kill0 --count",
            "kill0 --count x",
            "kill0 --rate 0",
            "tkill --target 1",
            "kill0 --signal 9",
            "kill0 --signal 99",
            "kill-clock --signal 10",
            "kill0 tkill",
        ] {
            assert!(
                matches!(parse(line), Err(Usage::Bad(_))),
                "{line:?} accepted"
            );
        }
    }

    #[test]
    fn clock_stamp_is_a_missing_pid_carrying_microseconds() {
        assert_eq!(clock_stamp(0), 1 << 30);
        assert_eq!(clock_stamp(1_234_567), (1 << 30) + 1234);
        // Wraps within [2^30, 2^31): always positive, always above any pid_max.
        let wrapped = clock_stamp(((1u64 << 30) + 7) * 1000);
        assert_eq!(wrapped, (1 << 30) + 7);
    }

    #[test]
    fn full_speed_run_counts_errors() {
        let args = parse("kill-missing --count 10").unwrap();
        let call = Call::prepare(&args).unwrap();
        let outcome = run_full_speed(&call, args.count);
        assert_eq!(outcome.errors, 10);
        assert_eq!(outcome.first_errno, libc::ESRCH);
    }

    #[test]
    fn rate_run_keeps_the_rate() {
        let args = parse("tkill --count 200 --rate 10000").unwrap();
        let call = Call::prepare(&args).unwrap();
        let outcome = run_at_rate(&call, args.count, 10_000);
        assert_eq!(outcome.errors, 0);
        // 200 calls at 10k/s: the last one is due at 19.9 ms.
        assert!(outcome.elapsed_ns >= 19_900_000, "{}", outcome.elapsed_ns);
        assert!(outcome.elapsed_ns < 200_000_000, "{}", outcome.elapsed_ns);
    }
}
