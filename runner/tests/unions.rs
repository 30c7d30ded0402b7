//! The sidecar's `formats` end to end (root): the corpus program `unions`, whose source
//! declares nothing about how its event reads, is built with its sidecar
//! (`unions.runner.json`: errno, a signal name on request, open flags, a duration in µs,
//! two hidden members and the member `op` that selects which member of the union `arg`
//! is shown). The test makes prctl(2) calls that say what each member holds and checks
//! every value exactly in JSON (with and without `--names`), the table and CSV.

mod common;

use serde_json::{json, Value};

// The constants of corpus/unions/unions.h.
const OPTION: u64 = 0x5255_0001;
const COMM: &str = "corpus-unions";
const MOUNT: u32 = 1;
const UMOUNT: u32 = 2;
const FSOPEN: u32 = 3;
/// A value of `op` no case names: every member of the union is shown.
const OTHER: u32 = 9;

/// `struct unions_input` of unions.h.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Input {
    op: u32,
    ret: i32,
    sig: u32,
    flags: i32,
    lat_ns: u64,
    fs: [u8; 8],
    src: [u8; 16],
    dest: [u8; 16],
}

fn text<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    out[..s.len()].copy_from_slice(s.as_bytes());
    out
}

fn inputs() -> Vec<Input> {
    let input = |op, ret, sig, flags, lat_ns| Input {
        op,
        ret,
        sig,
        flags,
        lat_ns,
        fs: text("ext4"),
        src: text("/dev/vdb1"),
        dest: text("/mnt/data"),
    };
    vec![
        // O_WRONLY|O_CLOEXEC, 1.5 ms
        input(MOUNT, -2, 9, 0o2000001, 1_500_000),
        // O_RDWR|O_CREAT|O_TRUNC
        input(UMOUNT, 0, 15, 0o1102, 2_000),
        input(FSOPEN, -13, 0, 0, 999),
        input(OTHER, 3, 11, 0o200000, 0),
    ]
}

fn run(args: &[&str]) -> String {
    common::require_bpf();
    let pkg = common::corpus_package("unions");
    let pid = std::process::id().to_string();
    let mut all = vec![pkg.as_str(), "--target_tgid", &pid];
    all.extend(args);
    let done = common::trace(&all, || {
        common::set_comm(COMM);
        for input in inputs() {
            common::prctl(OPTION, &input as *const Input as u64, 0, 0, 0);
        }
    });
    done.stdout
}

/// What each call's event reads as in JSON, `@time` aside.
fn expected_json(names: bool) -> Vec<Value> {
    let pid = std::process::id();
    let sig = |n: u32, name: &str| {
        if names {
            (json!(name), Some(json!(n)))
        } else {
            (json!(n), None)
        }
    };
    let mut out = Vec::new();
    for (i, (ret, ret_raw, (sig, sig_raw), flags, flags_raw, op, arg, failed, (lat, lat_raw))) in [
        (
            json!("ENOENT"),
            -2,
            sig(9, "SIGKILL"),
            "O_WRONLY|O_CLOEXEC",
            0o2000001,
            json!("MOUNT"),
            json!({"mount": {"fs": "ext4", "src": "/dev/vdb1", "dest": "/mnt/data", "flags": 0o2000001}}),
            1,
            (json!(1500), 1_500_000),
        ),
        (
            json!("0"),
            0,
            sig(15, "SIGTERM"),
            "O_RDWR|O_CREAT|O_TRUNC",
            0o1102,
            json!("UMOUNT"),
            json!({"umount": {"dest": "/mnt/data", "flags": 0o1102}}),
            0,
            (json!(2), 2_000),
        ),
        (
            json!("EACCES"),
            -13,
            sig(0, "N/A"),
            "O_RDONLY",
            0,
            json!("FSOPEN"),
            json!({"fsopen": {"fs": "ext4", "flags": 0}}),
            1,
            (json!(0.999), 999),
        ),
        (
            json!("3"),
            3,
            sig(11, "SIGSEGV"),
            "O_RDONLY|O_DIRECTORY",
            0o200000,
            // No enumerator of `enum op`: the number, and every member of the union.
            json!(9),
            json!({"mount": {"fs": "", "src": "", "dest": "", "flags": 0},
                   "umount": {"dest": "", "flags": 0},
                   "fsopen": {"fs": "", "flags": 0}}),
            0,
            (json!(0), 0),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut v = serde_json::Map::new();
        v.insert("pid".into(), json!(pid));
        v.insert("ret".into(), ret);
        v.insert("ret@raw".into(), json!(ret_raw));
        v.insert("sig".into(), sig);
        if let Some(raw) = sig_raw {
            v.insert("sig@raw".into(), raw);
        }
        v.insert("flags".into(), json!(flags));
        v.insert("flags@raw".into(), json!(flags_raw));
        v.insert("op".into(), op);
        v.insert("arg".into(), arg);
        v.insert("path".into(), json!({"failed": failed, "name": "ext4"}));
        // In µs, as `duration:ns:us` says, with the nanoseconds beside.
        v.insert("lat_ns".into(), lat);
        v.insert("lat_ns@raw".into(), json!(lat_raw));
        v.insert("comm".into(), json!(COMM));
        assert_eq!((inputs()[i].ret, inputs()[i].lat_ns), (ret_raw, lat_raw));
        out.push(Value::Object(v));
    }
    out
}

fn json_case(names: bool) {
    let args: &[&str] = if names {
        &["-o", "json", "--names"]
    } else {
        &["-o", "json"]
    };
    let out = run(args);
    let mut got: Vec<Value> = out.lines().map(common::json_line).collect();
    for v in &mut got {
        let time = v.as_object_mut().unwrap().remove("@time").unwrap();
        assert!(time.as_str().is_some_and(|t| t.contains('T')), "{time}");
    }
    assert_eq!(got, expected_json(names), "{out}");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sidecar_formats_in_json() {
    json_case(false);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sidecar_formats_in_json_with_names() {
    json_case(true);
}

/// The cells after TIME of each row, as the table and CSV show them.
fn expected_cells() -> Vec<Vec<String>> {
    let pid = std::process::id().to_string();
    [
        [
            "ENOENT",
            "9",
            "O_WRONLY|O_CLOEXEC",
            "MOUNT",
            "{mount={fs=ext4,src=/dev/vdb1,dest=/mnt/data,flags=524289}}",
            "{failed=1,name=ext4}",
            "1500.000",
        ],
        [
            "0",
            "15",
            "O_RDWR|O_CREAT|O_TRUNC",
            "UMOUNT",
            "{umount={dest=/mnt/data,flags=578}}",
            "{failed=0,name=ext4}",
            "2.000",
        ],
        [
            "EACCES",
            "0",
            "O_RDONLY",
            "FSOPEN",
            "{fsopen={fs=ext4,flags=0}}",
            "{failed=1,name=ext4}",
            "0.999",
        ],
        [
            "3",
            "11",
            "O_RDONLY|O_DIRECTORY",
            "9",
            "{mount={fs=,src=,dest=,flags=0},umount={dest=,flags=0},fsopen={fs=,flags=0}}",
            "{failed=0,name=ext4}",
            "0.000",
        ],
    ]
    .iter()
    .map(|row| {
        let mut cells = vec![pid.clone()];
        cells.extend(row.iter().map(|c| c.to_string()));
        cells.push(COMM.to_string());
        cells
    })
    .collect()
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sidecar_formats_in_csv() {
    let out = run(&["-o", "csv"]);
    let records = common::csv_records(&out);
    assert_eq!(
        records[0],
        [
            "@time",
            "pid",
            "ret",
            "sig",
            "flags",
            "op",
            "arg",
            "path",
            "lat_ns(us)",
            "comm"
        ],
        "{out}"
    );
    let rows: Vec<Vec<String>> = records[1..].iter().map(|r| r[1..].to_vec()).collect();
    assert_eq!(rows, expected_cells(), "{out}");
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sidecar_formats_in_the_table() {
    let out = run(&[]);
    let mut lines = out.lines();
    assert_eq!(
        common::cells(lines.next().unwrap()),
        [
            "TIME",
            "PID",
            "RET",
            "SIG",
            "FLAGS",
            "OP",
            "ARG",
            "PATH",
            "LAT_NS(us)",
            "COMM"
        ]
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            common::cells(l)[1..]
                .iter()
                .map(|c| c.to_string())
                .collect()
        })
        .collect();
    assert_eq!(rows, expected_cells(), "{out}");
}

/// A sidecar's `formats` that names what the object does not have, or a format that does
/// not fit, fails `runner build` with one line naming the place in the sidecar (no root).
#[test]
fn sidecar_format_mistakes_name_the_place() {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus/unions/unions.bpf.c");
    let cases = [
        (
            json!({"evnt": {"ret": "errno"}}),
            "formats.evnt: no struct `evnt` in an event or a map (structs: `event`, `union sys_arg`)",
        ),
        (
            json!({"event": {"rte": "errno"}}),
            "formats.event.rte: no member `rte` in `struct event` (members: ts, pid, ret, sig, flags, op, arg, path, lat_ns, comm)",
        ),
        (
            json!({"event": {"path.dpth": "hide"}}),
            "formats.event.path.dpth: no member `dpth` in `struct <anon>` (members: depth, failed, name)",
        ),
        (
            json!({"event": {"ret": {"union": "op"}}}),
            "formats.event.ret: `ret` is no union (it is `int`)",
        ),
        (
            json!({"event": {"arg": {"union": "opp"}}}),
            "formats.event.arg: no member `opp` in the same struct to select by",
        ),
        (
            json!({"event": {"arg": {"union": "op", "cases": {"MOUNT": "mnt"}}}}),
            "formats.event.arg: case `MOUNT`: no member `mnt` in `arg` (members: mount, umount, fsopen)",
        ),
        (
            json!({"event": {"arg": {"union": "op", "cases": {"UNMOUNT": "umount"}}}}),
            "formats.event.arg: case `UNMOUNT` is no enumerator of `op` and no number",
        ),
        (
            json!({"event": {"ret": "ipv6"}}),
            "formats: event `events`: member `ret` of `struct event` is declared `ipv6`, which needs 16 bytes: __u8[16], __u32[4] or unsigned __int128",
        ),
        (
            json!({"event": {"comm": {"names": "errno"}}}),
            "formats: event `events`: member `comm` of `struct event` is declared `errno`, which needs an integer, or an array of integers",
        ),
    ];
    for (formats, error) in cases {
        let common::SidecarBuild { done, sidecar, .. } = common::build_with_sidecar(
            &source,
            &json!({ "formats": formats }),
            "unions-mistakes",
            "bad",
        );
        assert_eq!(done.status.code(), Some(1), "{formats}: {}", done.stderr);
        assert_eq!(
            done.stderr,
            format!("runner: error: sidecar `{}`: {error}\n", sidecar.display()),
            "{formats}"
        );
    }
}

/// Without `cases`, the enumerators of the discriminant named as union members (ignoring
/// case) select them: MOUNT → mount, UMOUNT → umount, FSOPEN → fsopen (no root).
#[test]
fn a_union_without_cases_is_selected_by_enumerator_names() {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus/unions/unions.bpf.c");
    let formats = json!({"formats": {"event": {"arg": {"union": "op"}}}});
    let common::SidecarBuild { done, package, .. } =
        common::build_with_sidecar(&source, &formats, "unions-default", "d");
    assert!(done.status.success(), "{}", done.stderr);
    let pkg = common::json_line(&std::fs::read_to_string(&package).unwrap());
    let members = pkg["events"][0]["type"]["members"].as_array().unwrap();
    let arg = members.iter().find(|m| m["name"] == "arg").unwrap();
    assert_eq!(
        arg["shown"],
        json!({"selected_by": {"member": "op", "cases": [
            {"value": 1, "member": "mount"},
            {"value": 2, "member": "umount"},
            {"value": 3, "member": "fsopen"}]}})
    );
}

/// A struct with all its members hidden but one reads as that member, in JSON and in the
/// table: `path` with `depth` and `failed` hidden is its name (bcc opensnoop's `fname`).
#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn a_struct_left_with_one_member_reads_as_it() {
    common::require_bpf();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus/unions/unions.bpf.c");
    let built = common::build_with_sidecar(
        &source,
        &json!({"formats": {"event": {"path.depth": "hide", "path.failed": "hide"}}}),
        "unions-lone",
        "lone",
    );
    assert!(built.done.status.success(), "{}", built.done.stderr);
    let pkg = built.package.to_str().unwrap().to_string();
    let pid = std::process::id().to_string();
    let trace = |format: &str| {
        common::trace(&[&pkg, "--target_tgid", &pid, "-o", format], || {
            common::set_comm(COMM);
            for input in inputs() {
                common::prctl(OPTION, &input as *const Input as u64, 0, 0, 0);
            }
        })
        .stdout
    };
    let out = trace("json");
    let paths: Vec<Value> = out
        .lines()
        .map(|l| common::json_line(l)["path"].clone())
        .collect();
    assert_eq!(paths, vec![json!("ext4"); inputs().len()], "{out}");
    let out = trace("table");
    let mut lines = out.lines();
    let header = common::cells(lines.next().unwrap());
    let at = header.iter().position(|h| *h == "PATH").unwrap();
    let cells: Vec<String> = lines.map(|l| common::cells(l)[at].to_string()).collect();
    assert_eq!(cells, vec!["ext4".to_string(); inputs().len()], "{out}");
}
