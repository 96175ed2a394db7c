# Quick start: `make run` serves on http://127.0.0.1:8000 (embedded chDB), `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export COLLECTOR_CONFIG ?= config/demo.toml

.PHONY: run test beacon query bench fuzz clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/collector serve

test: $(STAMP)
	scripts/test-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

beacon:
	curl -sS -i -X POST http://127.0.0.1:8000/api/event \
	  -H 'Content-Type: text/plain' \
	  -H 'User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36' \
	  -H 'X-Forwarded-For: 81.2.69.142' \
	  -d '{"n":"pageview","u":"https://example.org/plans?utm_source=news&utm_medium=email","d":"example.org","r":"https://www.google.com/search?q=x"}'

query: $(STAMP)
	$(BIN)/collector query 'SELECT ts, name, path, country, region, isp, browser, os, device, referrer_host, utm_source FROM events ORDER BY ts DESC LIMIT 10'

# longer fuzzing: FUZZ_SCALE multiplies examples (hypothesis, schemathesis) and atheris seconds (12 s each)
FUZZ_SCALE ?= 25
fuzz: $(STAMP)
	FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/python -m pytest -q tests/fuzz tests/collector/test_bad_input.py $(PYTEST_ARGS)

bench: $(STAMP)
	scripts/bench-deps.sh $(BIN)/python
	$(BIN)/python -m loadtests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data
