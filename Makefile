# The two commands of the README: `make run` and `make test`. Both set up .venv first.
# `make docs` builds the documentation site into site/ (offline); `make docs-shots` remakes its
# screenshots from the real dashboard in headless Chromium (docs/shots.py).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= localhost
PORT   ?= 8501

.PHONY: run test install demo-data bench docs docs-shots clean-venv

# pip compiles every installed file to bytecode one at a time; compiling them afterwards on all
# cores writes the same .pyc files in less time (118 s -> 59 + 27 s on 2 cores). Like pip, it
# passes over the few files this Python cannot compile (torch ships some for Python 3.12 only).
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt -e .
	$(BIN)/python -c "import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=2, workers=0)" $(VENV)/lib
	touch $(STAMP)

install: $(STAMP)

# Writes the synthetic demo set only when data/raw/annotations holds no XML, then serves the app.
# On a HOST other than localhost/127.0.0.1/::1 it refuses to start without PEDSENSE_PASSWORD (or a
# `password` in .streamlit/secrets.toml) or PEDSENSE_NO_AUTH=1 (ui/auth.py has the rule).
# `pedsense serve` runs `streamlit run app.py` and the queue's scheduler beside it, so queued runs
# start with no page open (pedsense/commands/serve.py).
run: $(STAMP)
	@$(BIN)/python -m ui.auth "$(HOST)"
	$(BIN)/pedsense demo-data --if-missing
	$(BIN)/pedsense serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

demo-data: $(STAMP)
	$(BIN)/pedsense demo-data

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-shots: $(STAMP)
	$(BIN)/python docs/shots.py

clean-venv:
	rm -rf $(VENV)
