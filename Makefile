# The two commands of the README: `make run` and `make test`. Both set up .venv first.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= localhost
PORT   ?= 8501

.PHONY: run test install demo-data bench clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

install: $(STAMP)

# Writes the synthetic demo set only when data/raw/annotations holds no XML, then serves the app.
run: $(STAMP)
	$(BIN)/pedsense demo-data --if-missing
	$(BIN)/streamlit run app.py --server.address $(HOST) --server.port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

demo-data: $(STAMP)
	$(BIN)/pedsense demo-data

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
