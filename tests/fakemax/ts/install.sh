#!/bin/sh
# Installs the official MAX TypeScript client (@maxhub/max-bot-api, pinned in package-lock.json)
# for tests/fakemax/test_ts_client.py. Idempotent: does nothing when node_modules already holds
# exactly what the lock file names. CI: tests/fakemax/ts/install.sh
set -eu
cd "$(dirname "$0")"
if [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.maxgate-lock; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.maxgate-lock
