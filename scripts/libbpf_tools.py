"""What scripts/corpus-check and scripts/bench-tools share about bcc's libbpf-tools: where the
corpus and the sidecars are, how a tool is packaged unchanged, and how the Debian build of the
same tool is run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("RUNNER_CORPUS", REPO.parent / "shared" / "corpus"))
TOOLS = CORPUS / "libbpf-tools"
SIDECARS = REPO / "examples" / "libbpf-tools"
RUNNER = REPO / "target" / "release" / "runner"


def build_package(tool: str, out: Path) -> subprocess.CompletedProcess:
    """`runner build` the corpus's <tool>.bpf.c, unchanged, with its sidecar, into `out`."""
    source = TOOLS / f"{tool}.bpf.c"
    sidecar = SIDECARS / f"{tool}.runner.json"
    cmd = [str(RUNNER), "build", str(source), "--sidecar", str(sidecar), "-o", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True)


def debian_argv(tool: str, args: list[str], line_buffered: bool = True) -> list[str]:
    """/usr/sbin/<tool> (Debian's libbpf-tools) in a private mount namespace with debugfs
    mounted (unless the host has it mounted already), where the 0.26 tools look for
    tracepoints. `unshare` and `sh` exec, so the process started is the tool itself.
    Line-buffered output (stdbuf -oL) lets a caller see each line as it is printed; without it
    the tool's stdio buffers as it would in real use."""
    run = 'exec stdbuf -oL "$0" "$@"' if line_buffered else 'exec "$0" "$@"'
    debugfs = "/sys/kernel/debug"
    script = f"{{ mountpoint -q {debugfs} || mount -t debugfs none {debugfs}; }} && {run}"
    return ["unshare", "-m", "sh", "-c", script, f"/usr/sbin/{tool}", *args]
