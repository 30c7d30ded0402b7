//! The packer, as a user drives it: `runner build`, `runner pack` and `runner info`. None
//! of this needs root. Fixtures live in `fixtures/pack/`; objects compiled by hand use
//! clang-19 with the headers `runner headers` writes (the ones `runner build` uses).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use common::{run_runner, Finished};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pack")
        .join(name)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Run the runner in `cwd`.
fn run_in(cwd: &Path, args: &[&str]) -> Finished {
    let out = Command::new(common::runner())
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    Finished {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: common::without_root_note(&String::from_utf8_lossy(&out.stderr)),
        status: out.status,
    }
}

fn ok(done: &Finished) {
    assert!(done.status.success(), "{}\n{}", done.status, done.stderr);
}

/// Exit 1, no panic, and a first line that is exactly `first`.
fn fails_with(done: &Finished, first: &str) {
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert_eq!(
        done.stderr.lines().next().unwrap_or_default(),
        first,
        "whole stderr:\n{}",
        done.stderr
    );
}

/// The headers `runner build` compiles with (libbpf's, embedded in the runner, and a
/// `vmlinux.h` for the running kernel), written out once by `runner headers`: a fixture
/// compiled by hand sees what `runner build` would give it, not what the host has.
fn include_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pack-include");
        let done = run_runner(&["headers", s(&dir)]);
        ok(&done);
        assert!(dir.join("bpf/bpf_helpers.h").is_file() && dir.join("vmlinux.h").is_file());
        dir
    })
}

/// Compile a fixture by hand (`clang-19 [-g] -O2 -target bpf`) into `dir`.
fn compile(source: &str, dir: &Path, debug: bool) -> PathBuf {
    let object = dir.join(source.replace(".c", ".o"));
    let mut cmd = Command::new("clang-19");
    if debug {
        cmd.arg("-g");
    }
    let out = cmd
        // -nostdinc: only the headers `runner headers` wrote, never the host's.
        .args(["-nostdinc", "-O2", "-target", "bpf", "-I"])
        .arg(include_dir())
        .arg("-c")
        .arg(fixture(source))
        .arg("-o")
        .arg(&object)
        .output()
        .expect("run clang-19");
    assert!(
        out.status.success(),
        "clang-19 {source}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    object
}

fn int(c: &str, size: u32, signed: bool) -> Value {
    json!({"c": c, "kind": "int", "size": size, "signed": signed})
}

fn chars(len: u32) -> Value {
    json!({"c": format!("char[{len}]"), "kind": "array", "len": len, "elem": {"c": "char", "kind": "char", "signed": true}})
}

fn member(name: &str, offset: u32, ty: Value) -> Value {
    json!({"name": name, "offset": offset, "type": ty})
}

#[allow(clippy::too_many_arguments)]
fn global(
    name: &str,
    section: &str,
    offset: u64,
    size: u64,
    ty: Value,
    default: Value,
    flag: Value,
    help: &str,
) -> Value {
    json!({
        "name": name, "section": section, "offset": offset, "size": size, "type": ty,
        "default": default, "flag": flag, "help": help,
    })
}

fn flag(name: &str) -> Value {
    json!({"name": name})
}

fn no_flag(why: &str) -> Value {
    json!({"none": why})
}

/// The one line `runner wrote <...>package.json`.
fn wrote_package_json(done: &Finished) -> bool {
    let lines: Vec<&str> = done.stderr.lines().collect();
    lines.len() == 1 && lines[0].starts_with("runner: wrote ") && lines[0].ends_with("package.json")
}

#[test]
fn build_reproduces_the_committed_sigsnoop_package() {
    let committed = std::fs::read(common::sigsnoop_package()).unwrap();
    let repo = common::repo();
    let tmp = tempfile::tempdir().unwrap();

    // From the repository, with a relative path.
    let a = tmp.path().join("a.json");
    ok(&run_in(
        &repo,
        &["build", "programs/sigsnoop/sigsnoop.bpf.c", "-o", s(&a)],
    ));
    assert!(
        std::fs::read(&a).unwrap() == committed,
        "build from the repo differs from the committed package"
    );

    // From another directory, with an absolute path.
    let b = tmp.path().join("b.json");
    let source = repo.join("programs/sigsnoop/sigsnoop.bpf.c");
    ok(&run_in(tmp.path(), &["build", s(&source), "-o", "b.json"]));
    assert!(
        std::fs::read(&b).unwrap() == committed,
        "build from another cwd differs"
    );

    // From a copy of the sources elsewhere, writing the default package.json beside them.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for file in [
        "sigsnoop.bpf.c",
        "sigsnoop.h",
        "vmlinux.h",
        "sigsnoop.runner.json",
    ] {
        std::fs::copy(repo.join("programs/sigsnoop").join(file), copy.join(file)).unwrap();
    }
    let done = run_in(&copy, &["build", "sigsnoop.bpf.c"]);
    ok(&done);
    assert!(wrote_package_json(&done), "{}", done.stderr);
    assert!(
        std::fs::read(copy.join("package.json")).unwrap() == committed,
        "build of a copy of the sources differs"
    );
}

/// The prebuilt package depends on the pinned `programs/vmlinux.h`, never on the build
/// machine's kernel: with the kernel's BTF replaced by stand-ins that differ (none at all,
/// an empty file), sigsnoop still builds byte for byte as committed, while a program
/// without a pinned header cannot build at all (so the stand-in is really what is read).
#[test]
fn the_prebuilt_package_does_not_depend_on_the_build_kernel() {
    let committed = std::fs::read(common::sigsnoop_package()).unwrap();
    let repo = common::repo();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.btf");
    std::fs::write(&empty, b"").unwrap();
    let cache = tmp.path().join("cache");
    for stand_in in [tmp.path().join("no-such.btf"), empty] {
        let out = tmp.path().join("sigsnoop.json");
        let done = Command::new(common::runner())
            .current_dir(&repo)
            .env("RUNNER_KERNEL_BTF", &stand_in)
            .env("RUNNER_CACHE_DIR", &cache)
            .args(["build", "programs/sigsnoop/sigsnoop.bpf.c", "-o", s(&out)])
            .output()
            .unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(
            std::fs::read(&out).unwrap() == committed,
            "with {} as the kernel's BTF the build differs",
            stand_in.display()
        );
        let unpinned = Command::new(common::runner())
            .env("RUNNER_KERNEL_BTF", &stand_in)
            .env("RUNNER_CACHE_DIR", &cache)
            .args(["build", s(&fixture("handmade.bpf.c")), "-o"])
            .arg(tmp.path().join("handmade.json"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&unpinned.stderr);
        assert_eq!(unpinned.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot generate vmlinux.h"), "{stderr}");
    }
}

#[test]
fn info_shows_sigsnoop_globals_and_event_layout() {
    let done = run_runner(&["info", s(&common::sigsnoop_package())]);
    ok(&done);
    let text: String = done.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "sigsnoop: trace signals sent by kill, tkill and tgkill, and every other signal the kernel generates.",
        "--filtered_pid pid_t (i32), default 0, .rodata+0 (4 bytes) only signals sent by this process (0: any)",
        "--target_signal int (i32), default 0, .rodata+4 (4 bytes) only this signal (0: any)",
        "--failed_only bool (bool), default false, .rodata+8 (1 bytes) only signals whose delivery failed",
        "--syscalls_only bool (bool), default false, .rodata+9 (1 bytes) trace only the kill, tkill and tgkill syscalls",
        "carries struct event: pid@0 tpid@4 sig@8 ret@12 comm@16[16] (size 32)",
        "lost events counted in global `lost_events`",
        "lost_events: counts events lost on map `events`; the runner reports it",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{}", done.stdout);
    }
}

#[test]
fn build_describes_globals_and_event_of_many_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shapes.json");
    ok(&run_runner(&[
        "build",
        s(&fixture("shapes.bpf.c")),
        "-o",
        s(&out),
    ]));
    let pkg = read_json(&out);
    assert_eq!(pkg["format_version"], 1);
    assert_eq!(pkg["name"], "shapes");
    // The first comment, without the SPDX line and the name prefix.
    assert_eq!(
        pkg["description"],
        "globals and an event of many shapes, for the packer's tests."
    );
    assert_eq!(pkg["license"], "GPL");

    let mode = json!({
        "c": "enum shape_mode", "kind": "enum", "size": 4, "signed": false,
        "values": [
            {"name": "SHAPE_OFF", "value": 0},
            {"name": "SHAPE_FAST", "value": 1},
            {"name": "SHAPE_SLOW", "value": 7},
        ],
    });
    let limits = json!({
        "c": "struct shape_limits", "kind": "struct", "size": 8,
        "members": [member("lo", 0, int("__u32", 4, false)), member("hi", 4, int("__u32", 4, false))],
    });
    let ports = json!({"c": "__u32[4]", "kind": "array", "len": 4, "elem": int("__u32", 4, false)});
    let bool_ty = json!({"c": "bool", "kind": "bool", "size": 1});
    let globals = json!([
        global(
            "level",
            ".rodata",
            0,
            1,
            int("__u8", 1, false),
            json!(3),
            flag("level"),
            "verbosity, 0 to 255"
        ),
        global(
            "min_bytes",
            ".rodata",
            8,
            8,
            int("__u64", 8, false),
            json!(1099511627776u64),
            flag("min_bytes"),
            "skip transfers smaller than this",
        ),
        global(
            "mode",
            ".rodata",
            16,
            4,
            mode,
            json!("SHAPE_FAST"),
            flag("mode"),
            "how to sample"
        ),
        global(
            "comm_filter",
            ".rodata",
            20,
            16,
            chars(16),
            json!("bash"),
            flag("comm_filter"),
            "only this command name"
        ),
        global(
            "enabled",
            ".rodata",
            36,
            1,
            bool_ty,
            json!(true),
            flag("enabled"),
            "master switch"
        ),
        global(
            "duration",
            ".rodata",
            40,
            4,
            int("int", 4, true),
            json!(0),
            no_flag("--duration is an option of the runner itself"),
            "clashes with the runner's own --duration",
        ),
        global(
            "limits",
            ".rodata",
            44,
            8,
            limits,
            json!({"lo": 1, "hi": 2}),
            no_flag("structs cannot be set from the command line"),
            "bounds, as one struct: no flag",
        ),
        global(
            "ports",
            ".rodata",
            52,
            16,
            ports,
            json!([22, 80, 0, 0]),
            no_flag("arrays other than char[N] cannot be set from the command line"),
            "an array of numbers: no flag",
        ),
        global(
            "sample_every",
            ".data",
            0,
            4,
            int("int", 4, true),
            json!(5),
            flag("sample_every"),
            "sample one call in this many (in .data)",
        ),
        global(
            "seen_total",
            ".bss",
            0,
            8,
            int("__u64", 8, false),
            json!(0),
            flag("seen_total"),
            "calls seen so far (in .bss)",
        ),
    ]);
    for (got, want) in pkg["globals"]
        .as_array()
        .unwrap()
        .iter()
        .zip(globals.as_array().unwrap())
    {
        assert_eq!(got, want, "global {}", want["name"]);
    }
    assert_eq!(pkg["globals"], globals);

    // The event struct is only ever a local variable in the program: it reaches BTF
    // because `runner build` anchors the source's structs (see the hand-compiled case in
    // `pack_needs_the_event_struct_in_btf`).
    let point = json!({
        "c": "struct shape_point", "kind": "struct", "size": 4,
        "members": [member("x", 0, int("__s16", 2, true)), member("y", 2, int("__s16", 2, true))],
    });
    let vals = json!({"c": "__u32[3]", "kind": "array", "len": 3, "elem": int("__u32", 4, false)});
    let event = json!({
        "map": "samples",
        "channel": "ringbuf",
        "struct": "shape_sample",
        "type": {
            "c": "struct shape_sample", "kind": "struct", "size": 40,
            "members": [
                member("ts", 0, int("__u64", 8, false)),
                member("where", 8, point),
                member("vals", 12, vals),
                member("name", 24, chars(8)),
                member("flags", 32, int("__u8", 1, false)),
            ],
        },
    });
    assert_eq!(pkg["events"], json!([event]));
    assert_eq!(
        pkg["maps"],
        json!([{"name": "samples", "type": "ringbuf", "key_size": 0, "value_size": 0, "max_entries": 4096}])
    );
    assert_eq!(
        pkg["programs"],
        json!([{
            "name": "on_getpid",
            "section": "tracepoint/syscalls/sys_enter_getpid",
            "attach": {"kind": "tracepoint", "target": "syscalls/sys_enter_getpid"},
        }])
    );

    let done = run_runner(&["info", s(&out)]);
    ok(&done);
    assert!(
        done.stdout
            .contains("ts@0 where@8 vals@12[3] name@24[8] flags@32 (size 40)"),
        "{}",
        done.stdout
    );
}

#[test]
fn pack_an_object_compiled_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let object = compile("handmade.bpf.c", tmp.path(), true);
    let bytes = std::fs::read(&object).unwrap();

    // Without the source: no help and no description, but the whole layout.
    let done = run_in(tmp.path(), &["pack", "handmade.bpf.o"]);
    ok(&done);
    assert!(wrote_package_json(&done), "{}", done.stderr);
    let plain = read_json(&tmp.path().join("package.json"));
    assert_eq!(plain["name"], "handmade");
    assert_eq!(plain["description"], "");
    assert_eq!(plain["license"], "GPL");
    let u32_ty = int("__u32", 4, false);
    let u64_ty = int("__u64", 8, false);
    let pointer = json!({"c": "struct event *", "kind": "pointer", "size": 8});
    let no_help = json!([
        global(
            "only_pid",
            ".rodata",
            0,
            4,
            u32_ty.clone(),
            json!(0),
            flag("only_pid"),
            ""
        ),
        global(
            "max_events",
            ".rodata",
            8,
            8,
            u64_ty.clone(),
            json!(100),
            flag("max_events"),
            ""
        ),
        global(
            "unused_event",
            ".bss",
            0,
            8,
            pointer.clone(),
            json!("0x0"),
            no_flag("pointers cannot be set from the command line"),
            "",
        ),
    ]);
    assert_eq!(plain["globals"], no_help);
    let event_ty = json!({
        "c": "struct event", "kind": "struct", "size": 24,
        "members": [member("pid", 0, u32_ty.clone()), member("dfd", 4, int("__s32", 4, true)), member("comm", 8, chars(16))],
    });
    assert_eq!(
        plain["events"],
        json!([{"map": "events", "channel": "ringbuf", "struct": "event", "type": event_ty}])
    );
    // The object is embedded as it is.
    let embedded = base64::engine::general_purpose::STANDARD
        .decode(plain["object"]["base64"].as_str().unwrap())
        .unwrap();
    assert!(
        embedded == bytes,
        "the embedded object differs from the file"
    );
    assert_eq!(plain["object"]["size"], bytes.len());

    // With the source: the comments become the help texts and the description.
    let with_source = tmp.path().join("with_source.json");
    let source = fixture("handmade.bpf.c");
    ok(&run_runner(&[
        "pack",
        s(&object),
        "--source",
        s(&source),
        "-o",
        s(&with_source),
    ]));
    let pkg = read_json(&with_source);
    assert_eq!(
        pkg["description"],
        "count openat calls, compiled by hand with clang and packed with `runner pack`."
    );
    let helped = json!([
        global(
            "only_pid",
            ".rodata",
            0,
            4,
            u32_ty,
            json!(0),
            flag("only_pid"),
            "only calls made by this process (0: any)"
        ),
        global(
            "max_events",
            ".rodata",
            8,
            8,
            u64_ty,
            json!(100),
            flag("max_events"),
            "report at most this many events"
        ),
        global(
            "unused_event",
            ".bss",
            0,
            8,
            pointer,
            json!("0x0"),
            no_flag("pointers cannot be set from the command line"),
            "clang keeps a struct in BTF only when something typed refers to it",
        ),
    ]);
    assert_eq!(pkg["globals"], helped);
    // Only the help texts and the description differ.
    let mut stripped = pkg.clone();
    stripped["description"] = "".into();
    for g in stripped["globals"].as_array_mut().unwrap() {
        g["help"] = "".into();
    }
    assert_eq!(stripped, plain);

    // --name and --description win; packing is deterministic.
    let named = tmp.path().join("named.json");
    let args = [
        "pack",
        s(&object),
        "--source",
        s(&source),
        "--name",
        "opens",
        "--description",
        "who opens what",
        "-o",
        s(&named),
    ];
    ok(&run_runner(&args));
    let first = std::fs::read(&named).unwrap();
    let pkg: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(
        (pkg["name"].as_str(), pkg["description"].as_str()),
        (Some("opens"), Some("who opens what"))
    );
    ok(&run_runner(&args));
    assert!(
        std::fs::read(&named).unwrap() == first,
        "packing twice gave different bytes"
    );
}

#[test]
fn pack_needs_the_event_struct_in_btf() {
    // Compiled by hand, nothing anchors `struct shape_sample`: clang leaves it out of BTF.
    let tmp = tempfile::tempdir().unwrap();
    let object = compile("shapes.bpf.c", tmp.path(), true);
    let done = run_runner(&["pack", s(&object), "-o", s(&tmp.path().join("x.json"))]);
    fails_with(
        &done,
        &format!(
            "runner: error: cannot pack `{}`: map `samples` names event struct `shape_sample`, which is not in the object's BTF \
             (clang only emits types reachable from globals, function signatures and CO-RE relocations; \
             `runner build` keeps the source's structs, or add `struct <name> *unused __attribute__((unused));`)",
            object.display()
        ),
    );
    assert!(!tmp.path().join("x.json").exists());
}

#[test]
fn pack_rejects_what_is_not_a_bpf_object_with_btf() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.json");
    let pack = |input: &Path| run_runner(&["pack", s(input), "-o", s(&out)]);

    let text = fixture("shapes.h");
    fails_with(
        &pack(&text),
        &format!(
            "runner: error: cannot pack `{}`: not an ELF object (Unknown file magic)",
            text.display()
        ),
    );
    // An ELF for the host's machine, whatever that is.
    let done = pack(Path::new("/bin/true"));
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let line = done.stderr.trim_end();
    assert!(
        line.starts_with("runner: error: cannot pack `/bin/true`: not a BPF object (machine is ")
            && line.ends_with("); compile with `clang -target bpf`"),
        "{line}"
    );
    let no_btf = compile("handmade.bpf.c", tmp.path(), false);
    fails_with(
        &pack(&no_btf),
        &format!(
            "runner: error: cannot pack `{}`: no BTF (.BTF section); compile with `-g`",
            no_btf.display()
        ),
    );
    fails_with(
        &pack(Path::new("/nonexistent.bpf.o")),
        "runner: error: cannot read `/nonexistent.bpf.o`: No such file or directory (os error 2)",
    );
    for done in [pack(&text), pack(Path::new("/bin/true")), pack(&no_btf)] {
        assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    }
    assert!(!out.exists());
}

#[test]
fn pack_names_the_candidates_when_it_cannot_tell_the_event_struct() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.json");
    let tag_hint = |map: &str| {
        format!("Tag the map with __attribute__((btf_decl_tag(\"runner:event=<struct>\"))) or pass --event {map}=<struct>")
    };

    let two = compile("two_rings.bpf.c", tmp.path(), true);
    let done = run_runner(&["pack", s(&two), "-o", s(&out)]);
    fails_with(
        &done,
        &format!(
            "runner: error: cannot pack `{}`: cannot tell which struct map `opens` carries: 2 event channels and no tag on this one; \
             candidates: `struct exec_rec`, `struct open_rec`. {}",
            two.display(),
            tag_hint("opens")
        ),
    );
    // Naming one map is not enough.
    let done = run_runner(&["pack", s(&two), "--event", "opens=open_rec", "-o", s(&out)]);
    assert!(
        done.stderr
            .contains("cannot tell which struct map `execs` carries"),
        "{}",
        done.stderr
    );
    assert_eq!(done.status.code(), Some(1));

    let none = compile("no_event.bpf.c", tmp.path(), true);
    let done = run_runner(&["pack", s(&none), "-o", s(&out)]);
    fails_with(
        &done,
        &format!(
            "runner: error: cannot pack `{}`: cannot tell which struct map `out` carries: no struct is named `event`; \
             candidates: `struct counters`, `struct record`. {}",
            none.display(),
            tag_hint("out")
        ),
    );
    let done = run_runner(&["pack", s(&none), "--event", "out=nosuch", "-o", s(&out)]);
    assert!(
        done.stderr.starts_with(&format!(
            "runner: error: cannot pack `{}`: map `out` names event struct `nosuch`, which is not in the object's BTF",
            none.display()
        )),
        "{}",
        done.stderr
    );
    assert_eq!(done.status.code(), Some(1));
    let done = run_runner(&["pack", s(&none), "--event", "nomap=record", "-o", s(&out)]);
    fails_with(
        &done,
        &format!(
            "runner: error: cannot pack `{}`: --event names map `nomap`, which is not a ring buffer or perf event array of this object",
            none.display()
        ),
    );
    let done = run_runner(&["pack", s(&none), "--event", "record", "-o", s(&out)]);
    assert_eq!(
        done.status.code(),
        Some(2),
        "a malformed --event is a usage error: {}",
        done.stderr
    );
    assert!(
        done.stderr.contains("expected MAP=STRUCT"),
        "{}",
        done.stderr
    );
    assert!(!out.exists());
}

#[test]
fn event_overrides_settle_the_ambiguity() {
    let tmp = tempfile::tempdir().unwrap();
    let two = compile("two_rings.bpf.c", tmp.path(), true);
    let out = tmp.path().join("two.json");
    // `struct ` in front of the name is accepted too.
    ok(&run_runner(&[
        "pack",
        s(&two),
        "--event",
        "opens=open_rec",
        "--event",
        "execs=struct exec_rec",
        "-o",
        s(&out),
    ]));
    let pkg = read_json(&out);
    let u32_ty = int("__u32", 4, false);
    assert_eq!(
        pkg["events"],
        json!([
            {
                "map": "opens", "channel": "ringbuf", "struct": "open_rec",
                "type": {"c": "struct open_rec", "kind": "struct", "size": 8,
                         "members": [member("pid", 0, u32_ty.clone()), member("flags", 4, int("__s32", 4, true))]},
            },
            {
                "map": "execs", "channel": "ringbuf", "struct": "exec_rec",
                "type": {"c": "struct exec_rec", "kind": "struct", "size": 20,
                         "members": [member("pid", 0, u32_ty), member("comm", 4, chars(16))]},
            },
        ])
    );
    let done = run_runner(&["info", s(&out)]);
    ok(&done);
    assert!(
        done.stdout
            .contains("carries struct open_rec: pid@0 flags@4 (size 8)"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout
            .contains("carries struct exec_rec: pid@0 comm@4[16] (size 20)"),
        "{}",
        done.stdout
    );
}

#[test]
fn build_reports_a_missing_source_and_clang_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.json");
    let done = run_runner(&["build", "/nonexistent/prog.bpf.c", "-o", s(&out)]);
    fails_with(
        &done,
        "runner: error: cannot read source `/nonexistent/prog.bpf.c`: No such file or directory (os error 2)",
    );
    assert_eq!(done.stderr.lines().count(), 1);

    let broken = fixture("broken.bpf.c");
    let done = run_runner(&["build", s(&broken), "-o", s(&out)]);
    fails_with(
        &done,
        &format!("runner: error: clang failed on `{}`:", broken.display()),
    );
    // clang's own message follows, with the file and position.
    assert!(
        done.stderr
            .contains("broken.bpf.c:9:9: error: use of undeclared identifier 'undeclared_thing'"),
        "{}",
        done.stderr
    );
    assert!(!out.exists());
}

#[test]
fn a_lone_program_struct_is_the_event_not_the_tracepoint_context() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data_t.json");
    ok(&run_runner(&[
        "build",
        s(&fixture("data_t.bpf.c")),
        "-o",
        s(&out),
    ]));
    let pkg = read_json(&out);
    assert_eq!(pkg["events"][0]["struct"], "data_t");
    assert_eq!(pkg["events"][0]["type"]["size"], 24);
}

#[test]
fn a_type_that_doubles_at_every_level_is_an_error_not_an_out_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exponential.json");
    let done = run_runner(&["build", s(&fixture("exponential.bpf.c")), "-o", s(&out)]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("expands to more than 100000 members and elements"),
        "{}",
        done.stderr
    );
}

/// `<runner/ring.h>` comes with `runner build`; a ring tagged `RUNNER_WAKEUP` makes the
/// package name the flag and require `wakeup_flag`, and the tag on anything but a ring
/// buffer is refused when packing, not found out at run time.
#[test]
fn build_supplies_runner_ring_h_and_checks_its_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let source = |map_type: &str, submit: &str| {
        format!(
            "// SPDX-License-Identifier: GPL-2.0\n\
             /* wake: one record per openat */\n\
             #include \"vmlinux.h\"\n\
             #include <bpf/bpf_helpers.h>\n\
             #include <runner/ring.h>\n\
             struct event {{ __u32 pid; }};\n\
             struct {{ __uint(type, {map_type}); {size} }} events SEC(\".maps\") RUNNER_WAKEUP;\n\
             SEC(\"tracepoint/syscalls/sys_enter_openat\")\n\
             int on_open(void *ctx)\n\
             {{\n\
             \tstruct event e = {{ .pid = bpf_get_current_pid_tgid() >> 32 }};\n\
             \t{submit}\n\
             \treturn 0;\n\
             }}\n\
             char LICENSE[] SEC(\"license\") = \"GPL\";\n",
            size = if map_type == "BPF_MAP_TYPE_RINGBUF" {
                "__uint(max_entries, 1 << 16);"
            } else {
                "__uint(key_size, 4); __uint(value_size, 4);"
            },
        )
    };
    let ring = tmp.path().join("ring.bpf.c");
    std::fs::write(
        &ring,
        source(
            "BPF_MAP_TYPE_RINGBUF",
            "runner_ringbuf_output(&events, &e, sizeof(e));",
        ),
    )
    .unwrap();
    let out = tmp.path().join("ring.json");
    ok(&run_in(tmp.path(), &["build", s(&ring), "-o", s(&out)]));
    let pkg = read_json(&out);
    assert_eq!(pkg["requires"], json!(["wakeup_flag"]));
    assert_eq!(pkg["events"][0]["wakeup"], json!("runner_reader_asleep"));
    let info = run_runner(&["info", s(&out)]);
    ok(&info);
    assert!(info.stdout.contains(
        "wakes the runner only while it sleeps (global `runner_reader_asleep`) or at a quarter full"
    ));

    let perf = tmp.path().join("perf.bpf.c");
    std::fs::write(
        &perf,
        source(
            "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
            "bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));",
        ),
    )
    .unwrap();
    let out = tmp.path().join("perf.json");
    let done = run_in(tmp.path(), &["build", s(&perf), "-o", s(&out)]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        done.stderr.contains(
            "map `events` is tagged runner:wakeup=runner_reader_asleep, but only a ring buffer's \
             submits can wake the reader this way"
        ),
        "{}",
        done.stderr
    );
    assert!(!out.exists());
}
