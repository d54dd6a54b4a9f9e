"""Torch intra-op threads chosen for the work, and the record of that choice.

Small networks (the leaky RNN, GRU, LSTM and the FC net) do a few microseconds of arithmetic per
operation; extra threads only spin and, on shared cores, fight: with one competing process,
``decisionnets train --task color-direction --set epochs=2`` took 19.2 s with torch's default
threads and 9.5 s with one. So they get **one thread per process**. Large CNNs and the decoder do
real matrix work and get **the CPUs this process may use** (:func:`available_cpus`: the CPU
affinity mask, capped by a cgroup CPU quota, and by ``OMP_NUM_THREADS`` when the user set it);
decoding (``analyze``, the demo's analysis) gets **those of them that are idle** (:func:`busy_cpus`
samples how busy other processes keep them): beside one busy process on 2 cores,
``decisionnets analyze`` on the demo's RNN run took 59 s on two threads and 32 s on one, idle
22 s and 31 s. Decoding estimates at different thread counts differ only by rounding (at most
2e-7 bits on that run); pin the count for bit-identical reruns. CNN training keeps the available
CPUs whatever the load, so that its weights do not depend on it.

The choice can be overridden, in this order: ``--threads N`` on the command line, then the
environment variable ``DECISIONNETS_THREADS``. :func:`use_threads` applies a choice and remembers
why it was made; :func:`thread_info` reports what is in force (``training.train`` writes it into
``status.json`` and the ``threads`` column of ``log.csv``, so a slow run can be explained).
Sweeps keep one thread per Dask worker (``sweep.run_point``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from decisionnets.errors import UserError

#: environment variable that overrides the automatic choice (an integer >= 1)
ENV_VAR = "DECISIONNETS_THREADS"
#: model kinds that run on one thread per process (small recurrent and FC nets)
SMALL_MODELS = ("leaky_rnn", "gru", "lstm", "mlp", "two_stage_rnn")
#: jobs and what they get: "small" -> 1 thread, "large" -> the available CPUs, "decode" -> the
#: available CPUs that other processes leave idle
JOBS = ("small", "large", "decode")
#: seconds over which :func:`busy_cpus` samples the CPUs' use
BUSY_SAMPLE_S = 0.25

_choice: dict = {}  # the last choice made by use_threads: {"threads": n, "source": "..."}


def _cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup CPU quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), None if unlimited."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _mask_cpus() -> int:
    """The CPUs in this process's affinity mask (no quota applied), >= 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up), >= 1."""
    n = _mask_cpus()
    quota = _cgroup_cpus(cgroup_root)
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _cpu_ticks(stat: Path) -> dict[int, tuple[int, int]]:
    """Busy and total clock ticks of each CPU since boot, from ``/proc/stat``'s ``cpuN`` lines.

    Busy is everything but ``idle`` and ``iowait`` (``steal``, time the hypervisor gave to another
    machine, counts as busy: that CPU was not there for us).
    """
    out = {}
    for line in stat.read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            t = [int(v) for v in vals[:8]]  # user nice system idle iowait irq softirq steal
            total = sum(t)
            out[int(name[3:])] = (total - t[3] - t[4], total)
    return out


def busy_cpus(interval: float = BUSY_SAMPLE_S, stat: Path = Path("/proc/stat"), cpus=None,
              sleep=None, own_cpu_seconds=None) -> float | None:
    """How many of this process's CPUs other processes keep busy, sampled over ``interval`` seconds.

    Parameters
    ----------
    interval : float
        Seconds between the two readings of ``stat``.
    stat : Path
        The kernel's CPU counters (Linux ``/proc/stat``).
    cpus : iterable of int, optional
        The CPUs to count (default: this process's affinity mask).
    sleep, own_cpu_seconds : callable, optional
        ``time.sleep`` and ``time.process_time`` (replaceable for tests): this process's own CPU
        time during the interval is not counted as others' load.

    Returns
    -------
    float or None
        Busy CPUs (0 .. the number counted), or None where the counters cannot be read (not Linux).
    """
    import time

    sleep = time.sleep if sleep is None else sleep
    own_cpu_seconds = time.process_time if own_cpu_seconds is None else own_cpu_seconds
    if cpus is None:
        try:
            cpus = os.sched_getaffinity(0)
        except AttributeError:  # pragma: no cover - not Linux
            return None
    cpus = set(cpus)
    try:
        a, own0 = _cpu_ticks(stat), own_cpu_seconds()
        sleep(interval)
        b, own1 = _cpu_ticks(stat), own_cpu_seconds()
    except (OSError, ValueError, IndexError):  # unreadable, or lines of a format not known here
        return None
    counted = cpus & a.keys() & b.keys()
    busy = sum(b[c][0] - a[c][0] for c in counted)
    total = sum(b[c][1] - a[c][1] for c in counted)
    if total <= 0:
        return None
    n = len(counted)
    frac = n * busy / total  # busy CPUs over the interval, as the ticks of the counted CPUs say
    return min(float(n), max(0.0, frac - (own1 - own0) / interval))


def idle_cpus() -> float | None:
    """The CPUs of this process's affinity mask that other processes leave idle (:func:`busy_cpus`).

    Returns
    -------
    float or None
        Idle CPUs (0 .. the mask's size; not capped by a CPU quota), None where the load cannot be read.
    """
    b = busy_cpus()
    return None if b is None else _mask_cpus() - b


def _parse(value, where: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"{where} must be an integer >= 1 (torch intra-op threads); got {value!r}")
    return n


def job_for_model(kind: str) -> str:
    """``"small"`` for the recurrent and FC kinds (:data:`SMALL_MODELS`), ``"large"`` for the CNNs."""
    return "small" if kind in SMALL_MODELS else "large"


def choose_threads(job: str, override=None, environ=None, idle=None) -> tuple[int, str]:
    """Threads for ``job`` and where the number came from.

    Parameters
    ----------
    job : {"small", "large", "decode"}
        "small": recurrent/FC training (1 thread); "large": CNN training (the available CPUs,
        capped by ``OMP_NUM_THREADS`` when set); "decode": as "large", less the CPUs that other
        processes keep busy (rounded; at least 1).
    override : int or str, optional
        ``--threads N``; wins over everything.
    environ : mapping, optional
        The environment (default ``os.environ``); ``DECISIONNETS_THREADS`` overrides the job's rule.
    idle : callable, optional
        Returns the idle CPUs (float) or None (default :func:`idle_cpus`); called for "decode" only.

    Returns
    -------
    (int, str)
        The number of threads and its source, e.g. ``(1, "auto: small model, 1 thread per process")``.
    """
    environ = os.environ if environ is None else environ
    if job not in JOBS:
        raise UserError(f"thread job must be one of {', '.join(JOBS)}; got {job!r}")
    if override is not None:
        return _parse(override, "--threads"), "--threads"
    if environ.get(ENV_VAR, "").strip():
        return _parse(environ[ENV_VAR], ENV_VAR), ENV_VAR
    if job == "small":
        return 1, "auto: small model, 1 thread per process"
    n = available_cpus()
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1 and int(omp) < n:
        return int(omp), f"auto: {'decoding' if job == 'decode' else 'large job'}, capped by OMP_NUM_THREADS of {n} available CPUs"
    if job == "decode" and n > 1:
        free = (idle_cpus if idle is None else idle)()
        if free is not None:
            k = max(1, min(n, int(math.floor(free + 0.5))))
            return k, f"auto: decoding, the idle CPUs ({k} of {n} available; {free:.1f} idle)"
        return n, "auto: decoding, the available CPUs (their load could not be read)"
    return n, "auto: large job, the available CPUs"


def use_threads(job: str, override=None) -> dict:
    """Choose threads for ``job`` (:func:`choose_threads`), set torch to them and remember why.

    Returns
    -------
    dict
        ``threads`` (int) and ``source`` (str).
    """
    n, source = choose_threads(job, override)
    return set_threads(n, source)


def set_threads(n: int, source: str) -> dict:
    """Set torch's intra-op threads to ``n`` and remember ``source`` (why) for :func:`thread_info`."""
    import torch

    n = _parse(n, "threads")
    torch.set_num_threads(n)
    _choice.clear()
    _choice.update(threads=n, source=source)
    return dict(_choice)


def thread_info() -> dict:
    """The torch threads in force now, where that number came from, and the CPUs available.

    Returns
    -------
    dict
        ``threads`` (torch intra-op threads), ``threads_source`` (the :func:`use_threads` source,
        or "set by the caller" when torch was set otherwise), ``available_cpus``.
    """
    import torch

    n = torch.get_num_threads()
    source = _choice["source"] if _choice.get("threads") == n else "set by the caller (not decisionnets)"
    return {"threads": n, "threads_source": source, "available_cpus": available_cpus()}
