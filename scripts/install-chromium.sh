#!/usr/bin/env bash
# Install headless Chromium from Debian's packages for the browser tests (tests/browser).
# Idempotent: does nothing when a `chromium` binary is already on PATH.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: chromium already installed ($(command -v chromium))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: not root; cannot apt-get install chromium (browser tests will skip)" >&2
    exit 0
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
echo "install-chromium: installed $(command -v chromium)"
