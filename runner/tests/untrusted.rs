//! `runner build` of a source nobody vouches for: clang reads only what a build needs
//! (Landlock), so a source cannot pull a root-only file into a package by `#include`,
//! `#embed` or a planted symbolic link; and the cache of generated headers is private and
//! verified, so a header planted or changed there is never compiled.

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Command;

use common::Finished;

const PROGRAM: &str = "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n\
    SEC(\"tracepoint/syscalls/sys_enter_getppid\") int p(void *ctx) { return 0; }\n\
    char LICENSE[] SEC(\"license\") = \"GPL\";\n";

fn build(dir: &Path, source: &str, extra: &[&str], env: &[(&str, Option<&Path>)]) -> Finished {
    std::fs::write(dir.join("prog.bpf.c"), source).unwrap();
    let mut cmd = Command::new(common::runner());
    cmd.current_dir(dir)
        .args(["build", "prog.bpf.c", "-o", "prog.json"])
        .args(extra);
    for (var, value) in env {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    let out = cmd.output().unwrap();
    Finished {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status,
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_source_cannot_read_root_only_files_into_a_package() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink("/etc/shadow", d.join("secret.h")).unwrap();
    let shadow_head = std::fs::read_to_string("/etc/shadow")
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string));
    for (what, line) in [
        (
            "#embed",
            "const char s[] = {\n#embed \"/etc/shadow\"\n, 0};\n",
        ),
        ("#include of a path", "#include \"/etc/shadow\"\n"),
        ("a planted link", "#include \"secret.h\"\n"),
    ] {
        let _ = std::fs::remove_file(d.join("prog.json"));
        let done = build(d, &format!("{PROGRAM}{line}"), &[], &[]);
        assert_eq!(done.status.code(), Some(1), "{what}: {}", done.stderr);
        assert!(!d.join("prog.json").exists(), "{what}");
        assert!(
            done.stderr.contains("/etc/shadow' file not found")
                || done.stderr.contains("Permission denied"),
            "{what}: {}",
            done.stderr
        );
        if let Some(head) = &shadow_head {
            assert!(
                !done.stderr.contains(head.as_str()),
                "{what}: {}",
                done.stderr
            );
        }
        if is_root() {
            assert!(
                done.stderr
                    .starts_with("runner: building as root: clang may read only "),
                "{}",
                done.stderr
            );
        }
    }
}

#[test]
fn a_source_reads_its_directory_public_links_and_include_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("extra.h"), "#define EXTRA 1\n").unwrap();
    let public = elsewhere.path().join("public.h");
    std::fs::write(&public, "#define PUBLIC 1\n").unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&public, dir.path().join("public.h")).unwrap();
    std::fs::write(dir.path().join("local.h"), "#define LOCAL 1\n").unwrap();
    let source = format!(
        "{PROGRAM}#include \"local.h\"\n#include \"public.h\"\n#include \"extra.h\"\n\
         const volatile int sum = LOCAL + PUBLIC + EXTRA;\n"
    );
    let include = format!("--cflag=-I{}", elsewhere.path().display());
    let done = build(dir.path(), &source, &[&include], &[]);
    assert!(done.status.success(), "{}", done.stderr);
    let pkg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("prog.json")).unwrap()).unwrap();
    assert_eq!(pkg["globals"][0]["default"], 3);
}

/// The one cached header in `cache`.
fn cached_header(cache: &Path) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn the_header_cache_is_private_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let env = [("RUNNER_CACHE_DIR", Some(cache.as_path()))];
    let done = build(dir.path(), PROGRAM, &[], &env);
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);
    let header = cached_header(&cache);
    let good = std::fs::read(&header).unwrap();
    assert!(good.starts_with(b"/* runner cache: sha256 "));

    // Changed behind the runner's back: not compiled, made anew.
    let mut planted = good.clone();
    planted.extend_from_slice(b"\n#error planted\n");
    std::fs::write(&header, &planted).unwrap();
    let done = build(dir.path(), PROGRAM, &[], &env);
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(std::fs::read(&header).unwrap(), good);

    // A directory someone else owns is not used at all, and says why.
    if is_root() {
        std::fs::write(&header, &planted).unwrap();
        std::os::unix::fs::chown(&cache, Some(65534), Some(65534)).unwrap();
        let done = build(dir.path(), PROGRAM, &[], &env);
        assert!(done.status.success(), "{}", done.stderr);
        assert!(
            done.stderr.contains(&format!(
                "runner: not using the cache {}: owned by uid 65534, not 0",
                cache.display()
            )),
            "{}",
            done.stderr
        );
        assert_eq!(
            std::fs::read(&header).unwrap(),
            planted,
            "the planted file was touched"
        );
    }
}

#[test]
fn without_home_the_cache_is_in_the_users_home_never_in_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Path::new("/tmp/.cache/runner");
    let before: Vec<_> = std::fs::read_dir(shared)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let done = build(
        dir.path(),
        PROGRAM,
        &[],
        &[
            ("HOME", None),
            ("XDG_CACHE_HOME", None),
            ("RUNNER_CACHE_DIR", None),
        ],
    );
    assert!(done.status.success(), "{}", done.stderr);
    let after: Vec<_> = std::fs::read_dir(shared)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(
        before, after,
        "runner build wrote into the shared /tmp/.cache/runner"
    );
}
