# orgchat developer entry points. The stack itself lives in scripts/stack.sh.
#
#   make up       start PostgreSQL, Redis, ejabberd, the SMTP sink and the
#                 component on 127.0.0.1 (installs what is missing)
#   make cluster  make up, then a second ejabberd node joined to the first, with
#                 a component process of its own (docs/operations.md, "Scale")
#   make cluster-down  node 2 leaves the cluster and stops (make down does too)
#   make test     make cluster, then ruff, mypy and pytest; what CI runs (.ci/run)
#   make bench    make up, then the benchmark (bench/README.md); BENCH_ARGS=--quick;
#                 BENCH_CLUSTER=1: make cluster, and path C across the two nodes
#   make faults   make up, then the fault suite (bench/faults.py); FAULTS_ARGS=--only kill9
#   make messages the translators' catalogues (component/locale/) brought up to
#                 date with the texts of the code (docs/architecture.md, "Languages")
#   make lock     requirements/lock.txt again, from the newest releases setup.cfg
#                 and requirements/ allow, in a throwaway virtualenv
#   make status | logs | lint | down | clean

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STACK  := scripts/stack.sh
# Standalone scripts are type-checked too; mypy's configured packages are the
# application (pyproject.toml).
SCRIPTS_PY := scripts/smtp_sink.py scripts/demo_accounts.py scripts/dev_cert.py

.PHONY: help up down cluster cluster-down test bench faults status logs lint messages lock clean

help:
	@echo "make up      start the development stack (installs missing packages)"
	@echo "make cluster make up, then ejabberd node 2 joined to node 1, with its own component"
	@echo "make cluster-down  node 2 leaves the cluster and stops"
	@echo "make test    make cluster, then ruff, mypy and pytest (what CI runs)"
	@echo "make bench   make up, then the benchmark (BENCH_ARGS=--quick for a short run)"
	@echo "make faults  make up, then load with each fault injected in turn (FAULTS_ARGS=--only kill9)"
	@echo "make status  one line per service"
	@echo "make logs    follow .run/log/*.log"
	@echo "make lint    ruff + mypy (+ shellcheck when installed)"
	@echo "make messages  add the code's new texts to the catalogues (component/locale/)"
	@echo "make lock    regenerate requirements/lock.txt (newest allowed releases)"
	@echo "make down    stop what the stack started"
	@echo "make clean   make down, then remove .run/"

up:
	@$(STACK) up

cluster:
	@$(STACK) up
	@$(STACK) cluster-up

cluster-down:
	@$(STACK) cluster-down

down:
	@$(STACK) down

status:
	@$(STACK) status

logs:
	@compgen -G '.run/log/*.log' >/dev/null || { echo "no logs yet: run make up"; exit 1; }
	tail -n 20 -F .run/log/*.log

lint:
	@$(STACK) venv
	@echo "==> ruff check"
	@$(VENV)/bin/ruff check .
	@echo "==> mypy"
	@$(VENV)/bin/mypy
	@$(VENV)/bin/mypy $(SCRIPTS_PY)
	@if command -v shellcheck >/dev/null; then echo "==> shellcheck"; shellcheck $(STACK) .ci/run; fi

# Texts are marked _() and n_() (component/i18n.py), N_() in extensions/. New ones
# are added to each catalogue untranslated; texts the code no longer uses are dropped.
POT := .run/orgchat.pot
messages:
	@$(STACK) venv
	@mkdir -p .run
	$(VENV)/bin/pybabel extract --no-default-keywords -k _ -k n_:1,2 -k N_ --sort-by-file \
		--add-location=file --project=orgchat -o $(POT) component extensions
	$(VENV)/bin/pybabel update -i $(POT) -d component/locale -D orgchat \
		--ignore-obsolete --no-fuzzy-matching

# The lock's header comment is kept; the packages are what a clean virtualenv
# gets, installed as scripts/stack.sh installs .venv (without the lock).
lock:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; set -e; \
	python3 -m venv "$$tmp/venv"; \
	pip=(env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$$tmp/venv/bin/python" -m pip install -q \
		--disable-pip-version-check); \
	"$${pip[@]}" -e '.[dev]'; \
	"$${pip[@]}" -r requirements/aioxmpp.txt; \
	"$${pip[@]}" --no-deps -r requirements/aioxmpp-nodeps.txt; \
	{ awk '/^#/ { print; next } { exit }' requirements/lock.txt; \
	  "$$tmp/venv/bin/python" -m pip freeze --exclude-editable; } >"$$tmp/lock.txt"; \
	mv "$$tmp/lock.txt" requirements/lock.txt; \
	echo "requirements/lock.txt: $$(grep -vc '^#' requirements/lock.txt) packages; git diff shows what changed"

# Every check runs even if an earlier one fails, so that one CI run reports
# them all; pytest goes last so that its summary is the last line printed.
# The cluster's tests (tests/integration/test_cluster.py) need node 2.
test:
	@$(STACK) up
	@$(STACK) cluster-up
	@failed=(); \
	echo; echo "==> ruff check"; \
	$(VENV)/bin/ruff check . || failed+=(ruff); \
	echo; echo "==> mypy"; \
	{ $(VENV)/bin/mypy && $(VENV)/bin/mypy $(SCRIPTS_PY); } || failed+=(mypy); \
	echo; echo "==> pytest"; \
	$(PY) -m pytest -q tests/; rc=$$?; \
	if ((rc == 5)); then echo "pytest collected no tests: that is a failure here"; fi; \
	((rc == 0)) || failed+=(pytest); \
	if (($${#failed[@]})); then echo; echo "make test: FAILED: $${failed[*]}"; exit 1; fi

bench:
	@$(STACK) up
	@if [[ -n "$(BENCH_CLUSTER)" ]]; then $(STACK) cluster-up && $(PY) -m bench.run --layout cluster $(BENCH_ARGS); \
	else $(PY) -m bench.run $(BENCH_ARGS); fi

faults:
	@$(STACK) up
	@$(PY) -m bench.faults $(FAULTS_ARGS)

clean: down
	rm -rf .run
