"""What every benchmark writes with ``--json PATH``: the machine's state next to the measured numbers.

A benchmark calls :func:`add_arguments` on its parser, :func:`start` after it has set its torch
threads (the date, ``os.cpu_count()``, the load average at start, the torch thread count), and
:func:`write` at the end (the load average at end, its ratios and its own rows). ``bench/figures.py``
draws the figures of ``docs/benchmarks.rst`` from these files.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib


def add_arguments(parser) -> None:
    """``--json PATH`` (write the measured numbers there) and ``--note TEXT`` (stored with them)."""
    if not any("--json" in a.option_strings for a in parser._actions):
        parser.add_argument("--json", metavar="PATH", help="write the measured numbers, the date, the CPUs, "
                            "the load average at start and end and the torch threads here (bench/figures.py draws them)")
    parser.add_argument("--note", default="", help="a note stored in the --json file (e.g. 'machine not idle')")


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def start() -> dict:
    """The machine's state when the measurement starts (call it after ``torch.set_num_threads``)."""
    import torch

    return dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                cpu_count=os.cpu_count(), load_start=_loadavg(), torch_threads=torch.get_num_threads(),
                omp_num_threads=os.environ.get("OMP_NUM_THREADS"))


def write(path, bench: str, info: dict, args, ratios: dict, **data) -> None:
    """Write ``{bench, date, cpu_count, load_start, load_end, torch_threads, note, args, ratios, **data}``."""
    if not path:
        return
    out = dict(bench=bench, **info, load_end=_loadavg(), note=getattr(args, "note", ""),
               args={k: v for k, v in vars(args).items() if k not in ("json", "note")}, ratios=ratios, **data)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"wrote {path}")
