#!/usr/bin/env bash
# The embedded default: SQLite for the app and for Dagster, the sandbox SMTP server, dagster dev.
# Re-running is safe: migrations are idempotent and re-importing updates the demo mailboxes.
# `scripts/demo.sh prepare` stops after the import (the tests run it that way).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/.demo/dagster_home}
# The Dagster settings every deployment runs with.
set -a; . deploy/dagster.env; set +a
# Demo-only key for the demo's fake passwords; a deployment sets its own secret.
export WARMUP_SECRET_KEY=${WARMUP_SECRET_KEY:-demo-only-secret-key-not-for-production}
# The demo's clock runs 12 times faster from 06:00 UTC today, so a day of warmup mail plays
# out in about 80 minutes (WARMUP_CLOCK_SPEED=1 for real time). The microseconds make every
# start a new anchor, so a restart replays the rest of the day instead of resuming it.
export WARMUP_CLOCK_SPEED=${WARMUP_CLOCK_SPEED:-12}
if [ "$WARMUP_CLOCK_SPEED" != "1" ]; then
  export WARMUP_CLOCK_START=${WARMUP_CLOCK_START:-$(date -u +%F)T06:00:00.$(printf %06d $(($(date +%s) % 1000000)))+00:00}
fi
# The fill rate's daily partitions start today; at 12x the clock passes real time within
# hours, so a week of dates ahead are partitions too (see WARMUP_FILL_RATE_DAYS_AHEAD).
export WARMUP_FILL_RATE_START_DATE=${WARMUP_FILL_RATE_START_DATE:-$(date -u +%F)}
if [ "$WARMUP_CLOCK_SPEED" != "1" ]; then
  export WARMUP_FILL_RATE_DAYS_AHEAD=${WARMUP_FILL_RATE_DAYS_AHEAD:-7}
fi
# WARMUP_SCHEDULER_INTERVAL_MS is left as it is (default 60 s). Intervals are clock time, so
# 60 s are 5 real seconds at 12x, as often as Dagster's sensor daemon evaluates sensors: a
# shorter interval would not make the dispatch sensor tick more often.
# Equal to deploy/dagster.embedded.yaml's sender limit: SQLite serves one writer at a time.
export WARMUP_WORKER_COUNT=${WARMUP_WORKER_COUNT:-2}
# Likewise deploy/dagster.embedded.yaml's engager limit.
export WARMUP_ENGAGE_RUN_COUNT=${WARMUP_ENGAGE_RUN_COUNT:-1}
SANDBOX_PORT=${WARMUP_SANDBOX_PORT:-2525}
DAGSTER_PORT=${DAGSTER_PORT:-3000}

mkdir -p "$DAGSTER_HOME"
cp deploy/dagster.embedded.yaml "$DAGSTER_HOME/dagster.yaml"
$BIN/warmup db upgrade
# The demo mailboxes send to the sandbox on the port it really listens on.
POOL="$DAGSTER_HOME/demo-mailboxes.csv"
$BIN/python -m warmup_dagster.demo --smtp-port "$SANDBOX_PORT" --out "$POOL"
$BIN/warmup mailboxes import "$POOL"
if [ "${1:-}" = prepare ]; then exit 0; fi

# The receiving side: the same Maildirs over IMAP (Dovecot) on the demo pool's IMAP port.
scripts/ensure_dovecot.sh
$BIN/warmup sandbox --port "$SANDBOX_PORT" --maildir "$DAGSTER_HOME/sandbox-mail" \
  --imap-port 1143 &
sandbox_pid=$!
trap 'kill "$sandbox_pid" 2>/dev/null || true' EXIT

echo "Dagster UI: http://127.0.0.1:$DAGSTER_PORT  (sandbox mail: $DAGSTER_HOME/sandbox-mail," \
  "IMAP on 127.0.0.1:1143)"
$BIN/dagster dev -w workspace.yaml -h 127.0.0.1 -p "$DAGSTER_PORT"
