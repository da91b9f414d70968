#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use answers on 127.0.0.1:5432.
# If it doesn't: install Debian's server if missing, create and start the packaged cluster,
# and let loopback connections in without a password (this is a throwaway test server).
# Set WARMUP_TEST_POSTGRES_URL to use another server instead; then this only checks it.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if [ -n "${WARMUP_TEST_POSTGRES_URL:-}" ]; then
  echo "using WARMUP_TEST_POSTGRES_URL; not starting a local server"
  exit 0
fi
if command -v pg_isready >/dev/null && ready; then
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null; then
  echo "PostgreSQL is not installed: installing Debian's postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$version" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  pg_createcluster "$version" main >/dev/null
fi
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q 'warmup-dagster tests' "$hba"; then
  # First match wins in pg_hba.conf: put the trust lines on top.
  sed -i '1i host all all 127.0.0.1/32 trust # warmup-dagster tests\nhost all all ::1/128 trust # warmup-dagster tests' "$hba"
fi
echo "starting PostgreSQL $version"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 1 30); do
  ready && exit 0
  sleep 1
done
echo "PostgreSQL did not become ready on 127.0.0.1:5432" >&2
exit 1
