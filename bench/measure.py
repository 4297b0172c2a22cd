"""Run a command and report its CPU time and peak resident memory, as the kernel counts them.

The kernel keeps a process's peak RSS (ru_maxrss) across exec, so a child forked from a big
benchmark script would report the script's own memory if that was larger.  The command is
therefore started from a tiny helper interpreter (python -S, a few MB) that forks, execs
the command, and reports wait4's figures for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

_HELPER = r"""
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "cpu_s": ru.ru_utime + ru.ru_stime,
               "peak_rss_mb": ru.ru_maxrss / 1024}, f)
"""


def measure(cmd: list[str], cwd=None, env=None, on_start=None) -> dict:
    """Run ``cmd``; returns stdout, stderr, exit, cpu_s, wall_s and peak_rss_mb of the command alone.

    ``on_start(pid)`` is called with the helper's PID (the command is its only child)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-S", "-c", _HELPER, report, *cmd], cwd=cwd, env=env, stdout=out, stderr=err
            )
            if on_start is not None:
                on_start(proc.pid)
            proc.wait()
        figures = json.load(open(report))
        with open(out_path, "rb") as out, open(err_path, "rb") as err:
            figures.update(stdout=out.read().decode(), stderr=err.read().decode(), wall_s=time.monotonic() - t0)
    return figures


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A process's resident memory now (VmRSS), or its peak so far (``field="VmHWM"``), in MB;
    None once it is gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
