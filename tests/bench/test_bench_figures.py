"""``bench/figures.py`` draws one labelled figure per benchmark JSON and skips a missing one."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _load_figures():
    spec = importlib.util.spec_from_file_location("bench_figures", ROOT / "bench" / "figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


figures = _load_figures()

MACHINE = dict(date="2026-12-05T09:00:00+00:00", cpu_count=2, load_start=[3.1, 2.5, 2.0], load_end=[4.2, 3.0, 2.2],
               torch_threads=1, note="machine not idle")
# tiny synthetic results in the schema each bench writes with --json; the planted ratios are checked on the figure
SYNTHETIC = {
    "train_throughput": dict(hidden=64, ratios={"batch 32": 2.5}, rows=[
        dict(batch_size=32, ours_trials_per_s=5000.0, reference_trials_per_s=2000.0, ratio=2.5),
        dict(batch_size=512, ours_trials_per_s=9000.0, reference_trials_per_s=3000.0, ratio=3.0)]),
    "decode_speed": dict(trials=100, units=10, ratios={"linear": 20.0}, rows=[
        dict(family="linear", ours_ms=10.0, reference_ms=200.0, ratio_wall=20.0),
        dict(family="mlp", ours_ms=80.0, reference_ms=96.0, ratio_wall=1.2)]),
    "decode_real_layers": dict(ratios={"all": 4.0}, rows=[
        dict(source="fc_e1", ms=5.0, sk_ms=20.0), dict(source="rnn_e12", ms=10.0, sk_ms=40.0)]),
    "ensemble_sweep": dict(runs=20, args=dict(net="fc", epochs=1), solo_s=30.0, ensemble_s=10.0,
                           ratios={"all": 3.0}, rows=[dict(batch_size=32, runs=10, solo_s=20.0, ensemble_s=5.0, ratio=4.0),
                                                      dict(batch_size=512, runs=10, solo_s=10.0, ensemble_s=5.0, ratio=2.0)]),
    "under_load": dict(busy=2, fair_share=1.5, ratios={"beside busy / alone": 1.6}, runs=[
        dict(run="alone", wall_s=10.0, threads=1), dict(run="beside busy", wall_s=16.0, threads=1),
        dict(run="beside busy, torch default threads", wall_s=80.0, threads=2)]),
}
PLANTED = {"train_throughput": ["2.50×", "3.00×"], "decode_speed": ["20.00×", "1.20×"],
           "decode_real_layers": ["4.00×"], "ensemble_sweep": ["4.00×", "2.00×", "3.00×"],
           "under_load": ["1.60×", "8.00×"]}


def test_every_bench_run_by_make_bench_has_a_figure():
    assert set(SYNTHETIC) == set(figures.FIGURES)
    make = (ROOT / "Makefile").read_text()
    assert "BENCH_OUT ?= bench/results" in make
    for name in figures.FIGURES:
        assert f"bench/{name}.py" in make and f"--json $(BENCH_OUT)/{name}.json" in make, name
    assert "bench/figures.py --results $(BENCH_OUT)" in make


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_figure_function_labels_axes_and_writes_the_ratio(name):
    fig, ax = plt.subplots()
    try:
        assert figures.FIGURES[name](ax, dict(MACHINE, **SYNTHETIC[name])) is ax
        assert ax.get_xlabel() and ax.get_ylabel(), (ax.get_xlabel(), ax.get_ylabel())
        assert "second" in ax.get_ylabel() or "ms" in ax.get_ylabel()  # a unit of time
        texts = [t.get_text() for t in ax.texts]
        for ratio in PLANTED[name]:
            assert ratio in texts, (ratio, texts)
    finally:
        plt.close(fig)


def test_main_writes_one_png_per_json_and_skips_a_missing_one(tmp_path, capsys):
    results, out = tmp_path / "results", tmp_path / "figures"
    results.mkdir()
    for name, data in SYNTHETIC.items():
        if name != "under_load":
            (results / f"{name}.json").write_text(json.dumps(dict(MACHINE, bench=name, **data)))
    written = figures.main(["--results", str(results), "--out", str(out)])
    assert sorted(p.name for p in written) == sorted(f"bench_{n}.png" for n in SYNTHETIC if n != "under_load")
    for p in written:
        assert p.stat().st_size > 5000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "bench_under_load.png").exists()
    assert "skipped bench_under_load.png" in capsys.readouterr().err


def test_caption_gives_date_cpus_idle_and_threads():
    line = figures.caption(MACHINE)
    for part in ("2026-12-05 09:00", "2 CPUs", "torch threads 1", "machine not idle"):
        assert part in line, (part, line)


def test_committed_results_are_drawable(tmp_path):
    """The JSON files ``make bench`` wrote (committed next to the figures) still match the figure code."""
    found = sorted((ROOT / "bench" / "results").glob("*.json"))
    if not found:
        pytest.skip("no committed bench results")
    for path in found:
        data = json.loads(path.read_text())
        for key in ("date", "cpu_count", "load_start", "load_end", "torch_threads", "ratios"):
            assert key in data, (path.name, key)
        fig, ax = plt.subplots()
        try:
            figures.FIGURES[path.stem](ax, data)
            assert ax.get_xlabel() and ax.get_ylabel()
        finally:
            plt.close(fig)


def test_caption_says_whether_the_machine_was_idle_not_its_load():
    busy = figures.caption({**MACHINE, "note": ""})
    assert "machine not idle" in busy and "load" not in busy and "2 CPUs" in busy
    quiet = figures.caption({**MACHINE, "note": "", "load_start": [0.9, 1, 1], "load_end": [1.2, 1, 1]})
    assert "machine idle" in quiet and "not idle" not in quiet
