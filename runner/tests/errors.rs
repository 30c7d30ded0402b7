//! Every bad input gets one clear line on stderr (`runner: error: ...`, or clap's usage
//! error), exit status 1 for a runtime failure and 2 for bad usage, and never a panic.
//! Packages are broken on purpose from the committed sigsnoop package; the programs the
//! kernel must refuse are built from `fixtures/errors/` with `runner build`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::{run_runner, Finished};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/errors")
        .join(name)
}

fn pkg() -> String {
    common::sigsnoop_package().to_str().unwrap().to_string()
}

/// The committed package as JSON, to be broken.
fn sigsnoop_json() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(common::sigsnoop_package()).unwrap()).unwrap()
}

fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

fn object_bytes(value: &serde_json::Value) -> Vec<u8> {
    let b64 = value["object"]["base64"].as_str().unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn set_object_bytes(value: &mut serde_json::Value, bytes: &[u8]) {
    value["object"]["base64"] = base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into();
}

/// A runtime failure: exit 1 and exactly one line, `runner: error: ...`. Returns it.
fn runtime_error(done: &Finished) -> &str {
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    assert_eq!(done.status.code(), Some(1), "stderr: {}", done.stderr);
    assert_eq!(done.stdout, "", "nothing on stdout");
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{}", done.stderr);
    assert!(lines[0].starts_with("runner: error: "), "{}", lines[0]);
    lines[0]
}

/// A usage error from clap: exit 2, `error: ...` first, no panic. Returns the first line.
fn usage_error(done: &Finished) -> &str {
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    assert_eq!(done.status.code(), Some(2), "stderr: {}", done.stderr);
    assert_eq!(done.stdout, "");
    let first = done.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{}", done.stderr);
    first
}

#[test]
fn missing_package_file() {
    let done = run_runner(&["run", "/nonexistent/sigsnoop.json"]);
    assert_eq!(
        runtime_error(&done),
        "runner: error: cannot read package `/nonexistent/sigsnoop.json`: No such file or directory (os error 2)"
    );
    let done = run_runner(&["info", "/nonexistent/sigsnoop.json"]);
    assert!(runtime_error(&done).contains("cannot read package `/nonexistent/sigsnoop.json`"));
}

#[test]
fn not_json_names_line_and_column_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "{\n  \"format_version\": 1,\n  oops\n}\n").unwrap();
    let done = run_runner(&["run", path.to_str().unwrap()]);
    let line = runtime_error(&done);
    let want = format!(
        "runner: error: package `{}` is not valid JSON: ",
        path.display()
    );
    assert!(line.starts_with(&want), "{line}");
    assert_eq!(line.matches("line 3 column 3").count(), 1, "{line}");
}

#[test]
fn wrong_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sigsnoop_json();
    v["format_version"] = 2.into();
    let path = write_json(dir.path(), "v2.json", &v);
    let done = run_runner(&["run", &path]);
    assert_eq!(
        runtime_error(&done),
        format!(
            "runner: error: package `{path}` has format version 2; this runner reads version 1"
        )
    );
    v.as_object_mut().unwrap().remove("format_version");
    let path = write_json(dir.path(), "none.json", &v);
    let done = run_runner(&["run", &path]);
    assert!(
        runtime_error(&done).ends_with("has format version (none); this runner reads version 1")
    );
}

#[test]
fn corrupt_object_fails_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sigsnoop_json();
    let mut object = object_bytes(&v);
    object[1000] ^= 0xff;
    object[2000] ^= 0x55;
    set_object_bytes(&mut v, &object);
    let path = write_json(dir.path(), "corrupt.json", &v);
    let done = run_runner(&["run", &path]);
    let line = runtime_error(&done);
    let want =
        format!("runner: error: package `{path}`: embedded object checksum mismatch (sha256 ");
    assert!(line.starts_with(&want), "{line}");
    let said = v["object"]["sha256"].as_str().unwrap();
    assert!(
        line.ends_with(&format!(", the package says {said})")),
        "{line}"
    );
}

#[test]
fn truncated_object_fails_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sigsnoop_json();
    let object = object_bytes(&v);
    let full = object.len();
    set_object_bytes(&mut v, &object[..full - 100]);
    let path = write_json(dir.path(), "short.json", &v);
    let done = run_runner(&["run", &path]);
    assert_eq!(
        runtime_error(&done),
        format!(
            "runner: error: package `{path}`: embedded object is {} bytes, the package says {full} (truncated?)",
            full - 100
        )
    );
}

#[test]
fn description_edited_away_from_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let mismatch = |what: &str| {
        format!("the embedded object does not match the package's description ({what}); rebuild the package")
    };

    let mut v = sigsnoop_json();
    v["globals"][1]["offset"] = 12.into();
    let path = write_json(dir.path(), "offset.json", &v);
    let line = runtime_error(&run_runner(&["run", &path])).to_string();
    assert_eq!(
        line,
        format!(
            "runner: error: package `{path}`: {}",
            mismatch("global `target_signal`")
        )
    );

    let mut v = sigsnoop_json();
    v["events"][0]["type"]["members"][1]["offset"] = 5.into();
    let path = write_json(dir.path(), "event.json", &v);
    let line = runtime_error(&run_runner(&["run", &path])).to_string();
    assert!(line.ends_with(&mismatch("event layout")), "{line}");

    // A program listed differently is presentation, not safety: the runner warns and runs
    // what the object says (compat.rs covers it).

    // A different help text is not a mismatch: help comes from the source, not the object.
    let mut v = sigsnoop_json();
    v["globals"][0]["help"] = "edited".into();
    let path = write_json(dir.path(), "help.json", &v);
    let done = run_runner(&["run", &path, "--help"]);
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert!(
        done.stdout.contains("edited [pid_t, default 0]"),
        "{}",
        done.stdout
    );
}

#[test]
fn corrupt_btf_with_a_valid_checksum_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let v = sigsnoop_json();
    let object = object_bytes(&v);
    // The .BTF section starts with magic 0xeb9f; break it, then fix size and checksum.
    let at = object.windows(2).position(|w| w == [0x9f, 0xeb]).unwrap();
    let mut broken = object.clone();
    broken[at] = 0;
    broken[at + 1] = 0;
    let mut v = v.clone();
    set_object_bytes(&mut v, &broken);
    let sha = sha2_hex(&broken);
    v["object"]["sha256"] = sha.into();
    let path = write_json(dir.path(), "btf.json", &v);
    let line = runtime_error(&run_runner(&["run", &path])).to_string();
    let want = format!("runner: error: package `{path}`: the embedded object is not usable: ");
    assert!(line.starts_with(&want) && line.contains("BTF"), "{line}");
}

fn sha2_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn bad_flag_values_are_usage_errors_naming_the_flag() {
    let p = pkg();
    for (args, first) in [
        (
            vec!["--target_signal", "abc"],
            "error: invalid value 'abc' for '--target_signal <INT>': expected an integer",
        ),
        (
            vec!["--target_signal", "99999999999"],
            "error: invalid value '99999999999' for '--target_signal <INT>': 99999999999 is out of range for i32 (-2147483648..=2147483647)",
        ),
        (
            vec!["--failed_only=maybe"],
            "error: invalid value 'maybe' for '--failed_only[=<BOOL>]': expected true or false",
        ),
        (vec!["--filtered-pid", "-"], "error: invalid value '-' for '--filtered_pid <INT>': expected an integer"),
        (
            vec!["--duration", "soon"],
            "error: invalid value 'soon' for '--duration <SECONDS>': expected seconds, like 5, 1.5s, 200ms or 2m",
        ),
        (
            vec!["-o", "xml"],
            "error: invalid value 'xml' for '--output <FORMAT>'",
        ),
    ] {
        let mut all = vec!["run", p.as_str()];
        all.extend(&args);
        let done = run_runner(&all);
        assert_eq!(usage_error(&done), first, "runner run {args:?}");
    }
}

#[test]
fn unknown_flags_and_commands_are_usage_errors() {
    let p = pkg();
    let done = run_runner(&["run", &p, "--nope"]);
    assert_eq!(
        usage_error(&done),
        "error: unexpected argument '--nope' found"
    );
    let done = run_runner(&["run", &p, "stray"]);
    assert_eq!(
        usage_error(&done),
        "error: unexpected argument 'stray' found"
    );
    // A bool flag takes its value after `=` only.
    let done = run_runner(&["run", &p, "--failed_only", "true"]);
    assert_eq!(
        usage_error(&done),
        "error: unexpected argument 'true' found"
    );
    let done = run_runner(&["frobnicate"]);
    assert_eq!(
        usage_error(&done),
        "error: unrecognized subcommand 'frobnicate'"
    );
    let done = run_runner(&["run"]);
    assert_eq!(
        usage_error(&done),
        "error: the following required arguments were not provided:"
    );
    assert!(done.stderr.contains("<PACKAGE>"), "{}", done.stderr);
    let done = run_runner(&[]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
}

/// Help text with every run of whitespace made one space, so wrapping does not matter.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn run_help_shows_the_description_and_every_option() {
    let p = pkg();
    for help in ["--help", "-h"] {
        let done = run_runner(&["run", &p, help]);
        assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
        assert_eq!(done.stderr, "");
        let text = flat(&done.stdout);
        for want in [
            "trace signals sent by kill, tkill and tgkill, and every other signal the kernel generates.",
            &format!("Usage: runner run {p} [OPTIONS]"),
            // The package's globals: flag, type, default and the author's help.
            "--filtered_pid <INT> only signals sent by this process (0: any) [pid_t, default 0]",
            "--target_signal <INT> only this signal (0: any) [int, default 0]",
            "--failed_only[=<BOOL>] only signals whose delivery failed [bool, default false]",
            "--syscalls_only[=<BOOL>] trace only the kill, tkill and tgkill syscalls [bool, default false]",
            // The runner's own options.
            "-o, --output <FORMAT> How events are printed (none: not at all, for a run that only serves --metrics) [default: table] [possible values: table, json, csv, none]",
            "--metrics <ADDR>",
            "-n, --names",
            "--duration <SECONDS> Stop after this long",
            "-v, --verbose",
            "--attach <PROG=TARGET>",
        ] {
            assert!(text.contains(want), "{help}: {want:?} not in\n{}", done.stdout);
        }
        // The lost-event counter is no option.
        assert!(!text.contains("lost_events"), "{}", done.stdout);
    }
    let done = run_runner(&["--help"]);
    assert_eq!(done.status.code(), Some(0));
    for cmd in ["build", "pack", "info", "run"] {
        assert!(
            done.stdout.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{}",
            done.stdout
        );
    }
}

#[test]
fn without_root_or_cap_bpf_one_line_says_what_is_needed() {
    let p = pkg();
    let runner = common::runner();
    // SAFETY: geteuid cannot fail.
    let out = if unsafe { libc::geteuid() } == 0 {
        // Become nobody, with no capabilities at all.
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&runner)
            .args(["run", &p, "--duration", "1"])
            .output()
            .expect("run setpriv")
    } else {
        Command::new(&runner)
            .args(["run", &p, "--duration", "1"])
            .output()
            .unwrap()
    };
    let done = Finished {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status,
    };
    assert_eq!(
        runtime_error(&done),
        "runner: error: loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (this process has neither CAP_BPF nor CAP_SYS_ADMIN)"
    );
}

/// `runner build` a fixture into `dir`; returns the package path.
fn build(dir: &Path, source: &str) -> String {
    let out = dir.join(source.replace(".bpf.c", ".json"));
    let done = run_runner(&[
        "build",
        fixture(source).to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        done.status.success(),
        "runner build {source}: {}",
        done.stderr
    );
    out.to_str().unwrap().to_string()
}

/// Names of the BPF programs loaded right now.
fn loaded_programs() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
        .expect("run bpftool");
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn missing_tracepoint_is_named() {
    common::require_bpf();
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "no_tracepoint.bpf.c");
    let done = run_runner(&["run", &path, "--duration", "5"]);
    let line = runtime_error(&done);
    assert!(
        line.starts_with(
            "runner: error: tracepoint `nonexistent_cat/nonexistent_tp` (program `on_nothing`) does not exist on this kernel"
        ),
        "{line}"
    );
    assert!(!loaded_programs().iter().any(|n| n == "on_nothing"));
}

/// A verifier rejection: the first line says which program, the rest is the end of the
/// verifier log, which must contain `phrase`.
fn rejected(source: &str, program: &str, phrase: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), source);
    let done = run_runner(&["run", &path, "--duration", "5"]);
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert_eq!(done.stdout, "");
    let name = source.trim_end_matches(".bpf.c");
    let first = done.stderr.lines().next().unwrap();
    let want = format!(
        "runner: error: the verifier rejected program `{program}` of `{name}`; end of its log:"
    );
    assert_eq!(first, want, "{}", done.stderr);
    let log: Vec<&str> = done.stderr.lines().skip(1).collect();
    assert!(!log.is_empty() && log.len() <= 20, "{}", done.stderr);
    assert!(
        log.iter().any(|l| l.contains(phrase)),
        "{phrase:?} not in\n{}",
        done.stderr
    );
    // libbpf's own chatter is not repeated around the log.
    assert!(!done.stderr.contains("libbpf:"), "{}", done.stderr);
    assert!(!loaded_programs().iter().any(|n| n == program));
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn verifier_rejects_an_unchecked_map_value() {
    common::require_bpf();
    rejected(
        "null_deref.bpf.c",
        "no_null_check",
        "R0 invalid mem access 'map_value_or_null'",
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn verifier_rejects_an_unbounded_stack_read() {
    common::require_bpf();
    rejected(
        "stack_oob.bpf.c",
        "stack_oob",
        "math between fp pointer and register with unbounded min value",
    );
}

/// tracefs not mounted: the runner mounts it itself and says so. Run in a private mount
/// namespace (unshare -m) where tracefs is unmounted, so the machine is not touched.
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn unmounted_tracefs_is_mounted_by_the_runner() {
    common::require_bpf();
    let script = format!(
        "umount /sys/kernel/debug/tracing 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; \
         umount /sys/kernel/tracing 2>/dev/null; \
         test ! -d /sys/kernel/tracing/events || {{ echo still mounted >&2; exit 99; }}; \
         exec {} run {} --duration 0.2",
        common::runner().display(),
        pkg()
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.lines().next() == Some("runner: mounted tracefs on /sys/kernel/tracing"),
        "{stderr}"
    );
    assert!(stderr.contains("programs attached"), "{stderr}");
}

#[test]
fn odd_arguments_are_usage_errors_not_panics() {
    let pkg = pkg();
    for args in [
        vec!["--duration", "1e20"],
        vec!["--interval", "0"],
        vec!["--attach", "nosuch=x"],
        vec!["--attach", "kill_exit=/bin/true:main"],
    ] {
        let mut argv = vec!["run", pkg.as_str()];
        argv.extend(&args);
        let done = run_runner(&argv);
        assert_eq!(done.status.code(), Some(2), "{args:?}: {}", done.stderr);
        assert!(
            done.stderr.starts_with("error: "),
            "{args:?}: {}",
            done.stderr
        );
        assert!(
            !done.stderr.contains("panicked"),
            "{args:?}: {}",
            done.stderr
        );
    }
    // Not UTF-8: clap's usage error, no panic.
    use std::os::unix::ffi::OsStrExt as _;
    let bad = std::ffi::OsStr::from_bytes(b"\xff");
    let out = std::process::Command::new(common::runner())
        .args(["run", pkg.as_str(), "--target_signal"])
        .arg(bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(common::runner())
        .arg("info")
        .arg(bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("runner: error: cannot read package"));
}
