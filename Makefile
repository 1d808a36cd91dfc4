# Two commands a person needs: `make run` opens the console, `make test` runs every test.
# Both install into the project virtualenv .venv first, with the versions of requirements.lock;
# the second call skips what is done. `make lock` refreshes the lock from pyproject.toml.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install -q --disable-pip-version-check
LOCK   := requirements.lock
# `make run` needs the embedded platform only ([local]); `make test` adds the cluster clients
# and the test tools ([test] includes [local] and [cluster]).
STAMP_RUN  := $(VENV)/.installed-local
STAMP_TEST := $(VENV)/.installed-test

# kube-apiserver 1.20.2 + etcd for the cluster-profile tests: built once into a cache
# outside the repo by the tool beside the project (../shared/tools), or taken from
# KUBE_APISERVER / ETCD / PATH where a user already has them (as with envtest or kind).
KUBE_TOOL  ?= $(abspath ../shared/tools/kube-apiserver.sh)
KUBE_CACHE ?= $(HOME)/.cache/kube-apiserver-1.20.2

# pip-compile runs from its own small virtualenv, never from .venv (it would install into it).
PIPTOOLS_VENV ?= $(HOME)/.cache/dlptui/pip-tools-7.6.2
LOCK_FLAGS := --strip-extras --no-allow-unsafe --unsafe-package dlptui \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	--extra local --extra cluster --extra test -c constraints.txt

.PHONY: run test test-fast kube-binaries bench lock check-install clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): pyproject.toml $(LOCK) | $(VENV)/bin/python
	$(PIP) -c $(LOCK) -e '.[local]'
	touch $(STAMP_RUN)

$(STAMP_TEST): pyproject.toml $(LOCK) | $(VENV)/bin/python
	$(PIP) -c $(LOCK) -e '.[test]'
	touch $(STAMP_TEST) $(STAMP_RUN)

run: $(STAMP_RUN)
	$(VENV)/bin/dlptui

kube-binaries:
	@if [ -n "$$KUBE_APISERVER" ] || command -v kube-apiserver >/dev/null; then echo "kube-apiserver: given"; \
	elif [ -x "$(KUBE_TOOL)" ] || [ -f "$(KUBE_TOOL)" ]; then KUBE_CACHE=$(KUBE_CACHE) bash $(KUBE_TOOL) build; \
	else echo "no kube-apiserver: set KUBE_APISERVER and ETCD, or put them on PATH (the cluster tests will fail)"; fi

test: $(STAMP_TEST) kube-binaries
	PATH="$(KUBE_CACHE)/bin:$$PATH" $(PY) -m pytest -q $(PYTEST_ARGS)

# The tests that neither train nor serve, over the cores (pytest-xdist): under 5 minutes on 2 cores.
test-fast: $(STAMP_TEST) kube-binaries
	PATH="$(KUBE_CACHE)/bin:$$PATH" $(PY) -m pytest -q -m "not slow" -n auto $(PYTEST_ARGS)

bench: $(STAMP_TEST)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

# Refresh requirements.lock after a change to pyproject.toml (or constraints.txt, the resolver
# hints). It keeps the pins it can; LOCK_ARGS=--upgrade (or --upgrade-package NAME) moves them.
lock:
	test -x $(PIPTOOLS_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(PIPTOOLS_VENV) && \
		$(PIPTOOLS_VENV)/bin/pip install -q --disable-pip-version-check pip-tools==7.6.2; }
	$(PIPTOOLS_VENV)/bin/pip-compile --quiet $(LOCK_FLAGS) $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

# A wheel of this checkout in fresh virtualenvs: [local] end to end from an empty folder,
# [cluster] without torch, the base install (scripts/check-install.sh; a few minutes, ~6 GB in /tmp).
check-install:
	bash scripts/check-install.sh

clean:
	rm -rf $(VENV) .pytest_cache
