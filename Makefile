# make demo: the embedded default with the demo pool.   make test: the suite but the long fault
# runs, which are make test-faults.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-faults lint format bench bench-import bench-plan bench-send bench-day \
	bench-fresh bench-first-plan bench-fill bench-metrics bench-retention bench-domains bench-content \
	bench-engage bench-kills clean \
	ui-check

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	scripts/demo.sh

test: install
	scripts/ensure_postgres.sh
	scripts/ensure_promtool.sh
	scripts/ensure_chromium.sh
	scripts/ensure_dovecot.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m 'not daemon and not faults'
	# The daemon tests (scaled clocks) after the rest, two at a time: they mostly wait for their
	# clocks (a third of a core each); beside the whole suite they were starved of CPU.
	$(BIN)/python -m pytest -m 'daemon and not faults' -n 2

# The fault suite (docs/RELIABILITY.md), one test at a time: the long tests (marked `faults`: 30
# sender runs SIGKILLed while mail flows into Dovecot; a daemon killed with its runs mid-day and
# a new one started; their figures printed), then the quick fault tests that make test runs too
# (runs killed, outages of PostgreSQL, SMTP and Dovecot, plans at once). About five minutes.
FAULT_TESTS := warmup_dagster_tests/sending/test_killed_runs.py \
	warmup_dagster_tests/sending/test_outages.py warmup_dagster_tests/sending/test_reclaim.py \
	warmup_dagster_tests/engagement/test_killed_engagement.py \
	warmup_dagster_tests/engagement/test_imap_outage.py warmup_dagster_tests/test_clock.py
test-faults: install
	scripts/ensure_postgres.sh
	scripts/ensure_dovecot.sh
	$(BIN)/python -m pytest -m faults -n 0 -rA -p no:cacheprovider
	$(BIN)/python -m pytest -n 0 -p no:cacheprovider $(FAULT_TESTS)
	$(BIN)/python -m pytest -n 0 -p no:cacheprovider warmup_dagster_tests/planning \
		-k 'at_once or concurrent'

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: bench-import bench-plan bench-send bench-fresh bench-first-plan bench-day bench-fill \
	bench-metrics bench-retention bench-domains bench-content bench-engage

bench-import: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_import --rows 100000

bench-plan: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_plan --sizes 1000 10000 100000 --dagster

bench-send: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_send

# Plan 10,000 new mailboxes and send at once, with autovacuum off: about 2 minutes.
bench-fresh: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_fresh

# Import to every mailbox planned, through a running daemon, for 10,000 and 100,000 new
# mailboxes (the clock at real speed from 00:00 UTC: no window is open yet). About 12 minutes.
bench-first-plan: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_day --mailboxes 10000 --per-owner 100 --speed 1 --plan-only
	$(BIN)/python -m benchmarks.bench_day --mailboxes 100000 --per-owner 100 --speed 1 --plan-only

# A whole virtual day of 10,000 mailboxes through the daemon at 60x: about 30 real minutes.
bench-day: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_day --mailboxes 10000 --per-owner 100

# One local day of 1,000,000 sends: its fill rate and rule audit.
bench-fill: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_fill

# The domain checks of 10,000 domains against a local DNS server (no database).
bench-domains: install
	$(BIN)/python -m benchmarks.bench_domains --domains 10000

# 100,000 mailboxes and a day of 1,000,000 sends, then timed scrapes of `warmup metrics-server`
# (the timing takes /tmp/warmup-bench.lock exclusively itself, the setup does not).
bench-metrics: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_metrics

# 30 days of history at 100,000 mailboxes x 10 a day (30 M rows in warmup_jobs and in send_log):
# the claim, planning and fill-rate queries with and without it, and the prune. The history is
# written without the bench lock; the timed parts take /tmp/warmup-bench.lock exclusively.
bench-retention: install
	scripts/ensure_postgres.sh
	$(BIN)/python -m benchmarks.bench_retention

bench-content: install
	$(BIN)/python -m benchmarks.bench_content

# Engagement runs against Dovecot on this machine beside a raw imapclient loop (the setup is
# written without the bench lock; the timed part takes /tmp/warmup-bench.lock exclusively).
bench-engage: install
	scripts/ensure_postgres.sh
	scripts/ensure_dovecot.sh
	$(BIN)/python -m benchmarks.bench_engage

# Sender runs SIGKILLed at random moments (child processes), the look over IMAP on and off.
bench-kills: install
	scripts/ensure_postgres.sh
	scripts/ensure_dovecot.sh
	$(BIN)/python -m benchmarks.bench_kills

clean:
	rm -rf .demo .pytest_cache .ruff_cache

# The UI in headless Chromium on demo days: the send_plan partitions, the fill_rate plots and
# checks, the clicks that rerun the mailboxes that missed; screenshots into docs/images/.
# `make test` runs the same test (its screenshots go to a temporary folder).
ui-check: install
	scripts/ensure_chromium.sh
	$(BIN)/python -m pytest warmup_dagster_tests/ui -x -q --ui-screenshots docs/images
