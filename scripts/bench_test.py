#!/usr/bin/env python3
"""Unit tests for the pure parts of scripts/bench: output parsing, clock stamps, latencies,
statistics, the schedule.

Run with `python3 scripts/bench_test.py` (no root, no tracer needed).
"""

import argparse
import importlib.machinery
import importlib.util
import re
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True

from bench_report import add_overheads, markdown, summarize  # noqa: E402
from bench_session import (  # noqa: E402
    CLOCK_PID_BASE,
    Load,
    Tracer,
    TraceTable,
    lost_events,
    stamp_to_monotonic_ns,
)

# Output as each tracer prints it (generator pid 4242, pinger pid 4343).
SIGSNOOP = b"""\
TIME     PID     COMM             SIG       TPID    RESULT
10:30:43 4343    siggen           0         %d -3
10:30:43 4242    siggen           0         4242    0
10:30:43 4242    siggen           0         4242    0
10:30:43 999     bash             2         4242    0
"""
BPFTRACE = b"""\
Attaching 8 probes...
TIME     PID     COMM             SIG       TPID    RESULT
10:30:53 4242    siggen           0         4242    0
Lost 329 events
10:30:53 4242    siggen           0         4242    0
Lost 4242 events



"""
RUNNER = b"""\
TIME     PID     TPID    SIG     RET     COMM
10:42:19 4343    %d 0       -3      siggen
10:42:19 4343    %d 0       -3      siggen
10:42:19 4242    4242    0       0       siggen
"""


def feed(table: TraceTable, text: bytes) -> TraceTable:
    for line in text.splitlines():
        table.feed(line)
    return table


def load_bench():
    """scripts/bench as a module (it has no .py suffix)."""
    path = str(Path(__file__).with_name("bench"))
    loader = importlib.machinery.SourceFileLoader("bench", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("bench", loader))
    loader.exec_module(module)
    return module


class TraceTableTest(unittest.TestCase):
    def test_counts_generator_lines_by_pid_column(self):
        stamp = CLOCK_PID_BASE + 5
        table = feed(TraceTable(4242, 4343), SIGSNOOP % stamp)
        self.assertEqual(table.generator_lines, 2)  # not bash's kill of 4242
        self.assertEqual(table.pinger_lines, 1)
        self.assertIsNotNone(table.earliest_ping_ns)

    def test_lost_reports_on_stdout_are_not_rows(self):
        lost_re = re.compile(rb"^Lost (\d+) events")
        table = feed(TraceTable(4242, None, lost_re), BPFTRACE)
        self.assertEqual(table.generator_lines, 2)
        self.assertEqual(table.lost_reports, [329, 4242])

    def test_header_columns_found_by_name(self):
        # Lines from different CPUs can come out of order: the earliest send time wins.
        printed_first, sent_first = CLOCK_PID_BASE + 2_000, CLOCK_PID_BASE + 1_000
        table = feed(TraceTable(4242, 4343), RUNNER % (printed_first, sent_first))
        self.assertEqual(table.generator_lines, 1)
        self.assertEqual(table.pinger_lines, 2)
        self.assertEqual(table.earliest_ping_ns // 1000 % CLOCK_PID_BASE, 1_000)

    def test_no_header_no_rows(self):
        table = feed(TraceTable(4242, None), b"4242 4242 siggen\n")
        self.assertFalse(table.has_header)
        self.assertEqual(table.generator_lines, 0)


def stamp(sent_us: int) -> int:
    """The target pid siggen kill-clock uses for a call sent at `sent_us`."""
    return CLOCK_PID_BASE + sent_us % CLOCK_PID_BASE


class LatencyTest(unittest.TestCase):
    """Lines fed with the time they appeared: generator lines with a clock stamp give latencies."""

    SENT_US = 7 * CLOCK_PID_BASE + 1_000_000  # a few hours of uptime, past several wraps

    def test_latency_is_appearance_minus_stamped_send_time(self):
        sent = [self.SENT_US, self.SENT_US + 50_000, self.SENT_US + 100_000]
        table = TraceTable(4242, 4343)
        table.feed(b"TIME     PID     TPID    SIG     RET     COMM")
        seen_ns = (self.SENT_US + 120_000) * 1000  # the third line after 20 ms: one batch of two
        for line in (b"10:42:19 4242    %d 0       -3      siggen" % stamp(us) for us in sent[:2]):
            table.feed(line, seen_ns)
        table.feed(b"10:42:19 4343    %d 0       -3      siggen" % stamp(sent[0]), seen_ns)
        table.feed(b"10:42:19 4242    %d 0       -3      siggen" % stamp(sent[2]), seen_ns + 7)
        self.assertEqual(table.latencies_ns, [120_000_000, 70_000_000, 20_000_007])
        self.assertEqual((table.generator_lines, table.pinger_lines), (3, 1))

    def test_sigsnoop_columns_and_a_stamp_across_a_wrap(self):
        sent_us = 8 * CLOCK_PID_BASE - 300  # the stamp wraps 300 µs after the send
        table = feed(TraceTable(4242, None), SIGSNOOP.splitlines()[0])
        line = b"10:30:43 4242    siggen           0         %d -3" % stamp(sent_us)
        table.feed(line, (sent_us + 1_500) * 1000)
        self.assertEqual(table.latencies_ns, [1_500_000])

    def test_only_stamped_generator_lines_seen_at_a_known_time(self):
        table = TraceTable(4242, 4343)
        table.feed(SIGSNOOP.splitlines()[0])
        table.feed(b"10:30:43 4242    siggen           0         4242    0", 10**15)  # no stamp
        table.feed(b"10:30:43 4242    siggen           0         %d -3" % stamp(5))  # time unknown
        table.feed(b"10:30:43 999     bash             0         %d -3" % stamp(5), 10**15)
        self.assertEqual(table.latencies_ns, [])
        self.assertEqual(table.generator_lines, 2)


class StampTest(unittest.TestCase):
    def test_recovers_recent_send_time(self):
        sent_us = 123_456_789_012
        tpid = CLOCK_PID_BASE + sent_us % CLOCK_PID_BASE
        now_ns = (sent_us + 250_000) * 1000
        self.assertEqual(stamp_to_monotonic_ns(tpid, now_ns), sent_us * 1000)

    def test_across_a_wrap(self):
        sent_us = 5 * CLOCK_PID_BASE - 10
        tpid = CLOCK_PID_BASE + sent_us % CLOCK_PID_BASE
        now_ns = (5 * CLOCK_PID_BASE + 20) * 1000
        self.assertEqual(stamp_to_monotonic_ns(tpid, now_ns), sent_us * 1000)


class LostTest(unittest.TestCase):
    def tracer(self, is_total: bool) -> Tracer:
        return Tracer("t", ("t",), re.compile(rb"(\d+) lost"), is_total)

    def test_totals_keep_the_last_and_reports_add_up(self):
        self.assertEqual(lost_events(self.tracer(True), [3, 7]), 7)
        self.assertEqual(lost_events(self.tracer(False), [3, 7]), 10)
        self.assertEqual(lost_events(self.tracer(False), []), 0)


def record(rnd, tracer, ns, mode="kill0", **extra):
    rec = {
        "round": rnd,
        "mode": mode,
        "tracer": tracer,
        "sink": "-" if tracer == "none" else "file",
        "ns_per_call": ns,
        "events_generated": 100,
        "generator": {"elapsed_ns": 100 * ns},
    }
    rec.update(extra)
    return rec


class ReportTest(unittest.TestCase):
    def records(self):
        traced = {"stream_cpu_ns": 1000, "events_delivered": 50, "lost": 50, "peak_rss_kib": 2048}
        return [
            record(0, "none", 100),
            record(0, "libbpf-tools-k", 1100, **traced),
            record(0, "runner-k", 300, **traced),
            record(1, "none", 200),
            record(1, "libbpf-tools-k", 1200, **traced),
            record(1, "runner-k", 250, **traced),
            record(2, "runner-k", 0, error="runner-k exited early"),
        ]

    def test_overhead_is_against_the_same_round(self):
        records = self.records()
        add_overheads(records)
        self.assertEqual([r.get("overhead_ns") for r in records], [0, 1000, 200, 0, 1000, 50, None])

    def test_summary_median_min_max_and_failures(self):
        records = self.records()
        add_overheads(records)
        runner = summarize(records)[("kill0", "runner-k", "file")]
        self.assertEqual((runner["runs"], runner["failed"]), (3, 1))
        self.assertEqual(runner["overhead_ns"], {"median": 125, "min": 50, "max": 200})
        self.assertEqual(runner["cpu_ns_per_event"]["median"], 20)
        self.assertEqual(runner["delivered_pct"]["median"], 50)

    def test_markdown_ratio_to_baseline(self):
        records = self.records()
        add_overheads(records)
        meta = {"started": "now", "settings": {}, "tracers": {}}
        text = markdown(summarize(records), ["kill0"], meta)
        self.assertIn("| runner-k | file | 2/3 | 275 [250, 300] |", text)
        self.assertIn("| runner-k | file | ×0.12 |", text)  # overhead 125 / 1000
        self.assertNotIn("latency", text.split("## kill0")[1])  # no column measured by no run

    def test_latency_median_and_max_per_run_then_median_over_rounds(self):
        def timed(rnd, tracer, latencies_ms, at_exit):
            extra = {"latencies_ms": latencies_ms, "lines_at_exit": at_exit, "stream_cpu_ns": 1}
            return record(rnd, tracer, 500, "latency", events_delivered=4, **extra)

        records = [
            timed(0, "runner-k", [10, 30, 20, 40], 0),
            timed(0, "libbpf-tools-k", [2000, 1500, 1000, 500], 4),
            timed(1, "runner-k", [50, 5, 15, 25], 0),
            timed(1, "libbpf-tools-k", [2200, 1700, 1200, 700], 2),
        ]
        add_overheads(records)
        summary = summarize(records)
        runner = summary[("latency", "runner-k", "file")]
        self.assertEqual(runner["latency_median_ms"], {"median": 22.5, "min": 20, "max": 25})
        self.assertEqual(runner["latency_max_ms"], {"median": 45, "min": 40, "max": 50})
        baseline = summary[("latency", "libbpf-tools-k", "file")]
        self.assertEqual(baseline["at_exit_pct"], {"median": 75, "min": 50, "max": 100})
        self.assertIsNone(summary[("latency", "runner-k", "file")]["overhead_ns"])  # no untraced run
        meta = {"started": "now", "settings": {}, "tracers": {}}
        text = markdown(summary, ["latency"], meta)
        header = next(line for line in text.splitlines() if line.startswith("| tracer | sink | ok"))
        self.assertIn("| latency median ms | latency max ms | lines at exit % |", header)
        self.assertIn("| 22.5 [20.0, 25.0] | 45.0 [40.0, 50.0] | 0 |", text)
        # Ratios: CPU/event, then latency median 22.5 / 1350 and max 45 / 2100.
        self.assertIn("| runner-k | file | ×1.00 | ×0.02 | ×0.02 |", text)


class ScheduleTest(unittest.TestCase):
    def test_latency_runs_with_the_file_sink_only(self):
        bench = load_bench()
        args = argparse.Namespace(latency_rate=20, latency_count=40, signal=0, count=10, rate=5)
        args.rate_secs = 1.0
        latency = bench.make_load("latency", args)
        self.assertEqual(
            latency, Load("latency", ("kill-clock", "--rate", "20", "--count", "40"), 40, True)
        )
        plan = list(bench.schedule(2, [bench.make_load("kill0", args), latency], ["t"], ["null"]))
        configs = {(load.name, tracer, sink) for _, load, tracer, sink in plan}
        expected = {("kill0", "none", "-"), ("kill0", "t", "null"), ("latency", "t", "file")}
        self.assertEqual(configs, expected)
        self.assertEqual(len(plan), 6)
        self.assertEqual(list(bench.schedule(1, [latency], [], ["file"])), [])  # nothing to time


if __name__ == "__main__":
    unittest.main()
