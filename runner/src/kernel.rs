//! What the runner needs from the system before and around a load: privileges, tracefs,
//! and libbpf's log (kept so a verifier rejection can be shown, streamed with --verbose).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (this process has neither CAP_BPF nor CAP_SYS_ADMIN)")]
    Unprivileged,
    #[error("loading tracing programs needs CAP_PERFMON as well as CAP_BPF (this process has CAP_BPF but neither CAP_PERFMON nor CAP_SYS_ADMIN)")]
    NoPerfmon,
    #[error("tracefs is not mounted and mounting it on /sys/kernel/tracing failed ({0}); run `mount -t tracefs tracefs /sys/kernel/tracing` as root")]
    TracefsUnmounted(std::io::Error),
    #[error("tracepoints are found in tracefs, and this process (uid {uid}) may not search {dir} (owned by uid {owner}, mode {mode:o}): it needs CAP_DAC_READ_SEARCH, or to run as uid {owner}")]
    TracefsDenied {
        dir: String,
        uid: u32,
        owner: u32,
        mode: u32,
    },
    #[error(
        "tracepoint `{tracepoint}` (program `{program}`) does not exist on this kernel (no {path})"
    )]
    MissingTracepoint {
        tracepoint: String,
        program: String,
        path: PathBuf,
    },
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
/// statfs(2)'s f_type of tracefs.
const TRACEFS_MAGIC: i64 = 0x7472_6163;

/// Effective capabilities of this process, from /proc/self/status.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Fail early, with what is needed, when this process cannot load BPF at all.
pub fn check_privileges() -> Result<(), SystemError> {
    let Some(caps) = effective_caps() else {
        return Ok(());
    };
    let has = |cap: u32| caps & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        Ok(())
    } else if !has(CAP_BPF) {
        Err(SystemError::Unprivileged)
    } else if !has(CAP_PERFMON) {
        Err(SystemError::NoPerfmon)
    } else {
        Ok(())
    }
}

/// Whether this process has CAP_BPF or CAP_SYS_ADMIN (true when it cannot tell).
pub fn privileged() -> bool {
    effective_caps()
        .is_none_or(|caps| caps & (1 << CAP_BPF) != 0 || caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// The tracefs directory libbpf will use, mounting tracefs when it is nowhere.
pub fn ensure_tracefs() -> Result<PathBuf, SystemError> {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(dir.into());
        }
    }
    // Mounted, but closed to this process (tracefs is root's, mode 0700): mounting again
    // would not help, a capability would.
    if is_tracefs(c"/sys/kernel/tracing") {
        use std::os::unix::fs::MetadataExt as _;
        let dir = "/sys/kernel/tracing";
        let meta = std::fs::metadata(dir).ok();
        return Err(SystemError::TracefsDenied {
            dir: dir.into(),
            // SAFETY: geteuid cannot fail.
            uid: unsafe { libc::geteuid() },
            owner: meta.as_ref().map_or(0, |m| m.uid()),
            mode: meta.map_or(0, |m| m.mode() & 0o7777),
        });
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are valid NUL-terminated strings; data may be null.
    let rc = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(SystemError::TracefsUnmounted(
            std::io::Error::last_os_error(),
        ));
    }
    crate::note!("runner: mounted tracefs on /sys/kernel/tracing");
    Ok("/sys/kernel/tracing".into())
}

/// Whether `dir` is where a tracefs is mounted.
fn is_tracefs(dir: &std::ffi::CStr) -> bool {
    // SAFETY: an all-zero statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is a valid C string and `st` a valid out-pointer.
    unsafe { libc::statfs(dir.as_ptr(), &mut st) == 0 && st.f_type as i64 == TRACEFS_MAGIC }
}

/// Check that `category/name` exists under tracefs.
pub fn check_tracepoint(
    tracefs: &Path,
    tracepoint: &str,
    program: &str,
) -> Result<(), SystemError> {
    let path = tracefs.join("events").join(tracepoint);
    if path.is_dir() {
        return Ok(());
    }
    Err(SystemError::MissingTracepoint {
        tracepoint: tracepoint.into(),
        program: program.into(),
        path,
    })
}

static VERBOSE: AtomicBool = AtomicBool::new(false);
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The most libbpf lines kept for an error report.
const LOG_KEEP: usize = 4000;

fn print(level: PrintLevel, msg: String) {
    if VERBOSE.load(Ordering::Relaxed) {
        // Through the runner's stderr: names from the object are escaped, and a stalled
        // stderr cannot hang the runner.
        crate::note!("{}", msg.trim_end_matches('\n'));
    }
    if level == PrintLevel::Debug {
        return;
    }
    if let Ok(mut log) = LOG.lock() {
        if log.len() >= LOG_KEEP {
            log.drain(..LOG_KEEP / 2);
        }
        log.push(msg);
    }
}

/// Route libbpf's messages through the runner: kept for error reports, printed only with
/// `--verbose`.
pub fn capture_libbpf_log(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    let level = if verbose {
        PrintLevel::Debug
    } else {
        PrintLevel::Info
    };
    libbpf_rs::set_print(Some((level, print)));
}

/// Forget what libbpf said so far, so that an error about the next step quotes that step.
pub fn clear_log() {
    if let Ok(mut log) = LOG.lock() {
        log.clear();
    }
}

/// The end of the verifier log of the last failed program load, if libbpf printed one.
pub fn verifier_log_tail(max_lines: usize) -> Option<String> {
    let log = LOG.lock().ok()?;
    let text: String = log.concat();
    let begin = text.rfind("-- BEGIN PROG LOAD LOG --")?;
    let body = &text[begin..];
    let body = body.split_once('\n').map_or("", |(_, rest)| rest);
    let end = body.find("-- END PROG LOAD LOG --").unwrap_or(body.len());
    let lines: Vec<&str> = body[..end]
        .lines()
        .map(|l| l.trim_start_matches("libbpf: ").trim_end())
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(max_lines);
    Some(lines[start..].join("\n"))
}

/// The program libbpf last reported as failing to load (`prog 'name': failed to load`).
pub fn failed_program() -> Option<String> {
    let log = LOG.lock().ok()?;
    log.iter().rev().find_map(|line| {
        let rest = line.split("prog '").nth(1)?;
        let (name, tail) = rest.split_once('\'')?;
        (tail.contains("failed to load") || tail.contains("load failed")).then(|| name.to_string())
    })
}

/// The last libbpf warning, for errors libbpf explained only in its log.
pub fn last_libbpf_message() -> Option<String> {
    let log = LOG.lock().ok()?;
    log.last()
        .map(|m| m.trim().trim_start_matches("libbpf: ").to_string())
}
