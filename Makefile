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
OURS    ?=
OURS_MEAN ?=
NUCLEI  ?=
PYTEST_ARGS ?=
CAFFE_BUILD_FLAGS ?=   # --gpu builds Caffe with CUDA (the CUDA Dockerfile sets it)
# Assets beside the checkout (the project's shared folder); `make regress`/`bench-infer` use them
# when present, else what `make fetch-released` put into data/released.
SHARED   ?= $(abspath $(CURDIR)/../shared)
RELEASED ?= $(if $(wildcard $(SHARED)/released),$(SHARED)/released,data/released)
REALDATA ?= $(SHARED)/realdata/idc

GPU_FLAG = $(if $(filter 1 yes true,$(GPU)),--gpu,)
# the options every use-case command takes, when set
UC_OPTS = $(if $(DATA),--data "$(DATA)") $(if $(ITER),--iter $(ITER)) $(if $(SEED),--seed $(SEED)) \
          $(if $(STAGES),--stages $(STAGES)) $(GPU_FLAG)

# container options (README "Docker"); docker/images.sh reads them from its environment
CUDA           ?= 0
IMAGE          ?= jpi-dl-caffe
DOCKER_NETWORK ?= host
CUDA_ARCH_BIN  ?=
CUDA_TOOLKIT   ?= wheels
DOCKER_ENV = CUDA="$(CUDA)" IMAGE="$(IMAGE)" DOCKER_NETWORK="$(DOCKER_NETWORK)" CUDA_ARCH_BIN="$(CUDA_ARCH_BIN)" \
             CUDA_TOOLKIT="$(CUDA_TOOLKIT)" SHARED="$(SHARED)" DATA="$(DATA)" ITER="$(ITER)" VARIANT="$(VARIANT)" \
             GPU="$(GPU)" PYTEST_ARGS="$(PYTEST_ARGS)"

.PHONY: help setup apt venv caffe doctor test demo usecases usecase6 radhical check-data regress fetch-released bench bench-infer \
        bench-radhical \
        lint-docker docker-base docker-build docker-test docker-demo docker-usecase6 caffe-gpu-check clean distclean

help:
	@echo "make demo      - set up, then run use case 6 end to end on a small generated cohort"
	@echo "make test      - set up, then run the tests (real Caffe tools on generated data)"
	@echo "make setup     - Debian packages, .venv, BVLC Caffe (tools + pycaffe); skips what is done"
	@echo "make doctor    - versions and paths of Caffe, pycaffe and the Python dependencies"
	@echo "make usecases  - the registered use cases, their commands and stages"
	@echo "make usecase6 DATA=<zip|folder> [VARIANT=crop|resize|crop-morerot] [ITER=600000] [GPU=1] [STAGES=...]"
	@echo "make usecase<N> DATA=<folder|archive> [ITER=] [GPU=1] [JOBS=N] [SEED=] [WORK=] [STAGES=]  (any registered use case)"
	@echo "make demo-<name>  - a use case on a generated cohort (demo-epi, demo-lymphocyte, demo-nuclei, demo-radhical, ...)"
	@echo "make radhical DATA=<nuclei.tgz|folder> [ITER=600000] [GPU=1] [JOBS=N] [WORK=runs/radhical] [STAGES=...]"
	@echo "make regress   [DATA=<folder>] [OURS=<model.caffemodel>] [OURS_MEAN=<mean.binaryproto>] [RELEASED=<folder>] [NUCLEI=<nuclei folder>]"
	@echo "make data-<name>  - download a data set into data/ (idc, epi, lymphocyte, nuclei, tubule): progress, resumable, sha256"
	@echo "make check-data DATA=<archive|folder> USECASE=<name>  - what it holds (the usecase targets run it first)"
	@echo "make fetch-released, make bench, make bench-infer, make bench-radhical, make lint-docker, make clean"
	@echo "make docker-base  - Debian 12 base image made locally (debootstrap, docker import): no registry needed"
	@echo "make docker-build [CUDA=1], make docker-test [CUDA=1] (make test inside, ../shared mounted),"
	@echo "     make docker-demo, make docker-usecase6 DATA=<zip|folder> [ITER=] [GPU=1]  (DOCKER_NETWORK=host)"
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

doctor: setup
	$(PY) -m pipeline doctor

# ---------------------------------------------------------------- the two commands
test: setup
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

demo: setup
	$(PY) -m pipeline demo --work $(or $(WORK),runs/demo) $(if $(SEED),--seed $(SEED))

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
	$(PY) -m pipeline usecase6 $(UC_OPTS) $(if $(VARIANT),--variant $(VARIANT)) --work "$(or $(WORK),runs/usecase6-$(or $(VARIANT),crop))"

# every other registered use case: `make usecase<N> DATA=...` runs `python -m pipeline usecase<N>`
usecase%: setup
	@test -n "$(DATA)" || { echo "usage: make usecase$* DATA=<folder or archive> [ITER=600000] [GPU=1] [JOBS=1]"; exit 2; }
	$(call DATA_CHECK,usecase$*,$(or $(WORK),runs/usecase$*))
	$(PY) -m pipeline usecase$* $(UC_OPTS) --work "$(or $(WORK),runs/usecase$*)" $(if $(JOBS),-j $(JOBS))

# RADHicaL (no tutorial number): the four-level nuclei cascade
radhical: setup
	@test -n "$(DATA)" || { echo "usage: make radhical DATA=<nuclei.tgz or folder> [ITER=600000] [GPU=1] [JOBS=1] [WORK=runs/radhical]"; exit 2; }
	$(call DATA_CHECK,radhical,$(or $(WORK),runs/radhical))
	$(PY) -m pipeline radhical $(UC_OPTS) --work "$(or $(WORK),runs/radhical)" $(if $(JOBS),-j $(JOBS))

# `make demo-<name>` runs `python -m pipeline demo-<name>` (a generated cohort)
demo-%: setup
	$(PY) -m pipeline demo-$* $(if $(SEED),--seed $(SEED)) $(if $(WORK),--work "$(WORK)")

# `make data-<name>` downloads a data set into data/ (idc, epi, lymphocyte, nuclei, tubule)
data-%: setup
	$(PY) -m pipeline data fetch $* --dest data

check-data: setup
	@test -n "$(DATA)" -a -n "$(USECASE)" || { echo "usage: make check-data DATA=<archive or folder> USECASE=<use case or data set>"; exit 2; }
	$(PY) -m pipeline data check "$(DATA)" --usecase $(USECASE) $(if $(WORK),--work "$(WORK)")

regress: setup
	$(PY) -m pipeline regress --released "$(RELEASED)" --data "$(or $(DATA),$(REALDATA))" \
	  $(foreach m,$(OURS),--ours "$(m)") $(foreach m,$(OURS_MEAN),--ours-mean "$(m)") --out runs/regress
	$(if $(NUCLEI),$(PY) -m pipeline regress --usecase nuclei --released "$(RELEASED)" --data "$(NUCLEI)" \
	  --out runs/regress-nuclei)

fetch-released: setup
	$(PY) -m pipeline fetch-released --usecase all --dest data/released

bench: setup
	$(PY) bench/patches.py

bench-infer: setup
	$(PY) bench/infer.py --released "$(RELEASED)/uc2-epi" $(GPU_FLAG)

bench-radhical: setup
	$(PY) bench/radhical.py --work "$(or $(WORK),runs/demo-radhical)" $(GPU_FLAG)

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
