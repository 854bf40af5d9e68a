# rrb_ros developer entry points. Each target sets up what it needs (idempotent).
#   make setup   create .venv and install everything (ROS 2 Kilted wheels, torch CPU, ...)
#   make demo    fit poses on generated data, write results/
#   make test    run the test suite
#   make bench   run the benchmarks, write bench/results.json and print a table

PYTHON ?= python3
VENV   ?= $(CURDIR)/.venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.rrb-setup-stamp
# the ROS wheels' bootstrapper re-executes Python once; keep child processes on the venv
export PATH := $(VENV)/bin:$(PATH)

.PHONY: setup demo test bench lint clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt requirements-orbslam.txt setup.py package.xml \
          scripts/build_msgs.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-orbslam.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	bash scripts/build_msgs.sh $(VENV)
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/rrb demo --out results

test: setup
	$(PY) -m pytest -q test

bench: setup
	$(PY) bench/run.py --out bench/results.json

clean:
	rm -rf $(VENV) build *.egg-info results
