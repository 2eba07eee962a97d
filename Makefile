# Caffe-faithful reproduction of Janowczyk's deep-learning tutorials for digital pathology.
# `make demo` and `make test` set up whatever is missing first (Debian packages, .venv, Caffe).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY_SYS    ?= /usr/bin/python3
VENV      ?= .venv
PY        := $(VENV)/bin/python
CAFFE_ROOT ?= $(CURDIR)/.caffe
export CAFFE_ROOT
SITE      = $(shell $(PY) -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)

# use case 6 options (see README)
DATA    ?=
VARIANT ?= crop
ITER    ?= 600000
GPU     ?= 0
SEED    ?= 1
WORK    ?= runs/usecase6-$(VARIANT)
OURS    ?=
OURS_MEAN ?=
STAGES  ?=
JOBS    ?= 1
PYTEST_ARGS ?=
CAFFE_BUILD_FLAGS ?=   # --gpu builds Caffe with CUDA (the CUDA Dockerfile sets it)

GPU_FLAG = $(if $(filter 1 yes true,$(GPU)),--gpu,)

.PHONY: help setup apt venv caffe doctor test demo usecase6 usecase2 demo-epi usecase4 demo-lymphocyte data-idc regress fetch-released bench bench-infer \
        lint-docker clean distclean

help:
	@echo "make demo      - set up, then run use case 6 end to end on a small generated cohort"
	@echo "make test      - set up, then run the tests (real Caffe tools on generated data)"
	@echo "make setup     - Debian packages, .venv, BVLC Caffe (tools + pycaffe); skips what is done"
	@echo "make doctor    - versions and paths of Caffe, pycaffe and the Python dependencies"
	@echo "make usecase6 DATA=<zip|folder> [VARIANT=crop|resize|crop-morerot] [ITER=600000] [GPU=1]"
	@echo "make usecase2 DATA=<folder|archive>, make usecase4 DATA=<folder|archive> [ITER=] [GPU=1] [JOBS=N]"
	@echo "make demo-epi, make demo-lymphocyte - use cases 2 and 4 on generated cohorts"
	@echo "make regress   [DATA=<folder>] [OURS=<model.caffemodel>] [OURS_MEAN=<mean.binaryproto>]"
	@echo "make data-idc, make fetch-released, make bench, make bench-infer, make lint-docker, make clean"

# ---------------------------------------------------------------- setup
setup: apt venv caffe
	@$(PY) -m pipeline doctor --quiet

apt:
	@bash docker/build_caffe.sh --deps-only

$(VENV)/.requirements.stamp: requirements.txt
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

venv: apt $(VENV)/.requirements.stamp

caffe: venv
	@bash docker/build_caffe.sh --python $(CURDIR)/$(PY) $(CAFFE_BUILD_FLAGS)
	@echo "$(CAFFE_ROOT)/python" > "$(SITE)/caffe.pth"

doctor: setup
	$(PY) -m pipeline doctor

# ---------------------------------------------------------------- the two commands
test: setup
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

demo: setup
	$(PY) -m pipeline demo --work runs/demo --seed $(SEED)

# ---------------------------------------------------------------- experiments
usecase6: setup
	@test -n "$(DATA)" || { echo "usage: make usecase6 DATA=<IDC zip or folder> [VARIANT=crop] [ITER=600000] [GPU=1]"; exit 2; }
	$(PY) -m pipeline usecase6 --data "$(DATA)" --variant $(VARIANT) --iter $(ITER) --seed $(SEED) --work $(WORK) $(GPU_FLAG) $(if $(STAGES),--stages $(STAGES),)

usecase2: setup
	@test -n "$(DATA)" || { echo "usage: make usecase2 DATA=<folder of *.tif and *_mask.png> [ITER=600000] [GPU=1] [JOBS=1]"; exit 2; }
	$(PY) -m pipeline usecase2 --data "$(DATA)" --iter $(ITER) --seed $(SEED) --work runs/usecase2 -j $(JOBS) $(GPU_FLAG)

demo-epi: setup
	$(PY) -m pipeline demo-epi --work runs/demo-epi --seed $(SEED)

usecase4: setup
	@test -n "$(DATA)" || { echo "usage: make usecase4 DATA=<folder of im<N>.tif and <N>m.tif> [ITER=600000] [GPU=1] [JOBS=1]"; exit 2; }
	$(PY) -m pipeline usecase4 --data "$(DATA)" --iter $(ITER) --seed $(SEED) --work runs/usecase4 -j $(JOBS) $(GPU_FLAG)

demo-lymphocyte: setup
	$(PY) -m pipeline demo-lymphocyte --work runs/demo-lymphocyte --seed $(SEED)

data-idc: setup
	$(PY) -m pipeline data idc --dest data

regress: setup
	$(PY) -m pipeline regress $(if $(DATA),--data "$(DATA)",) $(foreach m,$(OURS),--ours "$(m)") $(if $(OURS_MEAN),--ours-mean "$(OURS_MEAN)",) --out runs/regress

fetch-released: setup
	$(PY) -m pipeline fetch-released --usecase all --dest data/released

bench: setup
	$(PY) bench/patches.py

bench-infer: setup
	$(PY) bench/infer.py $(GPU_FLAG)

lint-docker:
	@if command -v hadolint >/dev/null; then hadolint docker/Dockerfile docker/Dockerfile.cpu; \
	 else $(PY) -m pytest -q tests/test_docker.py; fi

clean:
	rm -rf runs .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .caffe .caffe-build .caffe-src
