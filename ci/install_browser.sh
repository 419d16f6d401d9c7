#!/usr/bin/env bash
# Install a headless browser for tests/test_report_browser.py (Debian's chromium).
# Does nothing when one is already on PATH, when not root, or without apt-get: it says
# why and exits 0 (the browser tests then skip with a reason). Quiet and idempotent.
set -euo pipefail

for browser in chromium chromium-browser google-chrome; do
  if command -v "$browser" >/dev/null 2>&1; then
    echo "install_browser: $browser is already installed ($(command -v "$browser"))"
    exit 0
  fi
done
if [ "${EUID:-$(id -u)}" -ne 0 ]; then
  echo "install_browser: skipped, not root (install chromium to run the browser tests)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: skipped, no apt-get (install chromium to run the browser tests)"
  exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >"$log" 2>&1 &&
  apt-get install -y -qq --no-install-recommends chromium >>"$log" 2>&1; then
  echo "install_browser: installed $(chromium --version 2>/dev/null || echo chromium)" \
    "in $((SECONDS - start)) s"
else
  echo "install_browser: apt-get could not install chromium; the browser tests will skip:" >&2
  tail -n 20 "$log" >&2
fi
exit 0
