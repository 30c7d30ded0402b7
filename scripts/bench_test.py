#!/usr/bin/env python3
"""Unit tests for the pure parts of scripts/bench: output parsing, clock stamps, statistics.

Run with `python3 scripts/bench_test.py` (no root, no tracer needed).
"""

import re
import sys
import unittest

sys.dont_write_bytecode = True

from bench_report import add_overheads, markdown, summarize  # noqa: E402
from bench_session import (  # noqa: E402
    CLOCK_PID_BASE,
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


def record(rnd, tracer, ns, **extra):
    rec = {
        "round": rnd,
        "mode": "kill0",
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


if __name__ == "__main__":
    unittest.main()
