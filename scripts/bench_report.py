"""Statistics and output for scripts/bench: derived metrics, markdown tables, JSON, optional chart.

Every metric is described once in METRICS; that one list drives the derived values, the table
columns, the number formats and which metrics get a ratio to the baseline tracer.

Per (mode, tracer, sink, metric) the tables show the median over rounds and [min, max]; the ratio
table divides the medians by those of the baseline (libbpf-tools-k) with the same sink and mode.
A mode's tables leave out the metrics that none of its runs has (latency outside mode latency).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

BASELINE = "libbpf-tools-k"
LATENCY_GOAL_MS = 200  # the bound on signal-to-screen latency at low rates

LEGEND = f"""\
Cells: median [min, max] over rounds; `–`: not measurable for that tracer/sink.
- ns/call, k calls/s: generator's time per signal syscall (sleeps excluded at a fixed rate), and
  the rate it achieved. Overhead: ns/call minus ns/call without a tracer, same round.
- tracer CPU ns/event: tracer CPU (all threads, schedstat) from generator start until the output
  drained, per event delivered (file) or generated − lost (/dev/null). CPU total: user + sys over
  the tracer's whole life, loading included (wait4). Peak RSS: VmHWM before the tracer stops.
- delivered %: table lines from the generator's pid / calls made; lost: as the tracer reported.
- ready ms: from exec to the send time of the first traced ping (file sink); first line ms: when
  that line reached the file (adds output buffering); polling ms: when the tracer was first seen
  blocked waiting for events with a BPF program loaded (the /dev/null readiness gate; may be `–`
  with the file sink when the tracer is never caught idle while pings flow).
- latency median/max ms (mode latency): per event, when its line appeared in the output file
  (size polled every ms) minus its send time (stamped in the TPID by siggen kill-clock); median
  and max over the run's events. The goal: under {LATENCY_GOAL_MS} ms. A tracer whose stdio output
  to a file is block-buffered writes only when its buffer fills (4 KiB: ~65 lines, the readiness
  pings and other processes' signals included) and at exit. Lines at exit %: events whose line
  appeared only when the tracer exited on SIGINT; their latency then depends on when the benchmark
  stopped the tracer (in real use: unbounded)."""


@dataclass(frozen=True)
class Metric:
    key: str
    header: str
    digits: int
    ratio: bool  # also shown relative to the baseline tracer
    value: Callable[[dict], float | None]


def _delivered_pct(rec: dict) -> float | None:
    if rec.get("events_delivered") is None:
        return None
    return 100.0 * rec["events_delivered"] / rec["events_generated"]


def _cpu_per_event(rec: dict) -> float | None:
    """Streaming CPU per event handled: delivered lines with a file sink, else generated − lost
    (generated alone when the tracer's loss reports went to /dev/null with its output)."""
    if "stream_cpu_ns" not in rec:
        return None
    events = rec["events_delivered"]
    if events is None:
        events = rec["events_generated"] - (rec["lost"] or 0)
    return rec["stream_cpu_ns"] / events if events > 0 else None


def _peak_rss_mib(rec: dict) -> float | None:
    return rec["peak_rss_kib"] / 1024 if "peak_rss_kib" in rec else None


def _kcalls_per_s(rec: dict) -> float:
    return rec["events_generated"] / rec["generator"]["elapsed_ns"] * 1e6


def _latency(pick: Callable[[list[float]], float]) -> Callable[[dict], float | None]:
    """A statistic over the latencies of a run's events (mode latency)."""
    return lambda rec: pick(rec["latencies_ms"]) if rec.get("latencies_ms") else None


def _at_exit_pct(rec: dict) -> float | None:
    if not rec.get("latencies_ms"):
        return None
    return 100.0 * rec["lines_at_exit"] / len(rec["latencies_ms"])


METRICS = [
    Metric("ns_per_call", "ns/call", 0, False, lambda r: r["ns_per_call"]),
    Metric("kcalls_per_s", "k calls/s", 1, False, _kcalls_per_s),
    Metric("overhead_ns", "overhead ns/call", 0, True, lambda r: r.get("overhead_ns")),
    Metric("cpu_ns_per_event", "tracer CPU ns/event", 0, True, _cpu_per_event),
    Metric("delivered_pct", "delivered %", 1, False, _delivered_pct),
    Metric("lost", "lost", 0, False, lambda r: r.get("lost")),
    Metric("ready_ms", "ready ms", 1, True, lambda r: r.get("ready_ms")),
    Metric("stop_ms", "stop ms", 0, True, lambda r: r.get("stop_ms")),
    Metric("first_line_ms", "first line ms", 1, False, lambda r: r.get("first_line_ms")),
    Metric("poll_ms", "polling ms", 1, False, lambda r: r.get("poll_ms")),
    Metric("latency_median_ms", "latency median ms", 1, True, _latency(statistics.median)),
    Metric("latency_max_ms", "latency max ms", 1, True, _latency(max)),
    Metric("at_exit_pct", "lines at exit %", 0, False, _at_exit_pct),
    Metric("peak_rss_mib", "peak RSS MiB", 1, True, _peak_rss_mib),
    Metric("cpu_total_ms", "tracer CPU total ms", 0, True, lambda r: r.get("cpu_total_ms")),
]


def add_overheads(records: list[dict]) -> None:
    """overhead_ns = ns_per_call with the tracer − ns_per_call without, same round and mode."""
    untraced = {
        (r["round"], r["mode"]): r["ns_per_call"]
        for r in records
        if r["tracer"] == "none" and "error" not in r
    }
    for rec in records:
        base = untraced.get((rec["round"], rec["mode"]))
        if "error" not in rec and base is not None:
            rec["overhead_ns"] = rec["ns_per_call"] - base


def summarize(records: list[dict]) -> dict:
    """{(mode, tracer, sink): {"runs", "failed", metric key: {"median", "min", "max"} | None}}"""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault((rec["mode"], rec["tracer"], rec["sink"]), []).append(rec)
    summary = {}
    for key, recs in groups.items():
        ok = [r for r in recs if "error" not in r]
        row = {"runs": len(recs), "failed": len(recs) - len(ok)}
        for metric in METRICS:
            values = [v for v in map(metric.value, ok) if v is not None]
            row[metric.key] = _stats(values) if values else None
        summary[key] = row
    return summary


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _cell(stat: dict | None, digits: int) -> str:
    if stat is None:
        return "–"
    median = _number(stat["median"], digits)
    if stat["min"] == stat["max"]:
        return median
    return f"{median} [{_number(stat['min'], digits)}, {_number(stat['max'], digits)}]"


def _ratio_cell(stat: dict | None, base: dict | None) -> str:
    if stat is None or base is None or base["median"] == 0:
        return "–"
    return f"×{stat['median'] / base['median']:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _front_matter(meta: dict) -> list[str]:
    lines = [f"# Signal tracer benchmark {meta['started']}", ""]
    lines += [f"- {name}: {value}" for name, value in meta["settings"].items()]
    lines += ["", "Tracers:", "", "```sh"]
    lines += [f"# {name}\n{command}" for name, command in meta["tracers"].items()]
    lines += ["```", "", LEGEND]
    return lines


def _measured(summary: dict, keys: list[tuple]) -> list[Metric]:
    """The metrics that at least one of these rows has a value for."""
    return [m for m in METRICS if any(summary[key][m.key] is not None for key in keys)]


def _metrics_table(summary: dict, keys: list[tuple]) -> list[str]:
    metrics = _measured(summary, keys)
    rows = []
    for key in keys:
        row = summary[key]
        ok = f"{row['runs'] - row['failed']}/{row['runs']}"
        rows.append([key[1], key[2], ok] + [_cell(row[m.key], m.digits) for m in metrics])
    return _table(["tracer", "sink", "ok"] + [m.header for m in metrics], rows)


def _ratio_table(summary: dict, keys: list[tuple]) -> list[str]:
    ratio_metrics = [m for m in _measured(summary, keys) if m.ratio]
    rows = []
    for mode, tracer, sink in keys:
        base = summary.get((mode, BASELINE, sink))
        if tracer in ("none", BASELINE) or base is None:
            continue
        row = summary[(mode, tracer, sink)]
        rows.append([tracer, sink] + [_ratio_cell(row[m.key], base[m.key]) for m in ratio_metrics])
    if not rows:
        return ["(nothing to compare with in this run)"]
    return _table(["tracer", "sink"] + [m.header for m in ratio_metrics], rows)


def markdown(summary: dict, modes: list[str], meta: dict) -> str:
    lines = _front_matter(meta)
    for mode in modes:
        keys = [key for key in summary if key[0] == mode]
        lines += ["", f"## {mode}", ""] + _metrics_table(summary, keys)
        lines += ["", f"Ratio of medians to `{BASELINE}` (same sink):", ""]
        lines += _ratio_table(summary, keys)
    return "\n".join(lines) + "\n"


def write_chart(summary: dict, modes: list[str], path: Path) -> bool:
    """Bar charts of overhead and tracer CPU per event, if matplotlib is available."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    configs = sorted({(k[1], k[2]) for k in summary if k[1] != "none"})
    charted = [
        ("overhead_ns", "generator overhead, ns/call"),
        ("cpu_ns_per_event", "tracer CPU, ns/event"),
    ]
    fig, axes = plt.subplots(1, len(charted), figsize=(6 * len(charted), 4.5))
    width = 0.8 / max(len(configs), 1)
    for ax, (key, title) in zip(axes, charted):
        for i, (tracer, sink) in enumerate(configs):
            medians = []
            for mode in modes:
                stat = summary.get((mode, tracer, sink), {}).get(key)
                medians.append(stat["median"] if stat else 0)
            positions = [m + i * width for m in range(len(modes))]
            ax.bar(positions, medians, width, label=f"{tracer} / {sink}")
        ax.set_xticks([m + width * (len(configs) - 1) / 2 for m in range(len(modes))], modes)
        ax.set_title(title)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(configs), 4), fontsize="small")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_results(
    directory: Path, stamp: str, text: str, raw: dict, summary: dict, modes: list[str]
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / f"bench-{stamp}.md"
    md.write_text(text)
    raw["summary"] = [{"mode": k[0], "tracer": k[1], "sink": k[2], **v} for k, v in summary.items()]
    js = directory / f"bench-{stamp}.json"
    js.write_text(json.dumps(raw, indent=1) + "\n")
    written = [md, js]
    png = directory / f"bench-{stamp}.png"
    if write_chart(summary, modes, png):
        written.append(png)
    return written
