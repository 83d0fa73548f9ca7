# Palabre: `make run` serves the embedded default, `make test` runs the whole suite twice
# (SQLite + in-memory layer, then PostgreSQL + Redis). Both work from a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

TEST_DATABASE_URL := postgres://palabre:palabre@127.0.0.1:5432/palabre
TEST_REDIS_URL := redis://127.0.0.1:6379/0
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-x -k ballot"`.
PYTEST_ARGS ?=
# On CI a pass that hangs fails after this many seconds instead of eating CI's time (the
# whole process group, daphne children included, is killed). Not by default at a terminal,
# where timeout's own process group would keep Ctrl-C from reaching pytest.
PYTEST_TIMEOUT_S ?= $(if $(CI),900,)
PYTEST := $(if $(PYTEST_TIMEOUT_S),timeout --kill-after=30 $(PYTEST_TIMEOUT_S) )$(BIN)/pytest \
	-p no:cacheprovider --durations=10
# Tests run against a known configuration, whatever the developer's shell exports.
CLEAN_ENV := env -u DJANGO_ENV -u DATABASE_URL -u REDIS_URL -u SECRET_KEY -u DEBUG \
	-u ALLOWED_HOSTS -u CSRF_TRUSTED_ORIGINS -u PALABRE_MASTER_KEYS -u PALABRE_SEALING_KEYS \
	-u PALABRE_DATA_DIR -u PALABRE_CHANNEL_PREFIX

.PHONY: help venv messages makemessages services run test test-embedded test-postgres test-tools \
	lint bench chaos audit clean distclean

help:
	@echo "make run     create .venv, migrate, create the demo mediation, serve on http://$(HOST):$(PORT)"
	@echo "make test    ruff, then the suite on SQLite and on PostgreSQL + Redis (both started here)"
	@echo "make lint | bench | chaos | services | messages | makemessages | clean | distclean"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The pip that venv bundles (23.2) has a known vulnerability (make audit): a fixed one first.
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade 'pip>=23.3'
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Compiles locale/*/LC_MESSAGES/*.po into the git-ignored .mo files.
messages: venv
	scripts/ensure-packages.sh msgfmt:gettext
	$(BIN)/django-admin compilemessages --ignore='.venv' --ignore='var' --ignore='node_modules'

# Refreshes the fr and en catalogues from the code (then translate the new fr entries).
makemessages: venv
	scripts/ensure-packages.sh msgfmt:gettext
	$(BIN)/django-admin makemessages --locale=fr --locale=en --no-obsolete --no-location \
		--ignore='.venv/*' --ignore='var/*' --ignore='tests/*' --ignore='bench/*'
	@if [[ -n $$(find static -name '*.js' -print -quit 2>/dev/null) ]]; then \
		$(BIN)/django-admin makemessages --domain=djangojs --locale=fr --locale=en \
			--no-obsolete --no-location --ignore='.venv/*' --ignore='var/*' --ignore='tests/*' \
			--ignore='bench/*' --ignore='node_modules/*'; \
	fi

services:
	scripts/services.sh

run: venv messages
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo
	@echo "==> Palabre on http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	exec $(BIN)/daphne -b $(HOST) -p $(PORT) project.asgi:application

test: venv messages services lint
	@$(MAKE) --no-print-directory test-embedded
	@$(MAKE) --no-print-directory test-postgres
	@$(MAKE) --no-print-directory audit || { rc=$$?; [[ $$rc -eq 2 && -z "$${PALABRE_AUDIT_REQUIRED:-}" ]] || exit $$rc; \
		echo "==> make test: the dependency audit could NOT run (see above); PALABRE_AUDIT_REQUIRED=1 makes that fail" >&2; }
	@echo "==> make test: ruff and both passes succeeded"

# pytest exits 5 when it collected no test: a suite that ran nothing has not passed.
FAILED = { rc=$$?; echo "==> $(1) FAILED (exit $$rc$$( [[ $$rc -eq 5 ]] && echo ': no test collected'; [[ $$rc -eq 124 ]] && echo ': timed out'))" >&2; exit $$rc; }

# The record of agreement's tests read the PDF back with poppler's pdftotext (issue 10).
test-tools:
	scripts/ensure-packages.sh pdftotext:poppler-utils

# Each pass gets its own fresh data folder, so tests never touch the developer's var/.
test-embedded: venv test-tools
	@echo
	@echo "==> pass 1/2: embedded (SQLite, in-memory channel layer), -m 'not postgres'"
	@data=$$(mktemp -d -t palabre-test-embedded.XXXXXX); trap 'rm -rf "$$data"' EXIT; \
	start=$$SECONDS; \
	$(CLEAN_ENV) PALABRE_DATA_DIR="$$data" $(PYTEST) -m "not postgres" $(PYTEST_ARGS) \
		|| $(call FAILED,pass 1/2 (embedded)); \
	echo "==> pass 1/2 (embedded) passed in $$((SECONDS - start))s"

test-postgres: venv services test-tools
	@echo
	@echo "==> pass 2/2: PostgreSQL + Redis ($(TEST_DATABASE_URL), $(TEST_REDIS_URL)), all tests"
	@data=$$(mktemp -d -t palabre-test-postgres.XXXXXX); trap 'rm -rf "$$data"' EXIT; \
	start=$$SECONDS; \
	$(CLEAN_ENV) PALABRE_DATA_DIR="$$data" DATABASE_URL=$(TEST_DATABASE_URL) \
		REDIS_URL=$(TEST_REDIS_URL) PALABRE_CHANNEL_PREFIX="palabre-test-$$$$" \
		$(PYTEST) $(PYTEST_ARGS) \
		|| $(call FAILED,pass 2/2 (PostgreSQL + Redis)); \
	echo "==> pass 2/2 (PostgreSQL + Redis) passed in $$((SECONDS - start))s"

lint: venv
	$(BIN)/ruff check .

bench: venv messages services
	$(BIN)/python bench/run.py

# The reliability campaigns (RELIABILITY.md) at full size: PALABRE_CHAOS=long turns each
# `chaos` test from its bounded `make test` size to its long one (100,000 fuzzed frames,
# the 10-minute soak of 2,000 sockets, ...). `make test` runs the same tests, bounded.
# One campaign only: `make chaos PYTEST_ARGS="-k fuzz_campaign"` (the fuzz spreads over one
# pytest process per core; PALABRE_FUZZ_FRAMES, PALABRE_FUZZ_WORKERS).
chaos: venv messages services
	@data=$$(mktemp -d -t palabre-chaos.XXXXXX); trap 'rm -rf "$$data"' EXIT; \
	$(CLEAN_ENV) PALABRE_DATA_DIR="$$data" DATABASE_URL=$(TEST_DATABASE_URL) \
		REDIS_URL=$(TEST_REDIS_URL) PALABRE_CHANNEL_PREFIX="palabre-chaos-$$$$" PALABRE_CHAOS=long \
		$(BIN)/pytest -p no:cacheprovider --durations=20 tests -m chaos $(PYTEST_ARGS)

# Dependency audit (pip-audit over OSV): live api.osv.dev when reachable, else the committed
# snapshot of the PyPA advisory database (security/advisories/) through a local OSV endpoint;
# it prints which, and the snapshot's date. A known vulnerability fails it (exit 1), and so
# `make test`; an audit that could not be done (exit 2) fails it too, which `make test`
# reports loudly without failing unless PALABRE_AUDIT_REQUIRED=1.
audit: venv
	@scripts/audit.sh

# Test leftovers and caches; keeps .venv and the embedded data (var/: database and keys).
clean:
	rm -rf var/test-palabre.sqlite3* var/staticfiles test-artifacts .pytest_cache .ruff_cache \
		.hypothesis
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# Back to a fresh clone: also the virtualenv and the embedded database and keys.
distclean: clean
	rm -rf $(VENV) var *.egg-info
