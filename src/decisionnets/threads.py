"""Torch intra-op threads chosen for the work, and the record of that choice.

Small networks (the leaky RNN, GRU, LSTM and the FC net) do a few microseconds of arithmetic per
operation; extra threads only spin and, on shared cores, fight: with one competing process,
``decisionnets train --task color-direction --set epochs=2`` took 19.2 s with torch's default
threads and 9.5 s with one. So they get **one thread per process**. Large CNNs and the decoder do
real matrix work and get **the CPUs this process may use** (:func:`available_cpus`: the CPU
affinity mask, capped by a cgroup CPU quota, and by ``OMP_NUM_THREADS`` when the user set it).

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
#: jobs and what they get: "small" -> 1 thread, "large" -> the available CPUs
JOBS = ("small", "large")

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


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up), >= 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    quota = _cgroup_cpus(cgroup_root)
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


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


def choose_threads(job: str, override=None, environ=None) -> tuple[int, str]:
    """Threads for ``job`` and where the number came from.

    Parameters
    ----------
    job : {"small", "large"}
        "small": recurrent/FC training (1 thread); "large": CNN training and decoding (the
        available CPUs, capped by ``OMP_NUM_THREADS`` when set).
    override : int or str, optional
        ``--threads N``; wins over everything.
    environ : mapping, optional
        The environment (default ``os.environ``); ``DECISIONNETS_THREADS`` overrides the job's rule.

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
        return int(omp), f"auto: large job, capped by OMP_NUM_THREADS of {n} available CPUs"
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
