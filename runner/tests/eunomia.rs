//! Packages written by eunomia-bpf's compiler run unchanged: `runner info` and `runner run`
//! read them like ours (flags from their globals, events decoded by BTF). They are read
//! from the shared corpus (`$RUNNER_CORPUS/eunomia`, see common::corpus); without it these
//! tests say so in one line and pass.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_runner, Tracer};
use serde_json::Value;

fn eunomia(test: &str, name: &str) -> Option<PathBuf> {
    Some(common::corpus(test)?.join("eunomia").join(name))
}

#[test]
fn info_reads_every_eunomia_package() {
    let Some(dir) = eunomia("info_reads_every_eunomia_package", "") else {
        return;
    };
    let expect = [
        ("bootstrap.json", "client", "--min_duration_ns"),
        ("simple_prog_3.json", "simple_prog_3", "--const_val_3"),
        // fmt2 is `const` without `volatile`: no flag, and info says why.
        (
            "simple_prog_4.json",
            "test",
            "fmt2: a `const` without `volatile`",
        ),
        ("int128_test.json", "prog", "__eunomia_dummy_S_ptr"),
    ];
    for (file, name, shows) in expect {
        let done = run_runner(&["info", dir.join(file).to_str().unwrap()]);
        assert_eq!(done.status.code(), Some(0), "{file}: {}", done.stderr);
        assert_eq!(done.stderr, "", "{file}");
        assert_eq!(done.stdout.lines().next(), Some(name), "{file}");
        assert!(done.stdout.contains(shows), "{file}:\n{}", done.stdout);
    }
    let bootstrap = run_runner(&["info", dir.join("bootstrap.json").to_str().unwrap()]);
    assert!(
        bootstrap.stdout.contains("map `rb` (ringbuf) carries struct event: pid@0 ppid@4 exit_code@8 duration_ns@16 comm@24[16] filename@40[127] exit_event@167 et@168 (size 176)"),
        "{}",
        bootstrap.stdout
    );
}

#[test]
fn a_broken_eunomia_package_is_one_clear_error() {
    let Some(path) = eunomia(
        "a_broken_eunomia_package_is_one_clear_error",
        "bootstrap.json",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let original: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cases: [(&str, Value, &str); 3] = [
        (
            "size.json",
            serde_json::json!(1000),
            "bpf_object is not a zlib stream of 1000 bytes",
        ),
        (
            "huge.json",
            serde_json::json!(1u64 << 40),
            "bpf_object_size 1099511627776 is more than this runner unpacks",
        ),
        ("base64.json", Value::Null, "bpf_object is not valid base64"),
    ];
    for (name, size, message) in cases {
        let mut v = original.clone();
        if size.is_null() {
            v["bpf_object"] = "eJz*".into();
        } else {
            v["bpf_object_size"] = size;
        }
        let file = tmp.path().join(name);
        std::fs::write(&file, v.to_string()).unwrap();
        let done = run_runner(&["info", file.to_str().unwrap()]);
        assert_eq!(done.status.code(), Some(1), "{name}: {}", done.stderr);
        assert_eq!(done.stderr.lines().count(), 1, "{name}: {}", done.stderr);
        assert!(done.stderr.contains(message), "{name}: {}", done.stderr);
        assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    }
}

/// A short-lived process with a name of our own: a copy of /bin/false (exit status 1).
fn probe_binary(dir: &Path) -> PathBuf {
    let probe = dir.join("eun-probe");
    std::fs::copy("/bin/false", &probe).unwrap();
    probe
}

fn events_of(stdout: &str, pid: u32) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["pid"] == pid)
        .collect()
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn eunomia_bootstrap_runs_and_decodes_exec_and_exit() {
    common::require_bpf();
    let Some(pkg) = eunomia(
        "eunomia_bootstrap_runs_and_decodes_exec_and_exit",
        "bootstrap.json",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let probe = probe_binary(tmp.path());
    let pkg = pkg.to_str().unwrap();

    let tracer = Tracer::start(&[pkg, "-o", "json"]);
    let child = Command::new(&probe).status().unwrap();
    assert_eq!(child.code(), Some(1));
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
    // The child's pid is not known before it runs: find its exec by the file name.
    let exec = done
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["filename"] == probe.to_str().unwrap())
        .unwrap_or_else(|| panic!("no exec of {}:\n{}", probe.display(), done.stdout));
    let pid = exec["pid"].as_u64().unwrap() as u32;
    let events = events_of(&done.stdout, pid);
    assert_eq!(events.len(), 2, "{events:?}");
    let (exec, exit) = (&events[0], &events[1]);
    assert_eq!(exec["ppid"], std::process::id());
    assert_eq!(exec["comm"], "eun-probe");
    assert_eq!(exec["exit_event"], false);
    assert_eq!(exit["exit_event"], true);
    assert_eq!(exit["exit_code"], 1);
    assert_eq!(exit["comm"], "eun-probe");
    assert!(exit["duration_ns"].as_u64().unwrap() > 0, "{exit}");

    // Its flag works: with a minimum duration of 10 s, the short-lived probe is not shown.
    let tracer = Tracer::start(&[pkg, "-o", "json", "--min_duration_ns", "10000000000"]);
    let child = Command::new(&probe).spawn().unwrap();
    let pid = child.id();
    let _ = child.wait_with_output();
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(events_of(&done.stdout, pid), Vec::<Value>::new());
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn an_eunomia_package_without_programs_says_so() {
    common::require_bpf();
    let Some(pkg) = eunomia(
        "an_eunomia_package_without_programs_says_so",
        "int128_test.json",
    ) else {
        return;
    };
    let done = run_runner(&["run", pkg.to_str().unwrap(), "--duration", "5"]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert_eq!(
        done.stderr.trim_end(),
        "runner: error: `prog` has no program to attach: nothing would be traced"
    );
}
