//! The capability mode, run for real with `setpriv` and ambient capabilities: sigsnoop as
//! an unprivileged user with CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH (tracefs is
//! root's, mode 0700: a non-root tracer of tracepoints needs to search it), as root with
//! only CAP_BPF and CAP_PERFMON, and each missing capability named in one line.
//!
//! Needs root (to drop to the others), BPF and setpriv (util-linux): `#[ignore]`d, run by
//! `scripts/test`.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `setpriv` arguments that drop to `user` (uid and gid) with exactly `caps`.
fn setpriv(user: u32, caps: &str) -> Vec<String> {
    let mut args = vec![
        format!("--reuid={user}"),
        format!("--regid={user}"),
        "--clear-groups".into(),
        format!("--inh-caps=-all{caps}"),
        format!("--bounding-set=-all{caps}"),
    ];
    if !caps.is_empty() && user != 0 {
        args.push(format!("--ambient-caps={}", caps.trim_start_matches(',')));
    }
    args
}

/// Run sigsnoop under `setpriv` as `user` with `caps`, send ourselves signal 0 once it is
/// attached, stop it; returns its status, stdout (JSON lines) and stderr.
fn sigsnoop_as(user: u32, caps: &str) -> (std::process::ExitStatus, String, String) {
    let pkg = common::sigsnoop_package();
    let pid = std::process::id().to_string();
    let mut child = Command::new("setpriv")
        .args(setpriv(user, caps))
        .arg(common::runner())
        .args([
            "run",
            pkg.to_str().unwrap(),
            "-o",
            "json",
            "--filtered_pid",
            &pid,
        ])
        .args(["--duration", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setpriv");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut stderr = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 {
        stderr.push_str(&line);
        if line.contains("attached; tracing") {
            // SAFETY: kill(2) with signal 0 only checks that we exist.
            unsafe { libc::kill(std::process::id() as i32, 0) };
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: kill(2) has no memory preconditions; the child is ours.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        }
        line.clear();
    }
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn assert_saw_our_signal(status: std::process::ExitStatus, stdout: &str, stderr: &str) {
    assert_eq!(status.code(), Some(0), "{stderr}");
    let me = std::process::id() as i64;
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["pid"] == me && e["tpid"] == me && e["sig"] == 0 && e["ret"] == 0),
        "no kill(self, 0) in\n{stdout}\n{stderr}"
    );
}

const NOBODY: u32 = 65534;

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn nobody_with_bpf_perfmon_and_dac_read_search_runs_sigsnoop() {
    common::require_bpf();
    let (status, stdout, stderr) = sigsnoop_as(NOBODY, ",+bpf,+perfmon,+dac_read_search");
    assert_saw_our_signal(status, &stdout, &stderr);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn root_with_only_bpf_and_perfmon_runs_sigsnoop() {
    common::require_bpf();
    let (status, stdout, stderr) = sigsnoop_as(0, ",+bpf,+perfmon");
    assert_saw_our_signal(status, &stdout, &stderr);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn each_missing_capability_is_named() {
    common::require_bpf();
    for (caps, error) in [
        (
            ",+bpf,+perfmon",
            "runner: error: tracepoints are found in tracefs, and this process (uid 65534) may not search /sys/kernel/tracing (owned by uid 0, mode 700): it needs CAP_DAC_READ_SEARCH, or to run as uid 0",
        ),
        (
            ",+bpf,+dac_read_search",
            "runner: error: loading tracing programs needs CAP_PERFMON as well as CAP_BPF (this process has CAP_BPF but neither CAP_PERFMON nor CAP_SYS_ADMIN)",
        ),
        (
            ",+perfmon,+dac_read_search",
            "runner: error: loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (this process has neither CAP_BPF nor CAP_SYS_ADMIN)",
        ),
    ] {
        let (status, _, stderr) = sigsnoop_as(NOBODY, caps);
        assert_eq!(status.code(), Some(1), "{caps}: {stderr}");
        assert_eq!(stderr.trim_end(), error, "{caps}");
    }
}
