"""One measured tracer session for scripts/bench: start, wait until attached, load, drain, stop.

A session is one tracer process, started for one generator run:

    spawn ─▶ gate: attached? ─▶ siggen (measured) ─▶ drain ─▶ SIGINT, wait4 ─▶ parse
             │
             ├─ file sink: a pinger event shows up in the output (also gives ready_ms)
             └─ /dev/null sink: the tracer is blocked in poll with a BPF program loaded

What it records:
- the generator's own report (ns per signal syscall, its pid);
- the tracer's CPU time while it streams: the sum of `/proc/PID/task/*/schedstat` (ns, all threads)
  read just before the generator starts and after the output has drained, so loading and attaching
  do not count; its total CPU (user + sys) from `wait4` after it exits; and its peak RSS, VmHWM
  from /proc/PID/status just before it is stopped (not wait4's ru_maxrss, which also counts the
  forked copy of this Python process before exec); and how long it takes to stop: from SIGINT
  to its exit reaped (`stop_ms`: detaching the programs is most of it);
- events delivered: lines of the tracer's table whose PID column is the generator's pid (the header
  line naming the columns is found by its `PID` token), and events the tracer says it lost (on
  stderr, or for bpftrace on stdout: unknown then with the /dev/null sink);
- readiness: the pinger is `siggen kill-clock`, started before the tracer, whose target pid carries
  the CLOCK_MONOTONIC time the call was made. The earliest pinger line in the output tells when the tracer saw its first
  event (`ready_ms`, exact whatever the output buffering); `first_line_ms` is when that line
  reached the file, and `poll_ms` when the tracer was first seen blocked waiting for events.
- latency, for a timed load (`kill-clock` at a low rate, file sink): the output file's size is
  polled every millisecond from the generator's start until the output has drained, and each
  generator line is stamped with when it appeared; its latency is that time minus the send time its
  TPID carries (`latencies_ms`). Lines that appear only when the tracer exits on SIGINT (output
  buffered until then) are stamped at its exit and counted in `lines_at_exit`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# siggen kill-clock sends to 2^30 + (CLOCK_MONOTONIC µs mod 2^30).
CLOCK_PID_BASE = 1 << 30
PINGER_RATE = 5000  # pings per second while waiting for a tracer to attach
ATTACH_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 10.0
DRAIN_QUIET_S = 0.3  # output and CPU must stay still this long to count as drained
DRAIN_IDLE_CPU_NS = 3_000_000  # tracer CPU allowed per quiet period (timers, poll timeouts)
STOP_TIMEOUT_S = 10.0
GATE_POLL_S = 0.005
LATENCY_POLL_S = 0.001  # how often the output file's size is checked while lines are timed


class BenchError(Exception):
    """A failure the benchmark reports as a message, not a traceback."""


@dataclass(frozen=True)
class Tracer:
    """A tracer configuration: how to run it and how to read what it says it lost."""

    name: str
    argv: tuple[str, ...]
    # Matches a line where the tracer reports dropped events; group 1 is the number.
    lost_re: re.Pattern[bytes]
    # True when each match is a running total (keep the last), False when matches add up.
    lost_is_total: bool
    # Where those reports go: "stderr", or "stdout" (amid the table; gone with a /dev/null sink).
    lost_stream: str = "stderr"
    # What must exist to run it (a path, or a command looked up in PATH), each with how to get it.
    needs: tuple[tuple[Path | str, str], ...] = ()


@dataclass(frozen=True)
class Load:
    """One generator configuration: a siggen mode at full speed or at a fixed rate."""

    name: str
    siggen_args: tuple[str, ...]
    count: int
    # Time each event's line as it appears: siggen kill-clock, traced with the file sink only.
    timed: bool = False


# CPUs the generator and the tracer are confined to (`scripts/bench --placement`); None: any.
PLACEMENT: dict[str, set[int] | None] = {"generator": None, "tracer": None}


def _pinned(role: str):
    """A preexec_fn that confines the child (and the threads it starts) to its role's CPUs."""
    cpus = PLACEMENT[role]
    return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))


def run_generator(siggen: Path, load: Load) -> dict:
    """Run siggen once and return its JSON report."""
    with started_generator(siggen, load) as generator:
        return generator_report(generator)


@contextlib.contextmanager
def started_generator(siggen: Path, load: Load):
    """siggen running in the background; killed if still running when the block is left."""
    argv = [str(siggen), *load.siggen_args]
    generator = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_pinned("generator"),
    )
    try:
        yield generator
    finally:
        if generator.poll() is None:
            generator.kill()
        with generator:  # closes its pipes and reaps it
            pass


def generator_report(generator: subprocess.Popen) -> dict:
    """Wait for siggen to finish and return its JSON report."""
    out, err = generator.communicate()
    if generator.returncode != 0:
        raise BenchError(f"siggen failed ({shlex.join(generator.args)}): {err.strip()}")
    return json.loads(out)


def stamp_to_monotonic_ns(tpid: int, now_ns: int) -> int:
    """The send time of a kill-clock call to `tpid`: the latest µs ≤ now with that residue."""
    stamp_us = tpid - CLOCK_PID_BASE
    now_us = now_ns // 1000
    return (now_us - (now_us - stamp_us) % CLOCK_PID_BASE) * 1000


class TraceTable:
    """Sorts the lines of a tracer's table output by the process in their PID column.

    Lines matching `lost_re` are the tracer's reports of dropped events, not table rows. A line fed
    with the time it appeared in the output, from the generator and with a clock stamp in its TPID
    column (siggen kill-clock), adds that time minus the stamp to `latencies_ns`.
    """

    def __init__(
        self,
        generator_pid: int | None,
        pinger_pid: int | None,
        lost_re: re.Pattern[bytes] | None = None,
    ):
        self._generator = str(generator_pid).encode() if generator_pid else None
        self._pinger = str(pinger_pid).encode() if pinger_pid else None
        self._lost_re = lost_re
        self._pid_col: int | None = None
        self._tpid_col: int | None = None
        self.generator_lines = 0
        self.pinger_lines = 0
        self.earliest_ping_ns: int | None = None
        self.latencies_ns: list[int] = []
        self.lost_reports: list[int] = []

    def feed(self, line: bytes, seen_ns: int | None = None) -> None:
        """Take one line; `seen_ns`, if known, is when it appeared in the output (monotonic)."""
        if self._lost_re and (lost := self._lost_re.search(line)):
            self.lost_reports.append(int(lost.group(1)))
            return
        tokens = line.split()
        if self._pid_col is None:
            if b"PID" in tokens:
                self._pid_col = tokens.index(b"PID")
                self._tpid_col = tokens.index(b"TPID") if b"TPID" in tokens else None
            return
        if len(tokens) <= self._pid_col:
            return
        pid = tokens[self._pid_col]
        if pid == self._generator:
            self.generator_lines += 1
            if seen_ns is not None and (sent := self._sent_ns(tokens, seen_ns)) is not None:
                self.latencies_ns.append(seen_ns - sent)
        elif pid == self._pinger:
            self.pinger_lines += 1
            sent = self._sent_ns(tokens, time.monotonic_ns() if seen_ns is None else seen_ns)
            if sent is not None and (self.earliest_ping_ns is None or sent < self.earliest_ping_ns):
                self.earliest_ping_ns = sent

    def _sent_ns(self, tokens: list[bytes], now_ns: int) -> int | None:
        """The send time stamped in the TPID column by kill-clock, if the line has one."""
        if self._tpid_col is None or len(tokens) <= self._tpid_col:
            return None
        try:
            tpid = int(tokens[self._tpid_col])
        except ValueError:
            return None
        if tpid < CLOCK_PID_BASE:
            return None
        return stamp_to_monotonic_ns(tpid, now_ns)

    @property
    def has_header(self) -> bool:
        return self._pid_col is not None


class FileFollower:
    """Hands out the complete lines appended to a file since the last call."""

    def __init__(self, path: Path):
        self._file = open(path, "rb")
        self._partial = b""
        self.size = 0  # bytes read so far

    def grown(self) -> bool:
        """Whether the file has grown since the last read: one fstat, cheap enough to poll."""
        return os.fstat(self._file.fileno()).st_size > self.size

    def new_lines(self) -> list[bytes]:
        new = self._file.read()
        self.size += len(new)
        *lines, self._partial = (self._partial + new).split(b"\n")
        return lines

    def close(self) -> None:
        self._file.close()


def read_table(path: Path, table: TraceTable) -> TraceTable:
    with open(path, "rb") as out:
        for line in out:
            table.feed(line)
    return table


class TracerProcess:
    """A running tracer in its own process group; leaving the `with` block always ends it."""

    def __init__(self, tracer: Tracer, stdout: Path, stderr: Path, cwd: Path):
        self.tracer = tracer
        self._stdout_path = stdout
        self._stderr_path = stderr
        self._cwd = cwd
        self._proc: subprocess.Popen | None = None
        self.exec_ns = 0
        self.status: int | None = None
        self.rusage = None
        # From SIGINT to the exit reaped (detaching included), in ms: set by stop().
        self.stop_ms: float | None = None

    def __enter__(self) -> TracerProcess:
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.exec_ns = time.monotonic_ns()
            self._proc = subprocess.Popen(
                self.tracer.argv,
                stdout=out,
                stderr=err,
                cwd=self._cwd,
                start_new_session=True,
                preexec_fn=_pinned("tracer"),
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.status is None:
            self._signal_group(signal.SIGKILL)
            self._reap(timeout_s=STOP_TIMEOUT_S)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self.status is None and self._reap(timeout_s=0) is None

    def cpu_ns(self) -> int:
        """CPU time of all the tracer's threads so far, from the scheduler's own accounting."""
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as stat:
                    total += int(stat.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass  # the thread ended between listing and reading
        return total

    def waiting_for_events(self) -> bool:
        """Whether a BPF program is loaded and some thread is blocked in poll/epoll/select."""
        try:
            fds = os.listdir(f"/proc/{self.pid}/fd")
            kinds = {_readlink(f"/proc/{self.pid}/fd/{fd}") for fd in fds}
            if "anon_inode:bpf-prog" not in kinds:
                return False
            for tid in os.listdir(f"/proc/{self.pid}/task"):
                wchan = Path(f"/proc/{self.pid}/task/{tid}/wchan").read_text()
                if "poll" in wchan or "select" in wchan:
                    return True
        except (FileNotFoundError, ProcessLookupError):
            pass
        return False

    def peak_rss_kib(self) -> int:
        """The high-water mark of the tracer's resident memory since exec."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise BenchError(f"no VmHWM in /proc/{self.pid}/status")

    def stop(self) -> None:
        """SIGINT, as a user's Ctrl-C, then wait for the exit and keep its resource usage and
        how long it took (`stop_ms`)."""
        start_ns = time.monotonic_ns()
        self._signal_group(signal.SIGINT)
        if self._reap(timeout_s=STOP_TIMEOUT_S, poll_s=0.001) is None:
            raise BenchError(
                f"{self.tracer.name} did not exit within {STOP_TIMEOUT_S:.0f} s of SIGINT"
            )
        self.stop_ms = _ms_since(start_ns, time.monotonic_ns())

    def stderr_text(self) -> str:
        return self._stderr_path.read_text(errors="replace")

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, timeout_s: float, poll_s: float = 0.02) -> int | None:
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(status)
                self.rusage = rusage
                self._proc.returncode = self.status  # reaped here, not by Popen
                return self.status
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll_s)


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _ms_since(start_ns: int, end_ns: int | None) -> float | None:
    return None if end_ns is None else (end_ns - start_ns) / 1e6


def _check_alive(proc: TracerProcess) -> None:
    if not proc.alive():
        tail = proc.stderr_text().strip()[-2000:]
        raise BenchError(f"{proc.tracer.name} exited early (status {proc.status}): {tail}")


def wait_for_poll(proc: TracerProcess) -> int:
    """Block until the tracer waits for events; returns the monotonic time it was seen doing so."""
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    while not proc.waiting_for_events():
        _check_alive(proc)
        if time.monotonic() > deadline:
            raise BenchError(
                f"{proc.tracer.name} not waiting for events after {ATTACH_TIMEOUT_S:.0f} s"
            )
        time.sleep(GATE_POLL_S)
    return time.monotonic_ns()


@contextlib.contextmanager
def pinging(siggen: Path, sink: str):
    """With the file sink, `siggen kill-clock` pinging from before the tracer starts, so that
    the first ping the tracer shows says when it became ready, not when the pinger did."""
    if sink != "file":
        yield None
        return
    pinger = subprocess.Popen(
        [str(siggen), "kill-clock", "--rate", str(PINGER_RATE), "--count", str(PINGER_RATE * 3600)],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield pinger
    finally:
        pinger.kill()
        pinger.wait()


def wait_for_first_ping(proc: TracerProcess, output: Path, pinger: subprocess.Popen) -> dict:
    """Wait until a pinger line shows up in the output; returns when it did, and the poll time."""
    follower = FileFollower(output)
    table = TraceTable(generator_pid=None, pinger_pid=pinger.pid)
    poll_ns = None
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    try:
        while table.pinger_lines == 0:
            _check_alive(proc)
            if time.monotonic() > deadline:
                raise BenchError(f"no event from {proc.tracer.name} after {ATTACH_TIMEOUT_S:.0f} s")
            if poll_ns is None and proc.waiting_for_events():
                poll_ns = time.monotonic_ns()
            for line in follower.new_lines():
                table.feed(line)
            time.sleep(GATE_POLL_S)
        return {"pinger_pid": pinger.pid, "first_line_ns": time.monotonic_ns(), "poll_ns": poll_ns}
    finally:
        follower.close()


def wait_until_drained(proc: TracerProcess, output: Path | None) -> None:
    """Wait until the tracer's output stops growing and it uses (almost) no CPU."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    last = (output.stat().st_size if output else 0, proc.cpu_ns())
    while time.monotonic() < deadline:
        time.sleep(DRAIN_QUIET_S)
        _check_alive(proc)
        now = (output.stat().st_size if output else 0, proc.cpu_ns())
        if now[0] == last[0] and now[1] - last[1] < DRAIN_IDLE_CPU_NS:
            return
        last = now


def time_lines_until_drained(
    proc: TracerProcess, generator: subprocess.Popen, follower: FileFollower, table: TraceTable
) -> None:
    """Feed the table each new output line with the time it appeared, polling the file's size every
    LATENCY_POLL_S, until the generator has exited and the output has drained (as judged by
    wait_until_drained, every DRAIN_QUIET_S)."""
    next_check = time.monotonic() + DRAIN_QUIET_S
    deadline = None
    last = (follower.size, proc.cpu_ns())
    while True:
        time.sleep(LATENCY_POLL_S)
        if follower.grown():
            seen_ns = time.monotonic_ns()
            for line in follower.new_lines():
                table.feed(line, seen_ns)
        if time.monotonic() < next_check:
            continue
        next_check += DRAIN_QUIET_S
        _check_alive(proc)
        now = (follower.size, proc.cpu_ns())
        if deadline is None:
            if generator.poll() is not None:
                deadline = time.monotonic() + DRAIN_TIMEOUT_S
        elif now[0] == last[0] and now[1] - last[1] < DRAIN_IDLE_CPU_NS:
            return
        elif time.monotonic() > deadline:
            return
        last = now


def lost_events(tracer: Tracer, reports: list[int]) -> int:
    """The number of dropped events from the tracer's reports of them (none: nothing lost)."""
    if not reports:
        return 0
    return reports[-1] if tracer.lost_is_total else sum(reports)


def pass_gate(proc: TracerProcess, output: Path, pinger: subprocess.Popen | None) -> dict:
    """Wait until the tracer is attached, the best way the sink allows."""
    if pinger is not None:
        return wait_for_first_ping(proc, output, pinger)
    return {"pinger_pid": None, "first_line_ns": None, "poll_ns": wait_for_poll(proc)}


def check_exit(proc: TracerProcess) -> None:
    """A tracer stopped by SIGINT should exit 0 (or die of the signal, as bpftrace may not)."""
    if proc.status not in (0, -signal.SIGINT, 128 + signal.SIGINT):
        tail = proc.stderr_text().strip()[-2000:]
        raise BenchError(f"{proc.tracer.name} exited with status {proc.status}: {tail}")


def output_table(tracer: Tracer, generator_pid: int, gate: dict) -> TraceTable:
    """A table for the tracer's output, which has its loss reports in it for bpftrace."""
    lost_re = tracer.lost_re if tracer.lost_stream == "stdout" else None
    return TraceTable(generator_pid, gate["pinger_pid"], lost_re)


def table_findings(tracer: Tracer, table: TraceTable) -> dict:
    """Events delivered, readiness and (for bpftrace) losses, from the table of a file sink."""
    if not table.has_header:
        raise BenchError(f"no header line with a PID column in the output of {tracer.name}")
    found = {"events_delivered": table.generator_lines, "ready_ns": table.earliest_ping_ns}
    if tracer.lost_stream == "stdout":
        found["lost"] = lost_events(tracer, table.lost_reports)
    return found


def measure_session(
    tracer: Tracer, sink: str, load: Load, siggen: Path, cwd: Path, workdir: Path
) -> dict:
    """Run one tracer session around one generator run; returns the raw measurements."""
    if load.timed and sink != "file":
        raise BenchError(f"{load.name} needs the file sink")
    output = workdir / f"{tracer.name}.out"
    stderr = workdir / f"{tracer.name}.err"
    sink_path = output if sink == "file" else Path(os.devnull)
    timed = None
    with contextlib.ExitStack() as stack:
        pinger = stack.enter_context(pinging(siggen, sink))
        proc = stack.enter_context(TracerProcess(tracer, sink_path, stderr, cwd))
        gate = pass_gate(proc, output, pinger)
        if pinger is not None:  # done: it would load the measured run
            pinger.kill()
            pinger.wait()
        cpu_before = proc.cpu_ns()
        if load.timed:
            generator = stack.enter_context(started_generator(siggen, load))
            follower = stack.enter_context(contextlib.closing(FileFollower(output)))
            timed = output_table(tracer, generator.pid, gate)
            time_lines_until_drained(proc, generator, follower, timed)
            report = generator_report(generator)
        else:
            report = run_generator(siggen, load)
            wait_until_drained(proc, output if sink == "file" else None)
        stream_cpu_ns = proc.cpu_ns() - cpu_before
        peak_rss_kib = proc.peak_rss_kib()
        proc.stop()
        if timed is not None:
            # What the tracer wrote only on its way out appeared at its exit.
            timed_before_exit = len(timed.latencies_ns)
            exit_ns = time.monotonic_ns()
            for line in follower.new_lines():
                timed.feed(line, exit_ns)
    check_exit(proc)
    found = {"events_delivered": None, "ready_ns": None}
    if tracer.lost_stream == "stderr":
        reports = [int(m.group(1)) for m in tracer.lost_re.finditer(stderr.read_bytes())]
        found["lost"] = lost_events(tracer, reports)
    if sink == "file":
        table = timed or read_table(output, output_table(tracer, report["pid"], gate))
        found.update(table_findings(tracer, table))
        output.unlink()
    stderr.unlink()
    record = {
        "generator": report,
        "ns_per_call": report["ns_per_call"],
        "events_generated": report["count"],
        "events_delivered": found["events_delivered"],
        "lost": found.get("lost"),
        "stream_cpu_ns": stream_cpu_ns,
        "cpu_total_ms": (proc.rusage.ru_utime + proc.rusage.ru_stime) * 1000,
        "peak_rss_kib": peak_rss_kib,
        "ready_ms": _ms_since(proc.exec_ns, found["ready_ns"]),
        "stop_ms": proc.stop_ms,
        "first_line_ms": _ms_since(proc.exec_ns, gate["first_line_ns"]),
        "poll_ms": _ms_since(proc.exec_ns, gate["poll_ns"]),
    }
    if timed is not None:
        record["latencies_ms"] = [ns / 1e6 for ns in timed.latencies_ns]
        record["lines_at_exit"] = len(timed.latencies_ns) - timed_before_exit
    return record
