"""Write the table of which neurogym env ids train by name into docs/guide/neurogym_envs.rst.

Every env id registered by the installed neurogym is checked with
:func:`decisionnets.envs.neurogym_envs.check_env_id` (its task, probe set and a training batch are
built, nothing is trained); the table replaces the block between the two marker comments of the
page. ``tests/envs/test_neurogym_all_ids.py`` checks that the committed table is current.

Usage::

    python analysis/neurogym_table.py [docs/guide/neurogym_envs.rst]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

BEGIN = ".. neurogym-table-begin"
END = ".. neurogym-table-end"
#: Settings that make an env work where the preset's do not (shown as a second row).
EXTRA = {"ToneDetection-v0": {"dt": 50}}


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("`", "'")


def rows() -> list[tuple[str, str, str]]:
    """(env id [settings], outcome, detail) for every registered neurogym env id."""
    from decisionnets.envs.neurogym_envs import registered_ids
    from decisionnets.envs.neurogym_envs import check_env_id

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for env_id in registered_ids():
            for kwargs, label in [(None, env_id)] + ([({**{"dt": 100}, **EXTRA[env_id]},
                                                        f"{env_id} (" + ", ".join(f"env.{k}={v}" for k, v in EXTRA[env_id].items()) + ")")]
                                                      if env_id in EXTRA else []):
                r = check_env_id(env_id, kwargs)
                if r["outcome"] == "works":
                    detail = f"{r['classes']} ground_truth classes" + (" (fixation is one)" if r["fixation_class"] else "")
                    if len(r["probe_classes"]) < 2:
                        detail += "; one class on the fixed-timing probe set (NaN bits, with a warning)"
                else:
                    detail = r["reason"].partition("cannot be trained by decisionnets: ")[2] or r["reason"]
                out.append((label, r["outcome"], _cell(detail)))
    return out


def table() -> str:
    """The reStructuredText list-table of :func:`rows`."""
    lines = [BEGIN, "", ".. list-table::", "   :header-rows: 1", "   :widths: 30 10 60", "",
             "   * - env id", "     - outcome", "     - ground_truth / reason"]
    for env_id, outcome, detail in rows():
        lines += [f"   * - ``{env_id}``", f"     - {outcome}", f"     - {detail}"]
    return "\n".join(lines + ["", END])


def write(path) -> None:
    """Replace the table block of ``path`` (between the markers) with :func:`table`."""
    path = Path(path)
    text = path.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(head + table() + tail)


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs/guide/neurogym_envs.rst")
