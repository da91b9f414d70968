#!/usr/bin/env bash
# Make sure `dovecot` (Debian's dovecot-imapd) is installed: the engagement tests run it in a
# temporary folder on loopback ports (warmup_dagster/testing/imap_server.py); nothing here
# starts or configures the system's own Dovecot. Fails loudly when it cannot: the tests never
# skip for want of it.
set -euo pipefail

if command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/imap ]; then
  exit 0
fi
echo "dovecot is missing: installing Debian's dovecot-imapd package"
# policy-rc.d (where present) keeps the package from starting the system's server.
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends dovecot-imapd >/dev/null; }; then
  echo "could not install Debian's dovecot-imapd package (apt-get failed): install it" >&2
  exit 1
fi
if ! command -v dovecot >/dev/null; then
  echo "Debian's dovecot-imapd package is installed but dovecot is not on the PATH" >&2
  exit 1
fi
