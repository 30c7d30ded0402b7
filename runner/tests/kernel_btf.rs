//! The kernel BTF subset (`run/kernel_btf.rs`): a first run of sigsnoop relocates against
//! the whole kernel BTF and leaves the subset its relocations need in the cache; the next
//! run relocates against that subset alone, and still reads the right pid and comm out of
//! the kernel's `task_struct` (both are CO-RE reads); a subset libbpf cannot use is
//! dropped and the run goes on with the full BTF.
//!
//! One test, because the cache directory is this process's environment.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// libbpf's line (with --verbose) when it parses the whole kernel BTF.
const FULL: &str = "loaded kernel BTF from";
const SUBSET: &str = "read the cached subset of the kernel BTF";
const FALLBACK: &str = "trying with the full kernel BTF";

fn thread_comm() -> String {
    std::fs::read_to_string("/proc/thread-self/comm")
        .unwrap()
        .trim_end()
        .to_string()
}

/// Trace this process's own `kill(getpid(), 0)` and check the one event: every field,
/// including the pid and comm that the program reads from the task by CO-RE. (The
/// SIGINT that stops the tracer is this process's too, sent to the tracer.)
fn trace_own_kill(package: &Path) -> String {
    let pid = std::process::id();
    let pid_text = pid.to_string();
    let done = common::trace(
        &[
            package.to_str().unwrap(),
            "--syscalls_only",
            "--verbose",
            "-o",
            "json",
            "--filtered_pid",
            &pid_text,
        ],
        // SAFETY: kill(2) with signal 0 sends nothing.
        || assert_eq!(unsafe { libc::kill(pid as i32, 0) }, 0),
    );
    let events: Vec<serde_json::Value> = done
        .stdout
        .lines()
        .map(common::json_line)
        .filter(|e| e["pid"] == pid && e["tpid"] == pid)
        .collect();
    assert_eq!(events.len(), 1, "{}\n{}", done.stdout, done.stderr);
    let e = &events[0];
    assert_eq!(e["tpid"], pid, "{e}");
    assert_eq!(e["sig"], 0, "{e}");
    assert_eq!(e["ret"], 0, "{e}");
    assert_eq!(e["comm"], thread_comm(), "{e}");
    done.stderr
}

/// The cache entry a run left in `dir`, waiting a little for the thread that writes it.
fn entry(dir: &Path, within: Duration) -> Option<PathBuf> {
    let deadline = Instant::now() + within;
    loop {
        let found = std::fs::read_dir(dir).ok().and_then(|list| {
            list.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("core-btf-")
            })
        });
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_run_relocates_against_the_cached_kernel_btf_subset_and_reads_the_same() {
    common::require_bpf();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("runner");
    std::env::set_var("RUNNER_CACHE_DIR", &dir);
    let package = common::sigsnoop_package();

    // Cold: the whole kernel BTF, and the subset is made behind the run. The run may end
    // before the background thread is done; the next one makes it again.
    let mut made = None;
    for _ in 0..3 {
        let said = trace_own_kill(&package);
        assert!(said.contains(FULL) && !said.contains(SUBSET), "{said}");
        made = entry(&dir, Duration::from_secs(5));
        if made.is_some() {
            break;
        }
    }
    let made = made.expect("no run left a kernel BTF subset in the cache");
    let size = std::fs::metadata(&made).unwrap().len();
    let kernel = std::fs::metadata("/sys/kernel/btf/vmlinux").unwrap().len();
    assert!(
        size * 50 < kernel,
        "subset of {size} bytes, kernel {kernel}"
    );

    // Warm: the subset alone.
    let said = trace_own_kill(&package);
    assert!(said.contains(SUBSET) && !said.contains(FULL), "{said}");

    // A subset libbpf cannot parse (checksum intact, so only libbpf can tell): the run
    // says so, loads with the full BTF, and still reads the right values.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let mut content = format!("{}\n", boot.trim()).into_bytes();
    content.extend_from_slice(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let mut file = format!("/* runner cache: sha256 {} */\n", hex(&content)).into_bytes();
    file.extend_from_slice(&content);
    std::fs::write(&made, &file).unwrap();
    let said = trace_own_kill(&package);
    assert!(said.contains(FALLBACK) && said.contains(FULL), "{said}");
    assert!(
        std::fs::read(&made).map_or(true, |now| now != file),
        "the subset that failed is still cached"
    );
    std::env::remove_var("RUNNER_CACHE_DIR");
}

fn hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
