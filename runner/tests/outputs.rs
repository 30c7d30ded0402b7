//! Every command's output path under failure: a closed pipe (exit 0, quietly), a full disk
//! (one line, exit 1), never a panic; and text from a package that would act on a terminal
//! (ANSI and OSC sequences) printed escaped. `runner run` into a closed pipe and a full
//! disk is in `flood.rs` (it needs BPF).

mod common;

use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A pipe whose read end is already closed: writing to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just created and are owned here; the read end is closed at once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

fn runner(args: &[&str], stdout: Stdio, stderr: Stdio) -> Output {
    Command::new(common::runner())
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn no_panic(out: &Output) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

fn object() -> PathBuf {
    // A BPF object to pack: built once from a fixture.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("outputs");
    std::fs::create_dir_all(&dir).unwrap();
    let object = dir.join("sigsnoop.bpf.o");
    if !object.exists() {
        let pkg = dir.join("built.json");
        let done = common::run_runner(&[
            "build",
            common::repo()
                .join("programs/sigsnoop/sigsnoop.bpf.c")
                .to_str()
                .unwrap(),
            "-o",
            pkg.to_str().unwrap(),
            "--object",
            object.to_str().unwrap(),
        ]);
        assert!(done.status.success(), "{}", done.stderr);
    }
    object
}

#[test]
fn info_into_a_closed_pipe_exits_0_quietly() {
    let pkg = common::sigsnoop_package();
    let out = runner(
        &["info", pkg.to_str().unwrap()],
        closed_pipe(),
        Stdio::piped(),
    );
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn info_onto_a_full_disk_is_one_line() {
    let pkg = common::sigsnoop_package();
    let out = runner(&["info", pkg.to_str().unwrap()], dev_full(), Stdio::piped());
    no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "runner: error: cannot write to stdout: No space left on device (os error 28)\n"
    );
}

#[test]
fn pack_and_build_onto_a_full_disk_are_one_line() {
    let object = object();
    let source = common::repo().join("programs/sigsnoop/sigsnoop.bpf.c");
    for args in [
        vec!["pack", object.to_str().unwrap(), "-o", "/dev/full"],
        vec!["build", source.to_str().unwrap(), "-o", "/dev/full"],
    ] {
        let out = runner(&args, Stdio::piped(), Stdio::piped());
        no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        // (`runner build` as root says once that clang is confined.)
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("runner: building as root: "))
            .collect();
        assert_eq!(
            lines,
            ["runner: error: cannot write `/dev/full`: No space left on device (os error 28)"],
            "{args:?}"
        );
    }
}

#[test]
fn pack_and_build_with_closed_or_full_stdout_and_stderr_still_write_the_package() {
    let object = object();
    let source = common::repo().join("programs/sigsnoop/sigsnoop.bpf.c");
    let dir = tempfile::tempdir().unwrap();
    let out_pkg = dir.path().join("p.json");
    let out_s = out_pkg.to_str().unwrap();
    for args in [
        vec!["pack", object.to_str().unwrap(), "-o", out_s],
        vec!["build", source.to_str().unwrap(), "-o", out_s],
    ] {
        for (stdout, stderr) in [(closed_pipe(), closed_pipe()), (dev_full(), dev_full())] {
            let _ = std::fs::remove_file(&out_pkg);
            let out = runner(&args, stdout, stderr);
            assert_eq!(out.status.code(), Some(0), "{args:?}");
            let written = std::fs::read_to_string(&out_pkg).unwrap();
            assert!(written.contains("\"format_version\": 1"), "{args:?}");
        }
    }
}

/// The sigsnoop package with terminal sequences in every free-text field.
fn hostile_package(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(common::sigsnoop_package()).unwrap();
    let mut pkg: serde_json::Value = serde_json::from_str(&text).unwrap();
    let osc = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m";
    pkg["name"] = format!("snoop{osc}").into();
    pkg["description"] = format!("a description{osc}").into();
    pkg["license"] = format!("GPL{osc}").into();
    pkg["globals"][0]["help"] = format!("help{osc}").into();
    let path = dir.join("hostile.json");
    std::fs::write(&path, serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
    path
}

fn assert_no_controls(what: &str, out: &str) {
    let bad: Vec<char> = out
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(bad.is_empty(), "{what}: {bad:?} in\n{out}");
}

#[test]
fn text_from_a_package_cannot_act_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_package(dir.path());
    let p = path.to_str().unwrap();
    let info = common::run_runner(&["info", p]);
    assert!(info.status.success(), "{}", info.stderr);
    assert_no_controls("info", &info.stdout);
    assert!(
        info.stdout
            .contains("snoop\\x1b]0;owned\\x07\\x1b[2J\\u{9b}31m: a description\\x1b]0;owned"),
        "{}",
        info.stdout
    );
    let help = common::run_runner(&["run", p, "--help"]);
    assert!(help.status.success(), "{}", help.stderr);
    assert_no_controls("run --help", &help.stdout);
    assert!(
        help.stdout.contains("help\\x1b]0;owned\\x07"),
        "{}",
        help.stdout
    );
    // An error that names the package's programs: escaped on stderr too.
    let err = common::run_runner(&["run", p, "--attach", "nope\u{1b}[2J=1"]);
    assert_eq!(err.status.code(), Some(2));
    assert_no_controls("usage error", &err.stderr);
}
