# Two entry points (see README): `make run` (set up + demo) and `make test`; `make docs` builds the site.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# torch first, pinned: on these machines 2.13.0 is the CPU build; an unpinned
# torch would pull a multi-GB CUDA build through neurogym.
TORCH   = torch==2.13.0
RUN_OUT ?= runs

.PHONY: setup run test bench docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test,nwb,docs]'   # nwb: the NWB tests; docs: tests/docs builds the site with -W
	touch $(STAMP)

run: setup
	$(VENV)/bin/decisionnets demo --out $(RUN_OUT)

test: setup
	$(PY) -m pytest -q

# Each bench writes its numbers (with the date, CPUs, load average and threads) to bench/results/<name>.json;
# bench/figures.py draws them into docs/figures/bench_<name>.png (the figures of docs/benchmarks.rst).
BENCH_OUT ?= bench/results
bench: setup
	$(PY) bench/train_throughput.py --json $(BENCH_OUT)/train_throughput.json
	$(PY) bench/decode_speed.py --json $(BENCH_OUT)/decode_speed.json
	$(PY) bench/decode_real_layers.py --train $(RUN_OUT)/bench-demo-rnn --json $(BENCH_OUT)/decode_real_layers.json
	$(PY) bench/ensemble_sweep.py --json $(BENCH_OUT)/ensemble_sweep.json
	$(PY) bench/under_load.py --default-threads --json $(BENCH_OUT)/under_load.json
	MPLBACKEND=Agg $(PY) bench/figures.py --results $(BENCH_OUT) --out docs/figures

# The documentation site, offline, into docs/_build/html, with the example gallery executed;
# warnings are errors (-W), all of them reported (--keep-going).
docs: setup
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m sphinx -b html -W --keep-going docs docs/_build/html

clean:
	rm -rf $(VENV) $(RUN_OUT) docs/_build docs/generated docs/auto_examples docs/api.rst
