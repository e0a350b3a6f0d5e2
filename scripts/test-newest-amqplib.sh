#!/usr/bin/env bash
# The fast path reads amqplib's internals, and users may install any amqplib 2.x. This runs the unit
# tests and the fast-path tests against the newest amqplib 2.x the registry serves, in a temporary
# copy of the project (the lockfile and node_modules here stay as they are), so a release that turns
# the fast path off or changes its internals fails here instead of degrading silently.
set -euo pipefail
cd "$(dirname "$0")/.."

copy="$(mktemp -d)"
trap 'rm -rf "$copy"' EXIT
tar --exclude=./node_modules --exclude=./.git --exclude=./dist --exclude=./bench/node_modules -cf - . | tar -xf - -C "$copy"
cp -a node_modules "$copy/"
cd "$copy"
npm install --no-save --no-audit --no-fund --loglevel=error "amqplib@2" >/dev/null
version="$(node -p "require('./node_modules/amqplib/package.json').version")"
echo "newest-amqplib job: testing with amqplib ${version} (locked: $(node -p "require('$OLDPWD/node_modules/amqplib/package.json').version"))"
npm run build --silent
node --import tsx --import ./test/helpers/setup.ts --test --test-concurrency=1 --test-timeout=300000 \
  test/unit/*.test.ts test/integration/fast-path.test.ts test/integration/publisher-frame-order.test.ts
echo "newest-amqplib job: amqplib ${version} passed"
