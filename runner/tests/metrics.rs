//! End-to-end tests of `runner run --metrics ADDR`: the runner is started as a user starts
//! it, a workload with a known count is generated, and `/metrics` is scraped over HTTP
//! (and, in `prometheus_scrapes_exact_counts`, through a real Prometheus) to assert exact
//! values: events per channel, a package's declared counter by label, the series cap and
//! what it dropped, and a histogram view's `le` buckets.
//!
//! The workload: `killer` (C, compiled with `cc` at test time, its comm is its file name)
//! waits for a line on stdin, then calls kill(TARGET, 0) COUNT times per target, so a
//! tracer filtered on its pid sees exactly what it did.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON): the BPF tests are `#[ignore]`d and
//! `scripts/test` runs them (see `common::require_bpf`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{corpus_package, prctl, run_runner, set_comm, Tracer};

const KILLER_C: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* killer COUNT TARGET...: after a line on stdin, kill(TARGET, 0) COUNT times for each
 * target (0: itself), then "done"; exits when stdin closes. */
int main(int argc, char **argv)
{
	char line[64];
	int count = argc > 1 ? atoi(argv[1]) : 0;

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int t = 2; t < argc; t++) {
		pid_t target = (pid_t)atoi(argv[t]);
		if (!target)
			target = getpid();
		for (int i = 0; i < count; i++)
			kill(target, 0);
	}
	printf("done\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
"#;

/// How long a scrape may wait for a count to arrive.
const ARRIVE: Duration = Duration::from_secs(15);

/// A running `killer`, waiting for its go.
pub struct Killer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Killer {
    /// `count` kill(target, 0) per target (0: itself), once told to.
    pub fn new(count: u32, targets: &[i64]) -> Killer {
        let mut child = Command::new(common::c_helper("killer", KILLER_C))
            .arg(count.to_string())
            .args(targets.iter().map(|t| t.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn killer");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        Killer { child, out }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Do the kills and wait until they are done.
    pub fn fire(&mut self) {
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        assert_eq!(line, "done\n");
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = common::wait_timeout(&mut self.child, Duration::from_secs(10));
    }
}

/// A pid that cannot exist: above /proc/sys/kernel/pid_max.
fn no_such_pid() -> i64 {
    let max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    max + 1000
}

/// Start `runner run <args> --metrics 127.0.0.1:0` and the address it serves on.
fn start(args: &[&str]) -> (Tracer, String) {
    let mut all = args.to_vec();
    all.extend(["--metrics", "127.0.0.1:0", "--duration", "60"]);
    let tracer = Tracer::start(&all);
    let addr = tracer
        .said()
        .iter()
        .find_map(|l| l.strip_prefix("runner: serving metrics at http://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in {:?}", tracer.said()))
        .to_string();
    (tracer, addr)
}

/// Start `pkg` filtered on `killer`'s pid, printing nothing, with metrics served: as
/// [`start`].
fn start_on(pkg: &str, killer: &Killer) -> (Tracer, String) {
    let pid = killer.pid().to_string();
    start(&[pkg, "--filtered_pid", &pid, "-o", "none"])
}

/// GET `path`: the status line and the body.
fn get(addr: &str, path: &str, accept: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n{accept}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"));
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_string(), body.to_string())
}

/// `/metrics` in the Prometheus text format.
fn scrape(addr: &str) -> String {
    let (head, body) = get(addr, "/metrics", None);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    body
}

/// The labels of a sample line, in order: `{a="x",b="y\"z"}`.
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name.trim_start_matches(',').to_string(), value));
        rest = &after[end..];
    }
    out
}

/// Every sample of `name`: (labels, value).
fn samples(text: &str, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, labels) = match series.split_once('{') {
                Some((n, l)) => (n, parse_labels(l.strip_suffix('}')?)),
                None => (series, Vec::new()),
            };
            (n == name).then(|| (labels, value.parse().unwrap()))
        })
        .collect()
}

/// The value of the sample of `name` with exactly `labels` (in any order).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.sort();
    samples(text, name).into_iter().find_map(|(mut l, v)| {
        l.sort();
        (l == want).then_some(v)
    })
}

/// Scrape until `ready` holds (up to [`ARRIVE`]); the last scrape.
fn scrape_until(addr: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + ARRIVE;
    loop {
        let text = scrape(addr);
        if ready(&text) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Scrape until `ready` holds, then once more after a second and a half in which nothing
/// more may come: that last scrape.
fn scrape_settled(addr: &str, ready: impl Fn(&str) -> bool) -> String {
    scrape_until(addr, ready);
    std::thread::sleep(Duration::from_millis(1500));
    scrape(addr)
}

/// A package of sigsnoop built with `sidecar`.
fn sigsnoop_with(sidecar: &serde_json::Value, name: &str) -> String {
    let source = common::repo().join("programs/sigsnoop/sigsnoop.bpf.c");
    let built = common::build_with_sidecar(&source, sidecar, "metrics", name);
    assert!(
        built.done.status.success(),
        "runner build: {}",
        built.done.stderr
    );
    built.package.to_str().unwrap().to_string()
}

#[test]
fn info_lists_the_metrics_and_bad_options_are_usage_errors() {
    let pkg = common::sigsnoop_package();
    let pkg = pkg.to_str().unwrap();
    let info = run_runner(&["info", pkg]);
    assert!(info.status.success(), "{}", info.stderr);
    let listed: Vec<Vec<&str>> = info
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Metrics"))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .map(common::cells)
        .collect();
    assert_eq!(
        listed,
        [
            vec!["runner_info", "info", "package,", "version"],
            vec!["runner_events_total", "counter", "package,", "map"],
            vec!["runner_events_lost_total", "counter", "package,", "map"],
            vec![
                "runner_metric_dropped_total",
                "counter",
                "package,",
                "metric"
            ],
            vec![
                "sigsnoop_signals_total",
                "counter",
                "sig,",
                "comm",
                "(at",
                "most",
                "1000",
                "series)"
            ],
        ]
    );
    for (args, error) in [
        (
            vec!["--metrics", "9464"],
            "expected an address and a port, like 127.0.0.1:9464",
        ),
        (
            vec!["--labels", "host"],
            "--labels adds keys to JSON lines: use it with -o json",
        ),
        (
            vec!["-o", "json", "--labels", "a-b=1"],
            "`a-b=1`: expected host, package or KEY=VALUE",
        ),
    ] {
        let mut all = vec!["run", pkg];
        all.extend(args.iter().copied());
        let done = run_runner(&all);
        assert_eq!(done.status.code(), Some(2), "{args:?}: {}", done.stderr);
        assert!(done.stderr.contains(error), "{args:?}: {}", done.stderr);
        assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    }
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn sigsnoop_counts_kills_exactly() {
    common::require_bpf();
    let mut killer = Killer::new(100, &[0]);
    let pkg = common::sigsnoop_package();
    let (tracer, addr) = start_on(pkg.to_str().unwrap(), &killer);
    let signals = [("sig", "0"), ("comm", "killer")];
    let before = scrape(&addr);
    assert_eq!(value(&before, "sigsnoop_signals_total", &signals), None);
    assert_eq!(
        value(
            &before,
            "runner_info",
            &[
                ("package", "sigsnoop"),
                ("version", env!("CARGO_PKG_VERSION"))
            ]
        ),
        Some(1.0)
    );
    killer.fire();
    // Published at once; nothing more may come in the next second and a half.
    let text = scrape_settled(&addr, |t| {
        value(t, "sigsnoop_signals_total", &signals) == Some(100.0)
    });
    let channel = [("package", "sigsnoop"), ("map", "events")];
    assert_eq!(
        value(&text, "sigsnoop_signals_total", &signals),
        Some(100.0),
        "{text}"
    );
    assert_eq!(samples(&text, "sigsnoop_signals_total").len(), 1, "{text}");
    assert_eq!(
        value(&text, "runner_events_total", &channel),
        Some(100.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "runner_events_lost_total", &channel),
        Some(0.0),
        "{text}"
    );
    let dropped = [("package", "sigsnoop"), ("metric", "signals")];
    assert_eq!(
        value(&text, "runner_metric_dropped_total", &dropped),
        Some(0.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE sigsnoop_signals_total counter\n"),
        "{text}"
    );

    let (head, om) = get(
        &addr,
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    );
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(om.contains("# TYPE sigsnoop_signals counter\n"), "{om}");
    assert_eq!(
        value(&om, "sigsnoop_signals_total", &signals),
        Some(100.0),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    let (head, _) = get(&addr, "/nothing", None);
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");

    let done = tracer.stop();
    assert!(done.status.success(), "{}: {}", done.status, done.stderr);
    assert_eq!(done.stdout, "", "-o none printed");
    assert!(
        done.stderr.contains("runner: 100 events, 0 lost"),
        "{}",
        done.stderr
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn series_cap_counts_what_it_drops() {
    common::require_bpf();
    let sidecar = serde_json::json!({
        "metrics": {"by_target": {"labels": ["tpid"], "max_series": 2, "help": "kills by target"}}
    });
    let pkg = sigsnoop_with(&sidecar, "capped");
    let bad = no_such_pid();
    let mut killer = Killer::new(3, &[0, bad, bad + 1, bad + 2]);
    let (tracer, addr) = start_on(&pkg, &killer);
    killer.fire();
    let dropped = [("package", "sigsnoop"), ("metric", "by_target")];
    let text = scrape_settled(&addr, |t| {
        value(t, "runner_metric_dropped_total", &dropped) == Some(6.0)
    });
    let channel = [("package", "sigsnoop"), ("map", "events")];
    assert_eq!(
        value(&text, "runner_events_total", &channel),
        Some(12.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "runner_metric_dropped_total", &dropped),
        Some(6.0),
        "{text}"
    );
    // Which two targets were kept depends on the order within a batch; each is whole.
    let kept = samples(&text, "sigsnoop_by_target_total");
    assert_eq!(kept.len(), 2, "{text}");
    let targets: Vec<String> = [killer.pid() as i64, bad, bad + 1, bad + 2]
        .iter()
        .map(|t| t.to_string())
        .collect();
    for (labels, count) in kept {
        assert_eq!(labels.len(), 1, "{labels:?}");
        assert_eq!(labels[0].0, "tpid");
        assert!(targets.contains(&labels[0].1), "{labels:?}");
        assert_eq!(count, 3.0, "{text}");
    }
    let done = tracer.stop();
    assert!(done.status.success(), "{}: {}", done.status, done.stderr);
}

/// (value, bucket) of each prctl(OPTION, value, bucket, 0) of corpus/hists.
const HIST_CALLS: [(u64, u64); 7] = [
    (1, 1),
    (2, 1),
    (3, 1),
    (5, 1),
    (1000, 1),
    (40, 2),
    (100_000, 2),
];
const HISTS_OPTION: u64 = 0x5256_0003;
const HISTS_SLOTS: u32 = 16;

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn histogram_view_is_a_histogram_with_le_buckets() {
    common::require_bpf();
    let pkg = corpus_package("hists");
    let tgid = std::process::id().to_string();
    let (tracer, addr) = start(&[&pkg, "--target_tgid", &tgid, "-o", "none"]);
    std::thread::spawn(|| {
        set_comm("corpus-hists");
        for (value, bucket) in HIST_CALLS {
            prctl(HISTS_OPTION, value, bucket, 0, 0);
        }
    })
    .join()
    .unwrap();
    let of = |bucket: &'static str| [("key", bucket), ("comm", "corpus-hists")];
    // Each view is read on its own refresh, so wait for both maps' final values.
    let text = scrape_until(&addr, |t| {
        value(t, "hists_hists_count", &of("1")) == Some(5.0)
            && value(t, "hists_hists_count", &of("2")) == Some(2.0)
            && value(t, "hists_counts_count_value", &[("key", "0")]) == Some(7.0)
    });
    for bucket in [1, 2] {
        let values: Vec<u64> = HIST_CALLS
            .iter()
            .filter(|c| c.1 == bucket)
            .map(|c| c.0)
            .collect();
        let key = bucket.to_string();
        let labels = [("key", key.as_str()), ("comm", "corpus-hists")];
        assert_eq!(
            value(&text, "hists_hists_count", &labels),
            Some(values.len() as f64),
            "{text}"
        );
        // log2 slot i holds [2^i, 2^(i+1)-1] (slot 0: 0 and 1); the last slot everything above.
        for i in 0..HISTS_SLOTS - 1 {
            let le = ((2u64 << i) - 1) as f64;
            let below = values.iter().filter(|&&v| v as f64 <= le).count() as f64;
            let le = format!("{le:.1}");
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            let got = value(&text, "hists_hists_bucket", &with_le);
            // The view prints the slots up to the last one used; above it, no bucket.
            if got.is_some() || below < values.len() as f64 {
                assert_eq!(got, Some(below), "bucket {bucket} le {le}:\n{text}");
            }
        }
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        assert_eq!(
            value(&text, "hists_hists_bucket", &inf),
            Some(values.len() as f64),
            "{text}"
        );
    }
    assert!(text.contains("# TYPE hists_hists histogram\n"), "{text}");
    // The table view `counts` (key: the counter, all 0 here): count and total as gauges.
    let total: u64 = HIST_CALLS.iter().map(|c| c.0).sum();
    assert_eq!(
        value(&text, "hists_counts_count_value", &[("key", "0")]),
        Some(7.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "hists_counts_total_value", &[("key", "0")]),
        Some(total as f64),
        "{text}"
    );
    let done = tracer.stop();
    assert!(done.status.success(), "{}: {}", done.status, done.stderr);
}

/// A Prometheus server of our own on 127.0.0.1 (its own config and data dir), stopped
/// when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Prometheus {
    /// Start `prometheus` scraping `target` every second; wait until it is ready.
    fn start(bin: &Path, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: runner\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let mut prometheus = Prometheus { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", prometheus.log());
            }
            if TcpStream::connect(&prometheus.addr).is_ok()
                && get(&prometheus.addr, "/-/ready", None).0.contains(" 200 ")
            {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 30 s:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The value of the one series `query` gives now, through the HTTP query API.
    fn query(&self, query: &str) -> Option<f64> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (head, body) = get(&self.addr, &format!("/api/v1/query?query={encoded}"), None);
        assert!(head.contains(" 200 "), "{query}: {head}\n{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["status"], "success", "{body}");
        let result = answer["data"]["result"].as_array().unwrap();
        assert!(result.len() <= 1, "{query}: several series: {body}");
        result
            .first()
            .map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
    }

    /// Query until the value is `want` (up to 30 s); the last value.
    fn wait_for(&self, query: &str, want: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.query(query);
            if got == Some(want) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory preconditions; the child is ours and not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        if common::wait_timeout(&mut self.child, Duration::from_secs(20)).success() {
            return;
        }
        eprintln!("prometheus did not stop cleanly:\n{}", self.log());
    }
}

/// Debian's `prometheus` (scripts/install-deps installs it), if there is one.
fn prometheus_bin() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn prometheus_scrapes_exact_counts() {
    let Some(bin) = prometheus_bin() else {
        // CI installs it (scripts/install-deps): there, its absence is a failure.
        assert_ne!(
            std::env::var("RUNNER_REQUIRE_BPF").as_deref(),
            Ok("1"),
            "no prometheus in PATH"
        );
        eprintln!("SKIPPED prometheus_scrapes_exact_counts: no prometheus in PATH (scripts/install-deps installs it)");
        return;
    };
    common::require_bpf();
    let mut killer = Killer::new(100, &[0]);
    let pkg = common::sigsnoop_package();
    let (tracer, addr) = start_on(pkg.to_str().unwrap(), &killer);
    let prometheus = Prometheus::start(&bin, &addr);
    let up = r#"up{job="runner"}"#;
    assert_eq!(
        prometheus.wait_for(up, 1.0),
        Some(1.0),
        "{}",
        prometheus.log()
    );
    // Scraped before the workload: the counter starts from nothing, at 0 events.
    let events = r#"runner_events_total{package="sigsnoop",map="events"}"#;
    assert_eq!(prometheus.wait_for(events, 0.0), Some(0.0));
    killer.fire();
    let signals = r#"sigsnoop_signals_total{sig="0",comm="killer"}"#;
    assert_eq!(
        prometheus.wait_for(signals, 100.0),
        Some(100.0),
        "{}",
        prometheus.log()
    );
    assert_eq!(prometheus.wait_for(events, 100.0), Some(100.0));
    // Two more scrapes: still exactly 100, and the target still up.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(prometheus.query(signals), Some(100.0));
    assert_eq!(prometheus.query(events), Some(100.0));
    assert_eq!(prometheus.query(up), Some(1.0));
    assert_eq!(
        prometheus.query(r#"runner_events_lost_total{package="sigsnoop",map="events"}"#),
        Some(0.0)
    );
    drop(prometheus);
    let done = tracer.stop();
    assert!(done.status.success(), "{}: {}", done.status, done.stderr);
}

/// A ring buffer whose `runner:metric=` tag declares a counter, as a source would.
const TAGGED_C: &str = r#"// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	int sig;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps") __attribute__((btf_decl_tag("runner:event=event")))
	__attribute__((btf_decl_tag("runner:metric=by_comm:comm,sig:7")));

SEC("tracepoint/syscalls/sys_enter_kill")
int on_kill(void *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->sig = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn a_decl_tag_declares_a_counter() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("my-tool.bpf.c");
    std::fs::write(&source, TAGGED_C).unwrap();
    let vmlinux = common::repo().join("programs/vmlinux.h");
    let pkg = dir.path().join("my-tool.json");
    let done = run_runner(&[
        "build",
        source.to_str().unwrap(),
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        "-o",
        pkg.to_str().unwrap(),
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pkg).unwrap()).unwrap();
    assert_eq!(
        json["events"][0]["metrics"],
        serde_json::json!([{"name": "by_comm", "labels": ["comm", "sig"], "max_series": 7}])
    );
    // The package is `my-tool`: its metric names are sanitised.
    let info = run_runner(&["info", pkg.to_str().unwrap()]);
    assert!(
        info.stdout.lines().any(|l| common::cells(l)[..]
            == [
                "my_tool_by_comm_total",
                "counter",
                "comm,",
                "sig",
                "(at",
                "most",
                "7",
                "series)"
            ]),
        "{}",
        info.stdout
    );
    // A tag naming no member is refused with the struct's members.
    std::fs::write(&source, TAGGED_C.replace("comm,sig:7", "comm,signal")).unwrap();
    let done = run_runner(&[
        "build",
        source.to_str().unwrap(),
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        "-o",
        pkg.to_str().unwrap(),
    ]);
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        done.stderr.contains("map `events`: metric `by_comm`: struct event has no member `signal` (its members: `pid`, `sig`, `comm`)"),
        "{}",
        done.stderr
    );
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn labels_start_every_json_line() {
    common::require_bpf();
    let mut killer = Killer::new(2, &[0]);
    let pid = killer.pid().to_string();
    let pkg = common::sigsnoop_package();
    let tracer = Tracer::start(&[
        pkg.to_str().unwrap(),
        "--filtered_pid",
        &pid,
        "-o",
        "json",
        "--labels",
        "host=node-7,package,env=a\"b",
    ]);
    killer.fire();
    let done = tracer.stop();
    assert!(done.status.success(), "{}: {}", done.status, done.stderr);
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", done.stdout);
    for line in lines {
        assert!(
            line.starts_with(r#"{"@host":"node-7","@package":"sigsnoop","@env":"a\"b","@time":"#),
            "{line}"
        );
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["pid"], killer.pid());
        assert_eq!(event["comm"], "killer");
    }
}
