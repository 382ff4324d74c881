# Samizdat: `make run` serves the app and runs the scheduler; `make test` installs and tests.
# Both work on a fresh machine (Python 3.11; root for apt-get when node/npm are missing).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
JSIPFS := tests/ipfs/node_modules/.bin/jsipfs

.PHONY: run test bench install install-dev services clean chromium openssl translations messages

$(VENV)/.runtime: requirements.txt requirements-warcprox.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps -r requirements-warcprox.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime translations

# The reader pages' gettext catalogues, compiled from translations/<lang>/LC_MESSAGES/messages.po.
# The .mo files are build output (ignored by git); without one a language is served in English.
MO := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

translations: $(MO)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po | $(VENV)/.runtime
	$(VENV)/bin/pybabel compile --domain messages --directory translations --locale $*

# After changing reader-facing text: extract it again and merge it into each catalogue, then
# translate what is new (tests/archive/test_i18n.py fails until every message is translated).
messages: $(VENV)/.runtime
	$(VENV)/bin/pybabel extract --mapping-file babel.cfg --keyword lazy_gettext --no-location \
		--sort-output --project Samizdat --copyright-holder Samizdat \
		--output-file translations/messages.pot .
	$(VENV)/bin/pybabel update --input-file translations/messages.pot --output-dir translations \
		--no-fuzzy-matching --ignore-obsolete

install-dev: $(VENV)/.dev translations $(JSIPFS) chromium openssl

# Browser tests drive Debian's Chromium through Playwright (which cannot download its own here).
chromium:
	command -v chromium >/dev/null || scripts/apt-install.sh chromium

# The RFC 3161 tests run a real time-stamping authority: OpenSSL's `ts -reply` (tests/provenance/tsa.py).
openssl:
	command -v openssl >/dev/null || scripts/apt-install.sh openssl

# js-ipfs is the real IPFS daemon of the tests (Kubo cannot be installed here). `npm install`
# honours the committed lock; `npm ci` would refuse it (see tests/ipfs/README.md).
$(JSIPFS): tests/ipfs/package.json tests/ipfs/package-lock.json
	command -v npm >/dev/null || scripts/apt-install.sh nodejs npm
	cd tests/ipfs && npm install --no-audit --no-fund --loglevel=error
	touch $@

# PostgreSQL and Redis must be up for the tests; start the machine's own if they are installed.
services:
	scripts/ensure-postgres.sh
	scripts/ensure-redis.sh

run: install
	scripts/run.sh

# Two pytest-xdist workers, whole modules each (--dist loadfile): module-scoped fixtures and the
# rate-limit tests' Redis database stay on one worker; every session service is per worker.
TEST_WORKERS ?= 2

# --durations: the 25 slowest steps end every run's output, so the 20-minute budget is watched.
test: install-dev services
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

bench: install-dev
	command -v wrk >/dev/null || scripts/apt-install.sh wrk
	$(PY) -m bench

clean:
	rm -rf $(VENV) tests/ipfs/node_modules .pytest_cache
	rm -f translations/*/LC_MESSAGES/*.mo
