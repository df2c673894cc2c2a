#!/usr/bin/env bash
# Installs node-oidc-provider (npm `oidc-provider`, pinned in package-lock.json), which the
# integration tests run as a real upstream identity provider (tests/it/upstream/node.rs).
# Run by scripts/test.sh before the tests and by tests/interop/install.sh; quick when the
# packages are current (npm writes node_modules/.package-lock.json as a copy of what it
# installed, newer than the lock file until the lock file changes).
set -euo pipefail
cd "$(dirname "$0")"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || {
    echo "error: npm is needed for tests/upstream (node-oidc-provider as a test upstream)" >&2
    exit 1
}
echo "tests/upstream: npm ci"
npm ci --no-audit --no-fund --loglevel=error
