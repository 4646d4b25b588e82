"""Whole-process measurements for the benchmarks: wall time, CPU time and peak memory of a child.

Standard library at import time (psutil is imported when a child is run), so a benchmark
script that imports this module can still run as a child whose imports are timed.

Peak RSS: the kernel's ``ru_maxrss`` of a child is no use here, because it counts the pages
the child had as a fork of this (possibly large) process before it exec'd. The peak reported
is the largest of the child's own high-water mark (``VmHWM``, reset at exec), the high-water
marks of its descendants, and the largest summed RSS of its process tree seen while polling.

CPU time: user + system seconds from ``os.wait4`` on the child, which counts the child and
every descendant it waited for (worker pools, ffmpeg processes): the same figure as the
delta of ``resource.getrusage(RUSAGE_CHILDREN)`` around the child.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.05  # RSS polling interval of the process tree


@dataclass
class ChildRun:
    """One child process: wall and CPU seconds, peak RSS, and its output."""

    name: str
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    machine_cpu_seconds: float = 0.0  # busy CPU seconds of the whole machine meanwhile
    stdout: str = ""
    stderr: str = ""
    extra: dict = field(default_factory=dict)


def run_child(name: str, command: list[str], env: dict | None = None,
              cwd: Path = ROOT, check: bool = True) -> ChildRun:
    """Run ``command`` to its end; wall time, CPU time and peak RSS of its process tree.

    Args:
        name: A label for the row and for error messages.
        command: The program and its arguments.
        env: Variables added to this process's environment.
        cwd: Working folder of the child.
        check: Raise SystemExit with the child's stderr when it fails.
    """
    import psutil

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy_before = _machine_busy_seconds(psutil)
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd,
                                env={**os.environ, **(env or {})})
        peak = _poll_peak_rss(psutil, proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        busy = _machine_busy_seconds(psutil) - busy_before
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if check and proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{stderr[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(name, seconds, cpu, peak / 2**20, busy, stdout, stderr)


def _machine_busy_seconds(psutil) -> float:
    """CPU seconds all cores spent busy (not idle or waiting on I/O) since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def others_busy_cores(run: ChildRun) -> float:
    """Cores other processes kept busy on average while ``run`` ran (its own CPU time taken
    from the machine's): near 0 on a quiet machine."""
    return max(0.0, run.machine_cpu_seconds - run.cpu_seconds) / max(run.seconds, 1e-9)


def _poll_peak_rss(psutil, pid: int) -> int:
    """Peak memory of ``pid`` and its descendants until ``pid`` exits (it is not reaped)."""
    peak_sum, high_water = 0, 0
    try:
        parent = psutil.Process(pid)
        while parent.status() != psutil.STATUS_ZOMBIE:
            total = 0
            for proc in [parent, *parent.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                    high_water = max(high_water, vm_hwm(proc.pid))
                except (psutil.Error, OSError):
                    pass
            peak_sum = max(peak_sum, total)
            time.sleep(POLL_S)
    except psutil.NoSuchProcess:
        pass
    return max(peak_sum, high_water)


def vm_hwm(pid: int | str = "self") -> int:
    """A process's peak resident set size in bytes (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def vm_rss(pid: int | str = "self") -> int:
    """A process's resident set size now, in bytes."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cores() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_line() -> str:
    """CPU, cores and the load average now: the context every figure needs."""
    import platform

    from workbench.estimate import cpu_name

    return (f"{cpu_name()}, {cores()} usable cores, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f} at the start")
