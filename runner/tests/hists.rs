//! End-to-end tests of map views nobody declared (corpus program `hists`: no event channel,
//! no `runner:` annotation, as bcc's histogram tools): the maps shown by default and those
//! left out, `--view`, the order of rows, per-CPU sums, and `--interval` with and without
//! `--clear`. Every test triggers known values and checks the exact counts, in table, JSON
//! and CSV output.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON), clang and bpftool: the BPF tests are `#[ignore]`d
//! and `scripts/test` runs them (see `common::require_bpf`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{corpus_package, prctl, run_runner, set_comm, trace};
use serde_json::{json, Value};

// The constants of corpus/hists/hists.h.
const OPTION: u64 = 0x5256_0003;
const HISTS_SLOTS: usize = 16;
const INFO_SLOTS: usize = 8;

const COMM: &str = "corpus-hists";

/// (value, bucket, counter) of each prctl(OPTION, value, bucket, counter). Counters 3 and
/// 257 tie; as little-endian bytes 257 (01 01) would come before 3 (03).
const CALLS: [(u64, u64, u64); 10] = [
    (1, 1, 0),
    (2, 1, 0),
    (3, 1, 0),
    (5, 1, 0),
    (1000, 2, 0),
    (1000, 2, 257),
    (0, 2, 257),
    (40, 2, 3),
    (7, 1, 3),
    (100_000, 2, 1),
];

fn slot(value: u64, last: usize) -> usize {
    let log2 = if value <= 1 {
        0
    } else {
        value.ilog2() as usize
    };
    log2.min(last)
}

fn call(calls: &[(u64, u64, u64)]) {
    let calls = calls.to_vec();
    std::thread::spawn(move || {
        set_comm(COMM);
        for (value, bucket, counter) in calls {
            prctl(OPTION, value, bucket, counter, 0);
        }
    })
    .join()
    .unwrap();
}

/// What the maps must hold after `calls`.
struct Expected {
    /// counter -> (count, total), biggest count first, then by counter.
    counts: Vec<(u64, u64, u64)>,
    /// bucket -> slots.
    hists: BTreeMap<u64, Vec<u64>>,
    /// The thread name's count, total and slots.
    info: (u64, u64, Vec<u64>),
    /// slot -> calls.
    lat: Vec<u64>,
}

fn expected(calls: &[(u64, u64, u64)]) -> Expected {
    let mut counts: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut hists: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut info = (0, 0, vec![0; INFO_SLOTS]);
    let mut lat = vec![0; HISTS_SLOTS];
    for &(value, bucket, counter) in calls {
        let c = counts.entry(counter).or_default();
        c.0 += 1;
        c.1 += value;
        hists.entry(bucket).or_insert_with(|| vec![0; HISTS_SLOTS])
            [slot(value, HISTS_SLOTS - 1)] += 1;
        info.0 += 1;
        info.1 += value;
        info.2[slot(value, INFO_SLOTS - 1)] += 1;
        lat[slot(value, HISTS_SLOTS - 1)] += 1;
    }
    let mut counts: Vec<(u64, u64, u64)> =
        counts.into_iter().map(|(k, (n, t))| (k, n, t)).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Expected {
        counts,
        hists,
        info,
        lat,
    }
}

/// The slots up to the last one used, as printed.
fn used(slots: &[u64]) -> &[u64] {
    let end = slots.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
    &slots[..end]
}

/// `(low, high, count)` of log2 slot `i`.
fn log2_bucket(i: usize, count: u64) -> (u64, u64, u64) {
    if i == 0 {
        (0, 1, count)
    } else {
        (1 << i, (2 << i) - 1, count)
    }
}

fn json_buckets(slots: &[u64]) -> Value {
    json!(used(slots)
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let (low, high, count) = log2_bucket(i, c);
            json!({"low": low, "high": high, "count": count})
        })
        .collect::<Vec<_>>())
}

fn run(args: &[&str], trigger: impl FnOnce()) -> common::Finished {
    common::require_bpf();
    let pkg = corpus_package("hists");
    let pid = std::process::id().to_string();
    let mut all = vec![pkg.as_str(), "--target_tgid", &pid];
    all.extend(args);
    trace(&all, trigger)
}

/// Every JSON line, without its time (checked to be there).
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(common::json_line)
        .map(|mut v: Value| {
            v.as_object_mut().unwrap().remove("@time").expect("a time");
            v
        })
        .collect()
}

fn counts_json(counts: &[(u64, u64, u64)]) -> Value {
    json!({"@map": "counts", "entries": counts.iter().map(|(k, n, t)| json!({"key": k, "value": {"count": n, "total": t}})).collect::<Vec<_>>()})
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn default_views_json() {
    let done = run(&["-o", "json"], || call(&CALLS));
    assert!(
        done.stderr.contains(
            "runner: no event channel; showing map `counts` (table), `hists` (log2_hist), `infos` (log2_hist) at exit (choose with --view MAP=VIEW)"
        ),
        "{}",
        done.stderr
    );
    let e = expected(&CALLS);
    let mut want = vec![counts_json(&e.counts)];
    for (bucket, slots) in &e.hists {
        want.push(json!({"@map": "hists", "key": bucket, "value": {"comm": COMM}, "buckets": json_buckets(slots)}));
    }
    // Without --fill_slots no slot is used: a row of counts, no buckets.
    want.push(json!({"@map": "infos", "key": {"name": COMM}, "value": {"count": e.info.0, "total": e.info.1}, "buckets": []}));
    assert_eq!(json_lines(&done.stdout), want, "{}", done.stdout);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn default_views_table() {
    let done = run(&["--fill_slots"], || call(&CALLS));
    let e = expected(&CALLS);
    let lines: Vec<&str> = done.stdout.lines().collect();
    let title = |map: &str| {
        lines
            .iter()
            .position(|l| l.len() > 13 && l[13..].starts_with(&format!("map {map}:")))
            .unwrap_or_else(|| panic!("no view of `{map}`:\n{}", done.stdout))
    };
    // Scratch maps and bare numbers are left out.
    for hidden in ["start", "heap", "lat"] {
        assert!(
            !done.stdout.contains(&format!(" map {hidden}:")),
            "{hidden} shown:\n{}",
            done.stdout
        );
    }
    // counts: biggest count first, ties by counter as a number.
    let at = title("counts");
    assert_eq!(
        lines[at],
        &format!("{} map counts: 4 entries", &lines[at][..12])
    );
    assert_eq!(common::cells(lines[at + 1]), ["KEY", "COUNT", "TOTAL"]);
    let rows: Vec<Vec<&str>> = lines[at + 2..at + 6]
        .iter()
        .map(|l| common::cells(l))
        .collect();
    let want: Vec<Vec<String>> = e
        .counts
        .iter()
        .map(|(k, n, t)| vec![k.to_string(), n.to_string(), t.to_string()])
        .collect();
    assert_eq!(rows, want, "{}", done.stdout);
    // hists: `key = <bucket>, comm = <comm>`, bcc's header and one line per slot.
    let mut text = String::new();
    for (bucket, slots) in &e.hists {
        text.push_str(&format!("\nkey = {bucket}, comm = {COMM}\n"));
        text.push_str("     value               : count    distribution\n");
        let max = *slots.iter().max().unwrap();
        for (i, &count) in used(slots).iter().enumerate() {
            let (low, high, _) = log2_bucket(i, count);
            let stars = (count * 40 / max) as usize;
            text.push_str(&format!(
                "{low:>10} -> {high:<10} : {count:<8} |{}{}|\n",
                "*".repeat(stars),
                " ".repeat(40 - stars)
            ));
        }
    }
    let at = title("hists");
    let end = title("infos");
    assert_eq!(
        lines[at + 1..end].join("\n") + "\n",
        text.trim_end().to_string() + "\n\n",
        "{}",
        done.stdout
    );
    // infos with --fill_slots: per-CPU copies summed, the histogram drawn under its label.
    let at = title("infos");
    assert_eq!(
        lines[at + 2],
        format!("name = {COMM}, count = {}, total = {}", e.info.0, e.info.1)
    );
    let counts: Vec<u64> = lines[at + 4..]
        .iter()
        .map(|l| common::cells(l)[4].parse().unwrap())
        .collect();
    assert_eq!(counts, used(&e.info.2), "{}", done.stdout);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn default_views_csv() {
    let done = run(&["-o", "csv"], || call(&CALLS));
    let e = expected(&CALLS);
    let records = common::csv_records(&done.stdout);
    let time = records[1][0].clone();
    let mut want: Vec<Vec<String>> = vec![["@time", "@map", "key", "value.count", "value.total"]
        .map(String::from)
        .to_vec()];
    for (k, n, t) in &e.counts {
        want.push(vec![
            time.clone(),
            "counts".into(),
            k.to_string(),
            n.to_string(),
            t.to_string(),
        ]);
    }
    want.push(
        [
            "@time",
            "@map",
            "key",
            "value.comm",
            "@bucket_low",
            "@bucket_high",
            "@bucket_count",
        ]
        .map(String::from)
        .to_vec(),
    );
    for (bucket, slots) in &e.hists {
        for (i, &c) in used(slots).iter().enumerate() {
            let (low, high, count) = log2_bucket(i, c);
            want.push(
                [
                    &time,
                    "hists",
                    &bucket.to_string(),
                    COMM,
                    &low.to_string(),
                    &high.to_string(),
                    &count.to_string(),
                ]
                .map(String::from)
                .to_vec(),
            );
        }
    }
    want.push(
        [
            "@time",
            "@map",
            "key.name",
            "value.count",
            "value.total",
            "@bucket_low",
            "@bucket_high",
            "@bucket_count",
        ]
        .map(String::from)
        .to_vec(),
    );
    want.push(
        [
            &time,
            "infos",
            COMM,
            &e.info.0.to_string(),
            &e.info.1.to_string(),
            "",
            "",
            "",
        ]
        .map(String::from)
        .to_vec(),
    );
    // All at one second, or the time column would differ between views.
    let records: Vec<Vec<String>> = records
        .into_iter()
        .map(|mut r| {
            if r[0] != "@time" {
                r[0] = time.clone();
            }
            r
        })
        .collect();
    assert_eq!(records, want, "{}", done.stdout);
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn view_chooses_at_run_time() {
    let done = run(
        &[
            "-o",
            "json",
            "--fill_slots",
            "--view",
            "counts=none",
            "--view",
            "hists=table",
            "--view",
            "start=table",
            "--view",
            "lat=linear_hist",
        ],
        || call(&CALLS),
    );
    let e = expected(&CALLS);
    let lines = json_lines(&done.stdout);
    let mut maps: Vec<&str> = lines.iter().map(|v| v["@map"].as_str().unwrap()).collect();
    maps.sort();
    // counts hidden, heap left out, infos by default.
    assert_eq!(maps, ["hists", "infos", "lat", "start"], "{}", done.stdout);
    let view = |map: &str| lines.iter().find(|v| v["@map"] == map).unwrap().clone();
    let lines = ["hists", "infos", "lat", "start"].map(view);
    let hists: Vec<Value> = e
        .hists
        .iter()
        .map(|(b, slots)| json!({"key": b, "value": {"slots": slots, "comm": COMM}}))
        .collect();
    assert_eq!(lines[0], json!({"@map": "hists", "entries": hists}));
    assert_eq!(
        lines[1],
        json!({"@map": "infos", "key": {"name": COMM}, "value": {"count": e.info.0, "total": e.info.1}, "buckets": json_buckets(&e.info.2)})
    );
    let linear: Vec<Value> = used(&e.lat)
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"low": i, "high": i, "count": c}))
        .collect();
    assert_eq!(lines[2], json!({"@map": "lat", "buckets": linear}));
    // start: the test thread's id -> the last value it passed.
    let entries = lines[3]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", done.stdout);
    assert_eq!(entries[0]["value"], json!(CALLS[9].0));
}

#[test]
fn view_usage_errors() {
    let pkg = corpus_package("hists");
    for (args, why) in [
        (
            &["--view", "nosuch=table"][..],
            "--view names map `nosuch`, which this package does not have (its maps: lat, start, counts, hists, infos, heap)",
        ),
        (
            &["--view", "counts=log2_hist"][..],
            "--view counts: map `counts`: a log2_hist view needs an integer array of slots as value",
        ),
        (
            &["--view", "counts=pie"][..],
            "unknown view `pie`; expected MAP=VIEW, VIEW being table, log2_hist, linear_hist or none",
        ),
        (&["--view", "counts"][..], "expected MAP=VIEW"),
        (&["--clear"][..], "--interval"),
    ] {
        let mut all = vec!["run", pkg.as_str()];
        all.extend(args);
        let done = run_runner(&all);
        assert_eq!(done.status.code(), Some(2), "{args:?}: {}", done.stderr);
        assert!(done.stderr.contains(why), "{args:?}: expected {why:?} in:\n{}", done.stderr);
        assert!(done.stdout.is_empty(), "{args:?}: {}", done.stdout);
    }
}

/// Per dump (one per --interval, then at exit): counter -> count, and lat's slots. A dump
/// prints each map once (a histogram view one line per key), in the package's order.
fn dumps(stdout: &str) -> Vec<(BTreeMap<u64, u64>, Vec<u64>)> {
    let mut groups: Vec<BTreeMap<String, Value>> = Vec::new();
    let mut last = String::new();
    for v in json_lines(stdout) {
        let map = v["@map"].as_str().unwrap().to_string();
        match groups.last_mut() {
            Some(_) if map == last => {}
            Some(group) if !group.contains_key(&map) => {
                group.insert(map.clone(), v);
            }
            _ => groups.push(BTreeMap::from([(map.clone(), v)])),
        }
        last = map;
    }
    groups
        .into_iter()
        .map(|group| {
            let counts = group["counts"]["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["key"].as_u64().unwrap(),
                        e["value"]["count"].as_u64().unwrap(),
                    )
                })
                .collect();
            let mut slots = vec![0; HISTS_SLOTS];
            for (i, b) in group["lat"]["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                slots[i] = b["count"].as_u64().unwrap();
            }
            (counts, slots)
        })
        .collect()
}

/// Two batches a second apart, printed every 0.3 s.
fn interval_run(clear: bool) -> Vec<(BTreeMap<u64, u64>, Vec<u64>)> {
    let mut args = vec!["-o", "json", "--interval", "0.3", "--view", "lat=log2_hist"];
    if clear {
        args.push("--clear");
    }
    let done = run(&args, || {
        call(&CALLS[..5]);
        std::thread::sleep(Duration::from_millis(1000));
        call(&CALLS[5..]);
    });
    dumps(&done.stdout)
}

fn totals(calls: &[(u64, u64, u64)]) -> (BTreeMap<u64, u64>, Vec<u64>) {
    let e = expected(calls);
    (e.counts.iter().map(|(k, n, _)| (*k, *n)).collect(), e.lat)
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn interval_accumulates_without_clear() {
    let dumps = interval_run(false);
    assert!(dumps.len() >= 3, "{} dumps", dumps.len());
    // Every dump holds what came before it; the last, everything.
    for pair in dumps.windows(2) {
        for (k, n) in &pair[0].0 {
            assert!(pair[1].0[k] >= *n, "{dumps:?}");
        }
    }
    assert_eq!(dumps.last().unwrap(), &totals(&CALLS));
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn interval_clear_prints_each_call_once() {
    let dumps = interval_run(true);
    assert!(dumps.len() >= 3, "{} dumps", dumps.len());
    // Each interval shows only its own calls: the two batches, a second apart, land in
    // different dumps, and summed over the dumps every call is counted exactly once
    // (hash entries deleted, the array's slots zeroed).
    let busy = dumps.iter().filter(|(c, _)| !c.is_empty()).count();
    assert!(busy >= 2, "{dumps:?}");
    let mut sum = (BTreeMap::new(), vec![0; HISTS_SLOTS]);
    for (counts, lat) in &dumps {
        for (k, n) in counts {
            *sum.0.entry(*k).or_insert(0) += n;
        }
        for (s, n) in sum.1.iter_mut().zip(lat) {
            *s += n;
        }
    }
    assert_eq!(sum, totals(&CALLS), "{dumps:?}");
}

/// A package may declare views the object's tags do not (written by whoever built it):
/// the runner takes a view the map's types allow, with its unit, and drops one they do not.
#[test]
fn declared_views_come_from_the_package() {
    let mut pkg: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus_package("hists")).unwrap()).unwrap();
    for map in pkg["maps"].as_array_mut().unwrap() {
        match map["name"].as_str().unwrap() {
            "start" => map["view"] = json!("table"),
            "hists" => {
                map["view"] = json!("log2_hist");
                map["unit"] = json!("usecs");
            }
            "counts" => map["view"] = json!("log2_hist"),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("declared.json");
    std::fs::write(&path, serde_json::to_string(&pkg).unwrap()).unwrap();
    let done = run_runner(&["info", path.to_str().unwrap()]);
    assert!(done.status.success(), "{}", done.stderr);
    let views: BTreeMap<String, String> = done
        .stdout
        .lines()
        .skip_while(|l| *l != "Maps:")
        .skip(2)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let cells = common::cells(l);
            (cells[0].to_string(), cells[5..].join(" "))
        })
        .collect();
    let want: BTreeMap<String, String> = [
        ("start", "table"),
        ("hists", "log2_hist, in usecs"),
        // counts has no slots: its declared log2_hist is dropped; and with views declared,
        // no map is shown by default.
        ("counts", "-"),
        ("infos", "-"),
        ("lat", "-"),
        ("heap", "-"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(views, want, "{}", done.stdout);
}
