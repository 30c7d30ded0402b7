//! `runner build` builds sources written for libbpf-tools unchanged (no root needed):
//! the host's system include directories, kfunc prototypes in the generated `vmlinux.h`,
//! CO-RE flavour structs that are never the event, the description taken only from the
//! comments leading the file, and a uprobe section that names no binary. Fixtures live in
//! `fixtures/build/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_runner, Finished};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/build")
        .join(name)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn ok(done: &Finished) {
    assert!(done.status.success(), "{}\n{}", done.status, done.stderr);
}

fn build(source: &Path, dir: &Path) -> Value {
    let out = dir.join("package.json");
    ok(&run_runner(&["build", s(source), "-o", s(&out)]));
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// `<vmlinux.h>` in angle brackets and the host's `<asm/errno.h>` resolve; of the structs
/// the file defines, the CO-RE flavours (`___x`) are no candidates, so the one
/// struct left is the event; the comment after the includes is no description, and the
/// leading ones are license lines.
#[test]
fn a_libbpf_tools_style_source_builds_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = build(&fixture("flavours.bpf.c"), dir.path());
    assert_eq!(pkg["events"][0]["struct"], "bind_event");
    assert_eq!(pkg["description"], "");
    let members: Vec<&str> = pkg["events"][0]["type"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["pid", "ret", "sectors"]);
}

/// Without the system include directories clang cannot find `<asm/errno.h>` for the BPF
/// target, so the fixture above really depends on them.
#[test]
fn without_the_host_include_dirs_asm_errno_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("errno.c");
    std::fs::write(&source, "#include <asm/errno.h>\nint x = EADDRINUSE;\n").unwrap();
    let out = Command::new("clang-19")
        .args(["-target", "bpf", "-c", "-o", "/dev/null"])
        .arg(&source)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'asm/errno.h' file not found"));
}

/// The generated `vmlinux.h` declares the running kernel's kfuncs, the way bpftool 7.5
/// does, and is the same bytes every time it is generated.
#[test]
fn generated_vmlinux_declares_kfuncs_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let mut headers = Vec::new();
    for run in ["a", "b"] {
        let dir = tmp.path().join(run);
        let done = Command::new(common::runner())
            .env("RUNNER_CACHE_DIR", tmp.path().join(format!("cache-{run}")))
            .args(["headers", s(&dir)])
            .output()
            .unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        headers.push(std::fs::read_to_string(dir.join("vmlinux.h")).unwrap());
    }
    assert!(headers[0] == headers[1], "two generations differ");
    let header = &headers[0];
    for line in [
        "#ifndef BPF_NO_KFUNC_PROTOTYPES",
        "extern struct task_struct *bpf_task_from_pid(s32 pid) __weak __ksym;",
        "extern void bpf_task_release(struct task_struct *p) __weak __ksym;",
    ] {
        assert!(header.lines().any(|l| l == line), "no `{line}`");
    }
    let block = header.find("#ifndef BPF_NO_KFUNC_PROTOTYPES").unwrap();
    let pop = header.rfind("#pragma clang attribute pop").unwrap();
    assert!(
        pop < block,
        "kfuncs must follow the preserve_access_index pragma"
    );
    assert!(header.trim_end().ends_with("#endif /* __VMLINUX_H__ */"));
}

/// A program calling kfuncs it never declares (bcc's current sigsnoop calls
/// `bpf_task_from_pid`) builds against the generated header.
#[test]
fn a_source_using_undeclared_kfuncs_builds() {
    let dir = tempfile::tempdir().unwrap();
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus/kfunc/kfunc.bpf.c");
    let pkg = build(&source, dir.path());
    assert_eq!(pkg["programs"][0]["name"], "on_prctl");
}

/// `SEC("uretprobe/readline")` names a function but no binary: `runner run` without
/// `--attach` is the usage error (exit 2) every uprobe without a target gets, naming the
/// function; `runner info` says the binary comes at run time.
#[test]
fn a_uprobe_naming_no_binary_needs_one_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    build(&fixture("readline.bpf.c"), dir.path());
    let pkg = dir.path().join("package.json");
    let done = run_runner(&["run", s(&pkg), "--duration", "1"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert_eq!(
        done.stderr.trim_end(),
        "error: program `printret` (uretprobe) needs a target given at run time: pass --attach printret=<BINARY>:readline"
    );
    let info = run_runner(&["info", s(&pkg)]);
    ok(&info);
    assert!(
        info.stdout
            .contains("printret         uretprobe readline (binary given at run time)"),
        "{}",
        info.stdout
    );
}
