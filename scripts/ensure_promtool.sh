#!/usr/bin/env bash
# Make sure `promtool` is on the PATH: the metrics test checks the exposition with it.
# If it is missing, install Debian's `prometheus` package, which provides /usr/bin/promtool.
# Fails loudly when it cannot: the test never skips for want of it.
set -euo pipefail

if command -v promtool >/dev/null; then
  exit 0
fi
echo "promtool is missing: installing Debian's prometheus package"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends prometheus >/dev/null; }; then
  echo "could not install Debian's prometheus package (apt-get failed): install it, or put" \
    "promtool on the PATH" >&2
  exit 1
fi
if ! command -v promtool >/dev/null; then
  echo "Debian's prometheus package is installed but promtool is not on the PATH" >&2
  exit 1
fi
