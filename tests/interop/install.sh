#!/usr/bin/env bash
# Installs what the interop suites need (tests/interop/run.sh): Debian's chromium for the
# browser suite, the npm packages of node/ and spa/ from their lock files, and a Python venv
# with the pinned requirements. Run by .ci/run as root; idempotent, and quick when everything
# is already in place.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
    echo "interop: installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# npm ci wipes node_modules and reinstalls; skip it when the lock file has not changed since
# the last install (npm writes node_modules/.package-lock.json as a copy of what it installed).
for dir in node spa; do
    if [ -f "$dir/node_modules/.package-lock.json" ] \
        && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
        continue
    fi
    echo "interop: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

# node-oidc-provider for tests/it (scripts/test.sh installs it as well).
bash ../upstream/install.sh

venv=python/.venv
stamp="$venv/.requirements.installed"
if [ ! -x "$venv/bin/python" ]; then
    echo "interop: creating $venv"
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || ! cmp -s python/requirements.txt "$stamp"; then
    echo "interop: pip install -r python/requirements.txt"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r python/requirements.txt
    cp python/requirements.txt "$stamp"
fi
echo "interop: dependencies ready"
