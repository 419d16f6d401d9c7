"""Measure a function or a command in a fresh child process: wall time, CPU time, peak RSS.

Every measurement runs in a new Python process (never ``fork`` of the caller), so that
peak memory is that of the measured work alone and not of whatever ran before it.

Peak RSS is taken two ways and the larger is reported:

* a sampler thread reads the resident set of the whole process tree (the process and
  its descendants, summed) every ``interval`` seconds with psutil, and the kernel's
  high-water mark (``VmHWM`` in ``/proc/<pid>/status``) of each process in it;
* for :func:`measure_function`, the child reads its own ``VmHWM`` (or ``ru_maxrss``)
  as soon as the call returns: exact for all its threads, and not raised by what
  happens after the call (pickling the result).

``ru_maxrss`` of a child (``RUSAGE_CHILDREN``) is *not* used as the peak: on Linux a
child started by ``vfork``/``exec`` inherits the parent's high-water mark, so a large
parent would inflate it.

Usage::

    from _measure import measure_function, measure_command
    m = measure_function(tilevision.ingest, "in.npy", "out.zarr")
    print(m.wall_s, m.cpu_s, m.peak_rss_mib)
    m = measure_command(["python", "-c", "import numpy; numpy.ones(10**8)"])
    for proc in m.processes:  # each process of the tree: pid, cmdline, peak RSS
        print(proc.pid, proc.peak_rss_mib, proc.cmdline)
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["Measurement", "ProcessPeak", "measure_command", "measure_function"]

MIB = 2**20


@dataclass
class ProcessPeak:
    """One process of the measured tree: its peak resident memory (bytes).

    ``peak_rss`` is the larger of the sampled RSS and the kernel's high-water mark
    (``VmHWM``, Linux) last read while the process was alive; ``parent`` is the pid of
    its parent when first seen, ``cmdline`` its command line (empty when unreadable).
    """

    pid: int
    parent: int | None
    cmdline: str
    peak_rss: int = 0
    sampled_rss: int = 0
    vm_hwm: int = 0
    first_seen_s: float = 0.0
    last_seen_s: float = 0.0

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss / MIB


@dataclass
class Measurement:
    """What one run cost. Times in seconds, memory in bytes."""

    wall_s: float
    cpu_s: float
    peak_rss: int
    baseline_rss: int | None = None
    returncode: int = 0
    result: Any = None
    samples: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss / MIB

    @property
    def baseline_rss_mib(self) -> float | None:
        return None if self.baseline_rss is None else self.baseline_rss / MIB

    @property
    def processes(self) -> list[ProcessPeak]:
        """Peak RSS of each process of the measured tree (``details["processes"]``),
        in the order they were first seen; for :func:`measure_function` the first is
        the child that made the call."""
        return list(self.details.get("processes", []))


_STATUS_KEYS = ("VmHWM", "RssAnon", "RssFile", "RssShmem")


def _proc_status(pid: int) -> dict[str, int]:
    """``VmHWM`` and the RSS breakdown of ``pid`` from ``/proc/<pid>/status`` (bytes).

    Empty where there is no ``/proc`` (not Linux). ``RssAnon`` is the process's own
    memory; ``RssFile`` counts pages of memory-mapped files (libraries, and files read
    through a memory map) — reclaimable by the kernel, but part of RSS.
    """
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in _STATUS_KEYS:
                    out[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError):
        return {}
    return out


def _vm_hwm(pid: int) -> int | None:
    """Kernel high-water mark of resident memory of ``pid`` (bytes), Linux only."""
    return _proc_status(pid).get("VmHWM")


class _Sampler(threading.Thread):
    """Polls the RSS of a process tree until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_tree_rss = 0
        self.peak_hwm = 0
        self.peak_anon = 0  # Linux only: summed RssAnon / RssFile of the tree
        self.peak_file = 0
        self.samples = 0
        self.processes: dict[int, ProcessPeak] = {}
        self._start = time.perf_counter()
        self._stop_event = threading.Event()

    def _record(self, p: psutil.Process, rss: int, hwm: int) -> None:
        """Update the peak of process ``p`` (by pid: pids are not re-used within a run)."""
        now = time.perf_counter() - self._start
        entry = self.processes.get(p.pid)
        if entry is None:
            try:
                cmdline = " ".join(p.cmdline())
                parent: int | None = p.ppid()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                cmdline, parent = "", None
            entry = self.processes[p.pid] = ProcessPeak(p.pid, parent, cmdline, first_seen_s=now)
        entry.sampled_rss = max(entry.sampled_rss, rss)
        entry.vm_hwm = max(entry.vm_hwm, hwm)
        entry.peak_rss = max(entry.sampled_rss, entry.vm_hwm)
        entry.last_seen_s = now

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop_event.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            total = anon = file = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    continue
                total += rss
                status = _proc_status(p.pid)
                self.peak_hwm = max(self.peak_hwm, status.get("VmHWM", 0))
                anon += status.get("RssAnon", 0)
                file += status.get("RssFile", 0)
                self._record(p, rss, status.get("VmHWM", 0))
            self.peak_tree_rss = max(self.peak_tree_rss, total)
            self.peak_anon = max(self.peak_anon, anon)
            self.peak_file = max(self.peak_file, file)
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def measure_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    interval: float = 0.05,
    check: bool = True,
) -> Measurement:
    """Run ``argv`` as a child process and measure it.

    CPU time is user + system time of the child and of the descendants it waited for
    (``os.wait4``). Output goes to this process's stdout/stderr.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=dict(env) if env is not None else None, cwd=cwd)
    sampler = _Sampler(proc.pid, interval)
    sampler.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        sampler.stop()
        raise
    wall = time.perf_counter() - start
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, list(argv))
    return Measurement(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss=max(sampler.peak_tree_rss, sampler.peak_hwm),
        returncode=proc.returncode,
        samples=sampler.samples,
        details={
            "sampled_tree_rss": sampler.peak_tree_rss,
            "sampled_vm_hwm": sampler.peak_hwm,
            "sampled_rss_anon": sampler.peak_anon,
            "sampled_rss_file": sampler.peak_file,
            "processes": list(sampler.processes.values()),
        },
    )


def measure_function(
    func: Callable[..., Any],
    /,
    *args: Any,
    interval: float = 0.05,
    env: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Measurement:
    """Call ``func(*args, **kwargs)`` in a fresh Python process and measure it.

    ``func``, its arguments and its result must be picklable (keep the result small:
    it is copied back), and ``func`` must live in an importable module (not a script's
    ``__main__``). The child's ``sys.path`` is the caller's. Wall and CPU time cover
    the call only (not the interpreter start-up or imports); peak RSS is that of the
    whole child process up to the end of the call, start-up included (the sampler in
    the child also adds up any processes the call starts), and ``baseline_rss`` is its
    RSS just before the call (after imports). ``interval`` and ``env`` are this
    function's own keywords (``env`` replaces the child's environment), never passed
    to ``func``. ``details["processes"]`` (also :attr:`Measurement.processes`) holds
    the peak of each process: the child first, then those the call started (worker
    processes of a ``LocalCluster``, ...).
    """
    with tempfile.TemporaryDirectory(prefix="tv-measure-") as tmp:
        job = Path(tmp) / "job.pkl"
        out = Path(tmp) / "result.pkl"
        job.write_bytes(pickle.dumps((func, args, kwargs)))
        child_env = dict(os.environ if env is None else env)
        child_env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parent), *[p for p in sys.path if p]]
        )
        argv = [
            sys.executable,
            "-c",
            "import sys, _measure; _measure._child(sys.argv[1], sys.argv[2], float(sys.argv[3]))",
            str(job),
            str(out),
            repr(interval),
        ]
        outer = measure_command(argv, env=child_env, interval=interval, check=False)
        if not out.exists():
            raise RuntimeError(
                f"the measured child exited with code {outer.returncode} without a result; "
                "see its traceback above."
            )
        report = pickle.loads(out.read_bytes())
    if "error" in report:
        raise RuntimeError(f"the measured call failed in the child:\n{report['error']}")
    return Measurement(
        wall_s=report["wall_s"],
        cpu_s=report["cpu_s"],
        peak_rss=max(report["vm_hwm"], report["sampled_tree_rss"]),
        baseline_rss=report.get("baseline_rss"),
        returncode=outer.returncode,
        result=report.get("result"),
        samples=report["samples"],
        details={
            "child_vm_hwm": report["vm_hwm"],
            "child_sampled_tree_rss": report["sampled_tree_rss"],
            "sampled_rss_anon": report["sampled_rss_anon"],
            "sampled_rss_file": report["sampled_rss_file"],
            "processes": [ProcessPeak(**p) for p in report["processes"]],
            "process_peak_rss": outer.peak_rss,
            "process_wall_s": outer.wall_s,
            "process_cpu_s": outer.cpu_s,
        },
    )


def _child(job_path: str, out_path: str, interval: float) -> None:
    """Child side of :func:`measure_function`."""
    import resource
    import traceback

    func, args, kwargs = pickle.loads(Path(job_path).read_bytes())
    baseline = psutil.Process().memory_info().rss
    report: dict[str, Any] = {"baseline_rss": baseline}
    sampler = _Sampler(os.getpid(), interval)
    sampler.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        result = func(*args, **kwargs)
    except BaseException:
        report["error"] = traceback.format_exc()
        result = None
    report["wall_s"] = time.perf_counter() - t0
    report["cpu_s"] = time.process_time() - cpu0  # all threads of this process
    sampler.stop()
    report["sampled_tree_rss"] = sampler.peak_tree_rss
    report["sampled_rss_anon"] = sampler.peak_anon
    report["sampled_rss_file"] = sampler.peak_file
    report["samples"] = sampler.samples
    hwm = _vm_hwm(os.getpid())
    processes = list(sampler.processes.values())
    if processes and processes[0].pid == os.getpid() and hwm is not None:
        processes[0].vm_hwm = max(processes[0].vm_hwm, hwm)  # exact, read after the call
        processes[0].peak_rss = max(processes[0].peak_rss, hwm)
    report["processes"] = [dataclasses.asdict(p) for p in processes]  # plain: unpickled
    # by the caller, which may know this module under another name
    if hwm is None:  # not Linux: ru_maxrss is KiB on Linux/BSD, bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    report["vm_hwm"] = hwm
    try:
        report["result"] = pickle.loads(pickle.dumps(result))
    except Exception:
        report["result"] = repr(result)
    Path(out_path).write_bytes(pickle.dumps(report))


if __name__ == "__main__":  # pragma: no cover - manual check
    m = measure_command([sys.executable, "-c", "import numpy as np; a = np.ones(2**27)"])
    print(f"1 GiB float64 array: peak {m.peak_rss_mib:.0f} MiB, wall {m.wall_s:.2f} s")
