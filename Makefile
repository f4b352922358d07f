# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGINS))
STAMP := $(VENV)/.installed
# The same uv as the Dockerfile's build stage (tests/deploy/test_ship_image_recipe.py checks they agree).
UV_VERSION := 0.13.9

.PHONY: install install-node run test lint typecheck bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

# Host and every plugin, editable, with their test extras. Bytecode is compiled here, not at
# each start: with PYTHONDONTWRITEBYTECODE set nothing else writes it, and compiling the
# imports of `modelmux serve` costs more than a second on every start (docs/performance.md).
# uv compiles what it installs; compileall also covers packages an older venv already had
# (it skips files whose bytecode is current).
$(STAMP): $(BIN)/uv pyproject.toml $(PLUGINS) Makefile
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[test,dev]' \
		$(foreach p,$(PLUGIN_DIRS),-e '$(p)[test]')
	$(BIN)/python -m compileall -q -j 0 modelmux $(PLUGIN_DIRS) \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# The TypeScript examples' packages (openai, typescript), again only when the lock file changes.
TS_EXAMPLES := examples/typescript
TS_STAMP := $(TS_EXAMPLES)/node_modules/.installed
$(TS_STAMP): $(TS_EXAMPLES)/package.json $(TS_EXAMPLES)/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: the TypeScript examples need Node.js 20+ and npm" >&2; exit 1; }
	cd $(TS_EXAMPLES) && npm ci --no-audit --no-fund
	touch $(TS_STAMP)

# helm (an npm package, pinned in tools/package-lock.json) for the Kubernetes tests.
TOOLS_STAMP := tools/node_modules/.installed
$(TOOLS_STAMP): tools/package.json tools/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: the deployment tests need Node.js 20+ and npm (tools/package.json)"; exit 1; }
	cd tools && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# Node packages are needed by the tests, not by `make run`: a laptop without npm can still serve.
install-node: $(TS_STAMP) $(TOOLS_STAMP)

run: install
	$(BIN)/modelmux serve

# pytest exit code 5 (nothing collected) is a failure here, as it should be.
test: install install-node
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check modelmux plugins tests examples bench
	$(BIN)/ruff format --check modelmux plugins tests examples bench

typecheck: install
	$(BIN)/mypy modelmux $(foreach p,$(PLUGIN_DIRS),$(patsubst %/__init__.py,%,$(wildcard $(p)/modelmux_*/__init__.py)))
	$(BIN)/mypy bench/*.py

# The benchmark (docs/performance.md): about 11 minutes; `make bench BENCH_ARGS=--quick` for a 2-3 minute look.
# wrk, the load generator, is a Debian package: installed here when missing (as root, or through sudo).
BENCH_STAMP := $(VENV)/.bench-installed
WRK_INSTALL := apt-get install -y --no-install-recommends wrk || (apt-get update && apt-get install -y --no-install-recommends wrk)

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
		echo "make bench: wrk is missing; installing the Debian package wrk"; \
		if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive sh -c '$(WRK_INSTALL)'; \
		elif command -v sudo >/dev/null 2>&1; then sudo DEBIAN_FRONTEND=noninteractive sh -c '$(WRK_INSTALL)'; \
		else false; fi; } || { \
		echo "make bench: could not install wrk. Install it (Debian/Ubuntu: sudo apt-get install wrk) and retry." >&2; \
		exit 1; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Generated documentation: docs/reference/configuration.md from the settings models.
docs: install
	$(BIN)/python -m modelmux.config_reference

clean:
	rm -rf $(VENV) build *.egg-info $(TS_EXAMPLES)/node_modules $(TS_EXAMPLES)/dist tools/node_modules
