# Two commands a person needs: `make run` opens the console, `make test` runs every test.
# Both install into the project virtualenv .venv first; the second call skips what is done.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

# kube-apiserver 1.20.2 + etcd for the cluster-profile tests: built once into a cache
# outside the repo by the tool beside the project (../shared/tools), or taken from
# KUBE_APISERVER / ETCD / PATH where a user already has them (as with envtest or kind).
KUBE_TOOL  ?= $(abspath ../shared/tools/kube-apiserver.sh)
KUBE_CACHE ?= $(HOME)/.cache/kube-apiserver-1.20.2

.PHONY: run test kube-binaries bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dlptui

kube-binaries:
	@if [ -n "$$KUBE_APISERVER" ] || command -v kube-apiserver >/dev/null; then echo "kube-apiserver: given"; \
	elif [ -x "$(KUBE_TOOL)" ] || [ -f "$(KUBE_TOOL)" ]; then KUBE_CACHE=$(KUBE_CACHE) bash $(KUBE_TOOL) build; \
	else echo "no kube-apiserver: set KUBE_APISERVER and ETCD, or put them on PATH (the cluster tests will fail)"; fi

test: $(STAMP) kube-binaries
	PATH="$(KUBE_CACHE)/bin:$$PATH" $(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
