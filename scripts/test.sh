#!/usr/bin/env bash
# The whole test suite: lint, generated-code check, then every Go test with
# the race detector. Starts a throwaway PostgreSQL (when this machine can)
# so the hermes store suite also runs against PostgreSQL; tests that need
# root or network namespaces skip with a reason when they can't run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/lint.sh
bash scripts/generate-check.sh

if [ -z "${MYST_TEST_POSTGRES_DSN:-}" ] && [ -x scripts/postgres-test.sh ]; then
	if dsn_line=$(bash scripts/postgres-test.sh 2>/tmp/openmyst-postgres.log); then
		eval "$dsn_line"
		export MYST_TEST_POSTGRES_DSN
	else
		echo "note: PostgreSQL not started (see /tmp/openmyst-postgres.log); PostgreSQL store tests will skip" >&2
	fi
fi

# -p 2: two packages at a time on the 2-core CI machine.
go test -race -count=1 -p 2 -timeout 20m ./...
