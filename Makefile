# Two entry points (see README): `make run` (set up + demo) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# torch first, pinned: on these machines 2.13.0 is the CPU build; an unpinned
# torch would pull a multi-GB CUDA build through neurogym.
TORCH   = torch==2.13.0
RUN_OUT ?= runs

.PHONY: setup run test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/decisionnets demo --out $(RUN_OUT)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/train_throughput.py
	$(PY) bench/decode_speed.py
	$(PY) bench/decode_real_layers.py --train $(RUN_OUT)/bench-demo-rnn
	$(PY) bench/ensemble_sweep.py
	$(PY) bench/under_load.py --default-threads

clean:
	rm -rf $(VENV) $(RUN_OUT)
