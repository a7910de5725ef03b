#!/usr/bin/env bash
# Install Debian's redis-server and redis-tools for the store tests (tests/stores), which start
# their own private servers on free loopback ports. Idempotent: does nothing when both
# `redis-server` and `redis-cli` are already on PATH. The package's own service is stopped:
# only test-owned servers run.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    echo "install-redis: redis already installed ($(redis-server --version | cut -d' ' -f1-3))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-redis: not root; cannot apt-get install redis-server (Redis tests fail under CI)" >&2
    exit 0
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools
# Debian starts the packaged service on 6379 where it can; the tests never use it.
if command -v service >/dev/null 2>&1; then
    service redis-server stop >/dev/null 2>&1 || true
fi
echo "install-redis: installed $(command -v redis-server)"
