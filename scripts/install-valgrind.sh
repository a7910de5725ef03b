#!/usr/bin/env bash
# Install Debian's valgrind for the performance gate (`make bench-check`, benchmarks/gate.py),
# which counts instructions with callgrind. Idempotent: does nothing when `valgrind` is on PATH.
set -euo pipefail

if command -v valgrind >/dev/null 2>&1; then
    echo "install-valgrind: valgrind already installed ($(valgrind --version))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-valgrind: not root; cannot apt-get install valgrind (make bench-check fails)" >&2
    exit 0
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind
echo "install-valgrind: installed $(command -v valgrind)"
