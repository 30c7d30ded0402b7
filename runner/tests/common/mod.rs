//! Helpers shared by the integration tests: paths, the BPF probe, a tracer process that
//! is started, waited for until it is attached, and stopped, corpus packages and packages
//! built with a sidecar, helper processes compiled from C, and readers of the output.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn runner() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_runner"))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The corpus of programs and packages nobody here wrote: `$RUNNER_CORPUS`, else
/// `../shared/corpus` beside the repository. `None` (with a one-line note) when absent.
pub fn corpus(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("RUNNER_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/corpus"));
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!(
        "SKIPPED {test}: no corpus at {} (set RUNNER_CORPUS)",
        dir.display()
    );
    None
}

pub fn sigsnoop_package() -> PathBuf {
    repo().join("programs/sigsnoop/package.json")
}

/// Can this process load a BPF program? Probed by loading a two-instruction socket
/// filter (`r0 = 0; exit`), not by checking the uid.
fn bpf_works() -> bool {
    #[repr(C)]
    struct Attr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        pad: [u8; 92],
    }
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = b"GPL\0";
    let attr = Attr {
        prog_type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        pad: [0; 92],
    };
    // SAFETY: a valid bpf_attr for BPF_PROG_LOAD (5); the fd is closed right away.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            5,
            &attr as *const Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    if fd >= 0 {
        // SAFETY: `fd` was just returned by the kernel and is closed once.
        unsafe { libc::close(fd as i32) };
        true
    } else {
        false
    }
}

/// The first line of every test that loads BPF programs. Such tests are `#[ignore]`d, so
/// a plain `cargo test` reports them as ignored (skipped), never as passed; `scripts/test`
/// runs them with `--include-ignored` when BPF works here, or when `RUNNER_REQUIRE_BPF=1`
/// (as in CI). Once running, a test without BPF fails, loudly.
pub fn require_bpf() {
    assert!(
        bpf_works(),
        "this test loads BPF programs, which this process cannot: run it as root (or with CAP_BPF and CAP_PERFMON)"
    );
}

/// A running `runner run`, attached and streaming.
pub struct Tracer {
    child: Child,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
}

impl Tracer {
    /// Start `runner run <args>` and wait (up to 30 s) until it says it is attached.
    pub fn start(args: &[&str]) -> Tracer {
        let mut child = Command::new(runner())
            .arg("run")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn runner");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut tracer = Tracer {
            child,
            stderr: rx,
            stderr_seen: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tracer.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let ready = line.contains("attached; tracing");
                    tracer.stderr_seen.push(line);
                    if ready {
                        return tracer;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let finished = tracer.stop();
                    panic!(
                        "runner exited before attaching: {}\n{}",
                        finished.status, finished.stderr
                    );
                }
            }
            if Instant::now() > deadline {
                let finished = tracer.stop();
                panic!("runner did not attach within 30 s:\n{}", finished.stderr);
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it said on stderr up to now (as far as `start` read).
    pub fn said(&self) -> &[String] {
        &self.stderr_seen
    }

    /// SIGINT, then collect everything it printed. Events are drained on a 50 ms timer,
    /// so give it a moment first.
    pub fn stop(mut self) -> Finished {
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill(2) has no memory preconditions; the child is ours and not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).unwrap();
        }
        let status = wait_timeout(&mut self.child, Duration::from_secs(20));
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(500)) {
            self.stderr_seen.push(line);
        }
        Finished {
            stdout,
            stderr: self.stderr_seen.join("\n"),
            status,
        }
    }
}

impl Drop for Tracer {
    /// A test that fails before `stop` must not leave its tracer running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `runner <args>` to completion.
pub fn run_runner(args: &[&str]) -> Finished {
    let out = Command::new(runner())
        .args(args)
        .output()
        .expect("spawn runner");
    Finished {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: without_root_note(&String::from_utf8_lossy(&out.stderr)),
        status: out.status,
    }
}

/// `stderr` without the line `runner build` prints when run as root (that clang is
/// confined), which tests of other things need not see; `tests/build.rs` checks it.
pub fn without_root_note(stderr: &str) -> String {
    stderr
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("runner: building as root: "))
        .collect()
}

/// Split a table line into its whitespace-separated cells.
pub fn cells(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Parse CSV as RFC 4180 reads it: records of fields, a field quoted when it holds a
/// comma, a quote (doubled) or a line break. Panics on anything else (a stray quote, an
/// unterminated field, a missing final line break), so a test that reads CSV this way
/// checks its quoting too.
pub fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_start => loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => panic!("unterminated quoted field in CSV:\n{text}"),
                }
            },
            '"' => panic!("a quote inside an unquoted field in CSV:\n{text}"),
            ',' => {
                record.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_start = true;
                continue;
            }
            c => field.push(c),
        }
        at_start = false;
        if let Some(&next) = chars.peek() {
            assert!(
                next == ',' || next == '\n' || c != '"',
                "text after a closing quote in CSV:\n{text}"
            );
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "CSV does not end with a line break:\n{text}"
    );
    records
}

/// `runner build` the program `runner/tests/fixtures/corpus/<name>/<name>.bpf.c`, once per
/// test binary; returns the package's path.
pub fn corpus_package(name: &str) -> String {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus")
        .join(name)
        .join(format!("{name}.bpf.c"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.json"));
    let done = run_runner(&[
        "build",
        source.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        done.status.success(),
        "runner build {name} failed:\n{}",
        done.stderr
    );
    let path = out.to_str().unwrap().to_string();
    built.insert(name.to_string(), path.clone());
    path
}

/// The helper process `name` (a workload with a known pid that does a known thing),
/// compiled with `cc` from the C `source`, once per version of the source
/// (in `CARGO_TARGET_TMPDIR/<name>-<hash>/`); its file name, and so its comm, is `name`.
pub fn c_helper(name: &str, source: &str) -> PathBuf {
    use std::sync::Mutex;
    static COMPILING: Mutex<()> = Mutex::new(());
    use sha2::Digest as _;
    let hash: String = sha2::Sha256::digest(source)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{hash}"));
    let bin = dir.join(name);
    // One compiler at a time in this process: the scratch names below are per process.
    let _one = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}-{}.c", std::process::id()));
    std::fs::write(&src, source).unwrap();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-pthread", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Renamed into place, so a concurrent run never executes half a binary.
    std::fs::rename(&tmp, &bin).unwrap();
    let _ = std::fs::remove_file(&src);
    bin
}

/// One tracer at a time per test binary: the corpus programs filter on this process, so
/// two at once would see each other's triggers.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    use std::sync::Mutex;
    static TRACING: Mutex<()> = Mutex::new(());
    TRACING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start `runner run <args>`, run `trigger` once it is attached, stop it, and return what
/// it printed; the run must end cleanly. Holds [`one_at_a_time`] meanwhile.
pub fn trace(args: &[&str], trigger: impl FnOnce()) -> Finished {
    let _one = one_at_a_time();
    let tracer = Tracer::start(args);
    trigger();
    let done = tracer.stop();
    assert!(
        done.status.success(),
        "runner run {args:?}: {}\n{}",
        done.status,
        done.stderr
    );
    done
}

/// Every line of JSON output, parsed (blank lines skipped).
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(json_line)
        .collect()
}

/// The events of JSON output (the lines that are not map views), each shown to `check`
/// and then taken without its `@time`.
pub fn json_events(stdout: &str, check: impl Fn(&serde_json::Value)) -> Vec<serde_json::Value> {
    json_lines(stdout)
        .into_iter()
        .filter(|v| v.get("@map").is_none())
        .map(|mut v| {
            check(&v);
            v.as_object_mut().unwrap().remove("@time");
            v
        })
        .collect()
}

/// What `runner build <source> --sidecar <sidecar> -o <package>` did, with the sidecar
/// written to `CARGO_TARGET_TMPDIR/<dir>/<name>.runner.json` and the package going to
/// `<dir>/<name>.json` beside it.
pub struct SidecarBuild {
    pub done: Finished,
    pub sidecar: PathBuf,
    pub package: PathBuf,
}

/// `runner build` `source` with `sidecar` (see [`SidecarBuild`]); it need not succeed.
pub fn build_with_sidecar(
    source: &Path,
    sidecar: &serde_json::Value,
    dir: &str,
    name: &str,
) -> SidecarBuild {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (side, package) = (
        dir.join(format!("{name}.runner.json")),
        dir.join(format!("{name}.json")),
    );
    std::fs::write(&side, sidecar.to_string()).unwrap();
    let done = run_runner(&[
        "build",
        source.to_str().unwrap(),
        "--sidecar",
        side.to_str().unwrap(),
        "-o",
        package.to_str().unwrap(),
    ]);
    SidecarBuild {
        done,
        sidecar: side,
        package,
    }
}

/// prctl(2) with raw arguments: the corpus options are not real ones, so the call fails
/// with EINVAL after the tracepoints have seen it.
pub fn prctl(option: u64, a2: u64, a3: u64, a4: u64, a5: u64) {
    // SAFETY: an unknown prctl option only makes the call fail; the arguments are plain
    // numbers (or addresses the caller keeps alive).
    unsafe {
        libc::syscall(
            libc::SYS_prctl,
            option as libc::c_long,
            a2 as libc::c_long,
            a3 as libc::c_long,
            a4 as libc::c_long,
            a5 as libc::c_long,
        );
    }
}

/// Name the calling thread (its comm, as BPF's bpf_get_current_comm sees it).
pub fn set_comm(name: &str) {
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_NAME");
}

/// `HH:MM:SS.mmm`: the time of day a table row and a CSV row start with.
pub fn is_time_of_day(s: &str) -> bool {
    let b = s.as_bytes();
    let two = |at: usize, max: u8| {
        b[at].is_ascii_digit()
            && b[at + 1].is_ascii_digit()
            && (b[at] - b'0') * 10 + (b[at + 1] - b'0') <= max
    };
    b.len() == 12
        && two(0, 23)
        && b[2] == b':'
        && two(3, 59)
        && b[5] == b':'
        && two(6, 60)
        && b[8] == b'.'
        && b[9..].iter().all(u8::is_ascii_digit)
}

/// One line of the runner's JSON output, parsed strictly: not JSON, or an object with a
/// key twice at any depth (which serde_json and jq would read as the last one), panics.
pub fn json_line(line: &str) -> serde_json::Value {
    runner::spec::json::parse(line.as_bytes())
        .unwrap_or_else(|e| panic!("not JSON with unique keys ({e}): {line}"))
}
