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

# Options of the use-case commands (see README); each is passed only when set, the command's
# defaults apply otherwise (e.g. ITER=600000, SEED=1, VARIANT=crop).
DATA    ?=
VARIANT ?=
ITER    ?=
GPU     ?= 0
SEED    ?=
WORK    ?=
STAGES  ?=
JOBS    ?=
USECASE ?=
FORCE   ?=     # FORCE=1: recompute the stages whose options changed (and all after them) instead of refusing
OURS    ?=
OURS_MEAN ?=
NUCLEI  ?=
EPOCHS  ?=
FOLD    ?=
SPLIT   ?=
PYTEST_ARGS ?=
# Cluster runs (README "Scale out"): SCHEDULER=slurm|pbs|local submits the use case as jobs instead of
# running it here; SUBMIT_OPTS = submit's own options (--partition=gpu --time=72:00:00 ...)
SCHEDULER ?=
SUBMIT_OPTS ?=
CAFFE_BUILD_FLAGS ?=   # --gpu builds Caffe with CUDA (the CUDA Dockerfile sets it)
# Assets beside the checkout (the project's shared folder); `make regress`/`bench-infer` use them
# when present, else what `make fetch-released` put into data/released.
SHARED   ?= $(abspath $(CURDIR)/../shared)
RELEASED ?= $(if $(wildcard $(SHARED)/released),$(SHARED)/released,data/released)
REALDATA ?= $(SHARED)/realdata/idc

GPU_FLAG = $(if $(filter 1 yes true,$(GPU)),--gpu,)
FORCE_FLAG = $(if $(filter 1 yes true,$(strip $(FORCE))),--force,)
# the options every use-case command takes, when set
UC_OPTS = $(if $(DATA),--data "$(DATA)") $(if $(ITER),--iter $(ITER)) $(if $(SEED),--seed $(SEED)) \
          $(if $(STAGES),--stages $(STAGES)) $(GPU_FLAG) $(FORCE_FLAG)
# `python -m pipeline`, or with SCHEDULER set `python -m pipeline submit ...`: the use-case command as jobs
RUN_UC = $(PY) -m pipeline$(if $(SCHEDULER), submit --scheduler $(SCHEDULER) $(SUBMIT_OPTS))

# container options (README "Docker"); docker/images.sh reads them from its environment
CUDA           ?= 0
IMAGE          ?= jpi-dl-caffe
DOCKER_NETWORK ?= host
CUDA_ARCH_BIN  ?=
CUDA_TOOLKIT   ?= wheels
DOCKER_ENV = CUDA="$(CUDA)" IMAGE="$(IMAGE)" DOCKER_NETWORK="$(DOCKER_NETWORK)" CUDA_ARCH_BIN="$(CUDA_ARCH_BIN)" \
             CUDA_TOOLKIT="$(CUDA_TOOLKIT)" SHARED="$(SHARED)" DATA="$(DATA)" ITER="$(ITER)" VARIANT="$(VARIANT)" \
             GPU="$(GPU)" FORCE="$(strip $(FORCE))" PYTEST_ARGS="$(PYTEST_ARGS)"

.PHONY: help setup apt venv caffe setup-slurm status doctor test lint caffe-selftest caffe-selftest-deps demo usecases usecase6 radhical check-data regress report fetch-released bench bench-infer bench-wsi \
        bench-radhical bench-export bench-tubule \
        lint-docker docker-base docker-build docker-test docker-demo docker-usecase6 caffe-gpu-check clean distclean \
        setup-unet unet demo-unet unet-vs-caffe demo-unet-vs-caffe bench-unet

help:
	@echo "make demo      - set up, then run use case 6 end to end on a small generated cohort"
	@echo "make test      - set up, then run the tests (real Caffe tools on generated data)"
	@echo "make lint      - ruff check and ruff format --check (settings in pyproject.toml; seconds)"
	@echo "make setup     - Debian packages, .venv, BVLC Caffe (tools + pycaffe); skips what is done"
	@echo "make caffe-selftest - Caffe's own C++ (gtest) and pycaffe suites against the installed Caffe"
	@echo "                 (make caffe-selftest-deps: only the Debian and Python packages they need)"
	@echo "make doctor    - versions and paths of Caffe, pycaffe and the Python dependencies"
	@echo "make usecases  - the registered use cases, their commands and stages"
	@echo "make usecase6 DATA=<zip|folder> [VARIANT=crop|resize|crop-morerot] [ITER=600000] [GPU=1] [STAGES=...] [FORCE=1]"
	@echo "make usecase<N> DATA=<folder|archive> [ITER=] [GPU=1] [JOBS=N] [SEED=] [WORK=] [STAGES=] [FORCE=1]  (any registered use case)"
	@echo "                FORCE=1 recomputes the stages whose options changed instead of refusing (see README)"
	@echo "     ... SCHEDULER=slurm|pbs|local [SUBMIT_OPTS='--partition=gpu --time=72:00:00']: as cluster jobs"
	@echo "make status WORK=<folder>  - queued, running, done, failed tasks of a submitted run"
	@echo "make setup-slurm  - Debian's SLURM and MUNGE packages (the tests start a private one-node cluster)"
	@echo "make demo-<name>  - a use case on a generated cohort (demo-epi, demo-lymphocyte, demo-nuclei, demo-radhical, ...)"
	@echo "make radhical DATA=<nuclei.tgz|folder> [ITER=600000] [GPU=1] [JOBS=N] [WORK=runs/radhical] [STAGES=...]"
	@echo "make regress   [DATA=<folder>] [OURS=<model.caffemodel>] [OURS_MEAN=<mean.binaryproto>] [RELEASED=<folder>] [NUCLEI=<nuclei folder>]"
	@echo "make data-<name>  - download a data set into data/ (idc, epi, lymphocyte, nuclei, tubule, lymphoma): progress, resumable, sha256"
	@echo "make check-data DATA=<archive|folder> USECASE=<name>  - what it holds (the usecase targets run it first)"
	@echo "make report WORK=<work folder>  - rebuild WORK/report/index.html from a finished run (recomputes nothing)"
	@echo "make setup-unet - the PyTorch U-Net's dependencies (requirements-unet.txt; make test runs it)"
	@echo "make unet DATA=<epi.tgz|folder> [EPOCHS=100] [SPLIT='uc2-fold 1'] [SEED=] [GPU=1] [STAGES=dbs,train,outputs,scores] [FORCE=1]"
	@echo "make demo-unet - the U-Net on a generated cohort (CPU, a few epochs)"
	@echo "make unet-vs-caffe DATA=<epi.tgz|folder> FOLD=k [EPOCHS=100] [ITER=600000] [GPU=1] [FORCE=1]; make demo-unet-vs-caffe"
	@echo "make fetch-released, make bench, make bench-infer, make bench-wsi, make bench-radhical, make bench-export, make bench-unet, make lint-docker, make clean"
	@echo "make bench-tubule - use case 3's mining features: vectorised GLCM against the per-pixel loop (prints a table)"
	@echo "make docker-base  - Debian 12 base image made locally (debootstrap, docker import): no registry needed"
	@echo "make docker-build [CUDA=1], make docker-test [CUDA=1] (make test inside, ../shared mounted),"
	@echo "     make docker-demo, make docker-usecase6 DATA=<zip|folder> [ITER=] [GPU=1] [FORCE=1]  (DOCKER_NETWORK=host)"
	@echo "make caffe-gpu-check [CUDA_ARCH_BIN=\"75 80 86 90\"] - compile GPU Caffe here, list its architectures"

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

# SLURM and MUNGE for the tests' single-node cluster (Debian packages; nothing is started here)
setup-slurm:
	@bash docker/setup_slurm.sh

doctor: setup
	$(PY) -m pipeline doctor

# the PyTorch U-Net (optional for Caffe-only use; `make test` installs it so CI tests it)
$(VENV)/.requirements-unet.stamp: requirements-unet.txt | venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-unet.txt
	@touch $@

setup-unet: venv $(VENV)/.requirements-unet.stamp

# ---------------------------------------------------------------- the two commands
# ruff's lint rules and formatting (pyproject.toml); needs only the .venv, not Caffe
lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup setup-slurm setup-unet
	$(PY) -m pytest -q -rs tests $(PYTEST_ARGS)

# Caffe's own suites: test.testbin from the same build recipe (build_caffe.sh --tests), then both run.
# The kit first: an image built without it says so before anything is installed.
caffe-selftest: setup
	@bash docker/build_caffe.sh --python $(CURDIR)/$(PY) --tests $(CAFFE_BUILD_FLAGS)
	@$(MAKE) --no-print-directory caffe-selftest-deps
	$(PY) docker/caffe_selftest.py --caffe-root "$(CAFFE_ROOT)" --out runs/caffe-selftest

caffe-selftest-deps: venv $(VENV)/.selftest-requirements.stamp
	@bash docker/build_caffe.sh --deps-only --tests

$(VENV)/.selftest-requirements.stamp: requirements-selftest.txt $(VENV)/.requirements.stamp
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-selftest.txt
	@touch $@

demo: setup
	$(PY) -m pipeline demo --work $(or $(WORK),runs/demo) $(if $(SEED),--seed $(SEED)) $(FORCE_FLAG)

# ---------------------------------------------------------------- experiments
usecases: setup
	@$(PY) -m pipeline usecases

# Every use-case target first runs `data check` on DATA (extracting into WORK/data, where the run
# finds it) and stops with its report when something is wrong. ALLOW_UNVERIFIED=1 accepts an
# archive whose sha256 differs from the published one (deliberately).
export ALLOW_UNVERIFIED
DATA_CHECK = $(PY) -m pipeline data check "$(DATA)" --usecase $(1) --work "$(2)"

# use case 6 takes its variant and dropout options too
usecase6: setup
	@test -n "$(DATA)" || { echo "usage: make usecase6 DATA=<IDC zip or folder> [VARIANT=crop] [ITER=600000] [GPU=1]"; exit 2; }
	$(call DATA_CHECK,usecase6,$(or $(WORK),runs/usecase6-$(or $(VARIANT),crop)))
	$(RUN_UC) usecase6 $(UC_OPTS) $(if $(VARIANT),--variant $(VARIANT)) --work "$(or $(WORK),runs/usecase6-$(or $(VARIANT),crop))"

# every other registered use case: `make usecase<N> DATA=...` runs `python -m pipeline usecase<N>`
usecase%: setup
	@test -n "$(DATA)" || { echo "usage: make usecase$* DATA=<folder or archive> [ITER=600000] [GPU=1] [JOBS=1]"; exit 2; }
	$(call DATA_CHECK,usecase$*,$(or $(WORK),runs/usecase$*))
	$(RUN_UC) usecase$* $(UC_OPTS) --work "$(or $(WORK),runs/usecase$*)" $(if $(JOBS),-j $(JOBS))

# RADHicaL (no tutorial number): the four-level nuclei cascade
radhical: setup
	@test -n "$(DATA)" || { echo "usage: make radhical DATA=<nuclei.tgz or folder> [ITER=600000] [GPU=1] [JOBS=1] [WORK=runs/radhical]"; exit 2; }
	$(call DATA_CHECK,radhical,$(or $(WORK),runs/radhical))
	$(PY) -m pipeline radhical $(UC_OPTS) --work "$(or $(WORK),runs/radhical)" $(if $(JOBS),-j $(JOBS))

# `make demo-<name>` runs `python -m pipeline demo-<name>` (a generated cohort)
demo-%: setup
	$(RUN_UC) demo-$* $(if $(SEED),--seed $(SEED)) $(if $(ITER),--iter $(ITER)) $(if $(WORK),--work "$(WORK)") $(FORCE_FLAG)

status: setup
	@test -n "$(WORK)" || { echo "usage: make status WORK=<work folder of a submitted run>"; exit 2; }
	$(PY) -m pipeline status "$(WORK)"

# `make data-<name>` downloads a data set into data/ (idc, epi, lymphocyte, nuclei, tubule, lymphoma)
data-%: setup
	$(PY) -m pipeline data fetch $* --dest data

check-data: setup
	@test -n "$(DATA)" -a -n "$(USECASE)" || { echo "usage: make check-data DATA=<archive or folder> USECASE=<use case or data set>"; exit 2; }
	$(PY) -m pipeline data check "$(DATA)" --usecase $(USECASE) $(if $(WORK),--work "$(WORK)")

# the PyTorch U-Net (explicit rules: they need setup-unet, and win over the pattern rules above)
UNET_OPTS = $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(SEED),--seed $(SEED)) $(GPU_FLAG) $(FORCE_FLAG)
unet: setup setup-unet
	@test -n "$(DATA)" || { echo "usage: make unet DATA=<epi.tgz or folder> [EPOCHS=100] [SPLIT='uc2-fold 1'] [GPU=1]"; exit 2; }
	$(call DATA_CHECK,unet,$(or $(WORK),runs/unet))
	$(PY) -m pipeline unet --data "$(DATA)" --work "$(or $(WORK),runs/unet)" $(UNET_OPTS) \
	  $(if $(SPLIT),--split "$(SPLIT)") $(if $(STAGES),--stages $(STAGES))

demo-unet: setup setup-unet
	$(PY) -m pipeline demo-unet --work "$(or $(WORK),runs/demo-unet)" $(UNET_OPTS)

unet-vs-caffe: setup setup-unet
	@test -n "$(DATA)" || { echo "usage: make unet-vs-caffe DATA=<epi.tgz or folder> FOLD=k [EPOCHS=100] [ITER=600000] [GPU=1]"; exit 2; }
	$(call DATA_CHECK,unet,$(or $(WORK),runs/unet-vs-caffe))
	$(PY) -m pipeline unet-vs-caffe --data "$(DATA)" --fold $(or $(FOLD),1) --work "$(or $(WORK),runs/unet-vs-caffe)" \
	  $(UNET_OPTS) $(if $(ITER),--iter $(ITER))

demo-unet-vs-caffe: setup setup-unet
	$(PY) -m pipeline demo-unet-vs-caffe --fold $(or $(FOLD),1) --work "$(or $(WORK),runs/demo-unet-vs-caffe)" \
	  $(UNET_OPTS) $(if $(ITER),--iter $(ITER))

bench-unet: setup setup-unet
	$(PY) bench/unet.py --released "$(RELEASED)/uc2-epi"

regress: setup
	$(PY) -m pipeline regress --released "$(RELEASED)" --data "$(or $(DATA),$(REALDATA))" \
	  $(foreach m,$(OURS),--ours "$(m)") $(foreach m,$(OURS_MEAN),--ours-mean "$(m)") --out runs/regress
	$(if $(NUCLEI),$(PY) -m pipeline regress --usecase nuclei --released "$(RELEASED)" --data "$(NUCLEI)" \
	  --out runs/regress-nuclei)

report: setup
	@test -n "$(WORK)" || { echo "usage: make report WORK=<work folder of a run>"; exit 2; }
	$(PY) -m pipeline report "$(WORK)"

fetch-released: setup
	$(PY) -m pipeline fetch-released --usecase all --dest data/released

bench: setup
	$(PY) bench/patches.py

bench-infer: setup
	$(PY) bench/infer.py --released "$(RELEASED)/uc2-epi" $(GPU_FLAG)

bench-radhical: setup
	$(PY) bench/radhical.py --work "$(or $(WORK),runs/demo-radhical)" $(GPU_FLAG)

bench-wsi: setup
	$(PY) bench/wsi.py --released "$(RELEASED)/uc2-epi"

bench-export: setup
	$(PY) bench/export.py

lint-docker: venv
	$(VENV)/bin/hadolint docker/Dockerfile

# ---------------------------------------------------------------- containers and the GPU build
docker-base:
	@$(DOCKER_ENV) bash docker/images.sh base

docker-build:
	@$(DOCKER_ENV) bash docker/images.sh build

docker-test:
	@$(DOCKER_ENV) bash docker/images.sh test

docker-demo:
	@$(DOCKER_ENV) bash docker/images.sh demo

docker-usecase6:
	@$(DOCKER_ENV) bash docker/images.sh usecase6

caffe-gpu-check: venv
	@CUDA_ARCH_BIN="$(CUDA_ARCH_BIN)" CUDA_TOOLKIT="$(CUDA_TOOLKIT)" bash docker/caffe_gpu_check.sh --python $(CURDIR)/$(PY)

clean:
	rm -rf runs .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .caffe .caffe-build .caffe-src .caffe-gpu .cuda13

# use case 3's mining features: vectorised GLCM against nlfilter_aj's per-pixel loop, in one run
bench-tubule: setup
	$(PY) bench/tubule.py
