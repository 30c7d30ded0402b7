//! End-to-end tests of variable-length records (corpus program `varlen`): the program
//! submits execsnoop-style records (the fixed part, then only the NUL-separated strings
//! it read) on a perf event array, numbers cut after the last one on a ring buffer, records
//! shorter than the fixed part, and a record of the whole struct. The tests check every
//! decoded value in table, JSON and CSV output, and the count of records skipped.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON), clang and bpftool: `#[ignore]`d, run by
//! `scripts/test` (see `common::require_bpf`).

mod common;

use std::ffi::CString;

use common::{corpus_package, prctl, set_comm, trace};
use serde_json::{json, Value};

// The constants of corpus/varlen/varlen.h.
const OPTION: u64 = 0x5256_0002;
const CUT: u64 = 0;
const SHORT: u64 = 1;
const FULL: u64 = 2;
const NUMBERS: u64 = 3;
const NUMBERS_SHORT: u64 = 4;
const ARG_MAX: usize = 32;
const MAX_ARGS: usize = 6;

const COMM: &str = "corpus-varlen";

/// prctl(OPTION, argv, mode, n) with `args` as a NULL-terminated argv.
fn call(args: &[&str], mode: u64, n: u64) {
    let owned: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
    let mut argv: Vec<*const libc::c_char> = owned.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    prctl(OPTION, argv.as_ptr() as u64, mode, n, 0);
}

/// A string of 40 letters: longer than one string may be (31 bytes and its NUL).
const LONG: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";

/// What a record's strings must show: `Ok(list)` for a cut record (its strings),
/// `Err(text)` for a record of the whole struct (text up to the first NUL).
type Shown = Result<Vec<String>, String>;

/// The calls (argv, mode) and what each record must show.
fn calls() -> Vec<(Vec<&'static str>, u64, Shown)> {
    let strings = |v: &[&str]| Ok(v.iter().map(|s| s.to_string()).collect());
    vec![
        // execsnoop's case: an empty string, a space, a comma and quotes in strings.
        (
            vec!["prog", "", "b c", "a,\"q\""],
            CUT,
            strings(&["prog", "", "b c", "a,\"q\""]),
        ),
        // More strings than the program reads; one longer than it copies.
        (
            vec!["1", "2", LONG, "4", "5", "6", "7"],
            CUT,
            strings(&["1", "2", &LONG[..ARG_MAX - 1], "4", "5", "6"]),
        ),
        // No strings at all: exactly the fixed part.
        (vec![], CUT, strings(&[])),
        // The whole struct: text up to the first NUL.
        (vec!["first", "second"], FULL, Err("first".to_string())),
    ]
}

fn trigger() {
    std::thread::spawn(|| {
        set_comm(COMM);
        for (args, mode, _) in calls() {
            call(&args, mode, 0);
        }
        call(&["skipped"], SHORT, 0);
        call(&[], NUMBERS, 3);
        call(&[], NUMBERS, 0);
        call(&[], NUMBERS, 8);
        call(&[], NUMBERS_SHORT, 5);
    })
    .join()
    .unwrap();
}

/// The numbers records: n, then 1000 + i*i for each.
fn numbers() -> Vec<Vec<u64>> {
    [3u64, 0, 8]
        .iter()
        .map(|&n| (0..n).map(|i| 1000 + i * i).collect())
        .collect()
}

/// The bytes of `args` as the program copies them (each string cut to 31 bytes).
fn args_size(args: &[&str]) -> usize {
    args.iter()
        .take(MAX_ARGS)
        .map(|a| a.len().min(ARG_MAX - 1) + 1)
        .sum()
}

fn run(format: &str) -> common::Finished {
    common::require_bpf();
    let pkg = corpus_package("varlen");
    let pid = std::process::id().to_string();
    let done = trace(&[&pkg, "--target_tgid", &pid, "-o", format], trigger);
    assert!(
        done.stderr.contains(
            "runner: 2 records were shorter than the fixed part of their event struct and were skipped"
        ),
        "{}",
        done.stderr
    );
    done
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn varlen_json() {
    let done = run("json");
    let events: Vec<Value> = done
        .stdout
        .lines()
        .map(common::json_line)
        .map(|mut v: Value| {
            v.as_object_mut().unwrap().remove("@time").expect("a time");
            v
        })
        .collect();
    let pid = std::process::id();
    let mut expected: Vec<Value> = calls()
        .into_iter()
        .map(|(args, mode, shown)| {
            json!({"@event": "call", "pid": pid, "mode": mode, "args_size": args_size(&args), "comm": COMM,
                   "args": match shown { Ok(list) => json!(list), Err(text) => json!(text) }})
        })
        .collect();
    expected.extend(
        numbers()
            .into_iter()
            .map(|vals| json!({"@event": "numbers", "n": vals.len(), "vals": vals})),
    );
    let calls: Vec<&Value> = events.iter().filter(|e| e["@event"] == "call").collect();
    let nums: Vec<&Value> = events.iter().filter(|e| e["@event"] == "numbers").collect();
    let found: Vec<&Value> = calls.into_iter().chain(nums).collect();
    assert_eq!(
        found,
        expected.iter().collect::<Vec<_>>(),
        "{}",
        done.stdout
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn varlen_table() {
    let done = run("table");
    let pid = std::process::id().to_string();
    // TIME EVENT PID MODE ARGS_SIZE COMM ARGS: the strings are the rest of the line.
    let mut found_calls = Vec::new();
    let mut found_numbers = Vec::new();
    for line in done.stdout.lines().filter(|l| !l.starts_with("TIME ")) {
        let cells = common::cells(line);
        match cells[1] {
            "call" => {
                // The strings follow COMM and its padding (one space between strings).
                let at = line.find(COMM).expect("the comm") + COMM.len();
                let args = line[at..].trim_start().to_string();
                found_calls.push((cells[2..6].join(" "), args));
            }
            "numbers" => found_numbers.push(cells[2..].join(" ")),
            other => panic!("unexpected event {other}: {line}"),
        }
    }
    let expected_calls: Vec<(String, String)> = calls()
        .into_iter()
        .map(|(args, mode, shown)| {
            (
                format!("{pid} {mode} {} {COMM}", args_size(&args)),
                match shown {
                    Ok(list) => list.join(" "),
                    Err(text) => text,
                },
            )
        })
        .collect();
    assert_eq!(found_calls, expected_calls, "{}", done.stdout);
    let expected_numbers: Vec<String> = numbers()
        .into_iter()
        .map(|vals| {
            let list: Vec<String> = vals.iter().map(u64::to_string).collect();
            format!("{} [{}]", vals.len(), list.join(","))
        })
        .collect();
    assert_eq!(found_numbers, expected_numbers, "{}", done.stdout);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn varlen_csv() {
    let done = run("csv");
    let records = common::csv_records(&done.stdout);
    // Two headers (one per channel), then rows of either.
    assert_eq!(
        records[0],
        [
            "@time",
            "@event",
            "pid",
            "mode",
            "args_size",
            "comm",
            "args"
        ]
    );
    assert_eq!(records[1], ["@time", "@event", "n", "vals"]);
    let pid = std::process::id().to_string();
    let rows: Vec<Vec<String>> = records[2..]
        .iter()
        .filter(|r| r[1] == "call")
        .map(|r| r[2..].to_vec())
        .collect();
    let expected: Vec<Vec<String>> = calls()
        .into_iter()
        .map(|(args, mode, shown)| {
            vec![
                pid.clone(),
                mode.to_string(),
                args_size(&args).to_string(),
                COMM.to_string(),
                match shown {
                    Ok(list) => list.join(" "),
                    Err(text) => text,
                },
            ]
        })
        .collect();
    assert_eq!(rows, expected, "{}", done.stdout);
    let nums: Vec<String> = records[2..]
        .iter()
        .filter(|r| r[1] == "numbers")
        .map(|r| r[3].clone())
        .collect();
    assert_eq!(
        nums,
        [
            "[1000,1001,1004]",
            "[]",
            "[1000,1001,1004,1009,1016,1025,1036,1049]"
        ]
    );
}
