#!/usr/bin/env bash
# Make sure Debian's Chromium and its WebDriver are installed: the UI check drives
# /usr/bin/chromium headless through /usr/bin/chromedriver (selenium). If either is missing,
# install Debian's `chromium` and `chromium-driver` packages (one version, so they match).
# Fails loudly when it cannot: the UI test never skips for want of them.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
echo "Chromium or chromedriver is missing: installing Debian's chromium and chromium-driver"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null; }; then
  echo "could not install Debian's chromium and chromium-driver (apt-get failed): install" \
    "them, so that /usr/bin/chromium and /usr/bin/chromedriver exist" >&2
  exit 1
fi
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
  if [ ! -x "$tool" ]; then
    echo "Debian's chromium packages are installed but $tool is not there" >&2
    exit 1
  fi
done
