#!/usr/bin/env bash
# The whole test suite: lint, generated-code check, then every Go test with
# the race detector. Starts a throwaway PostgreSQL (when this machine can)
# so the hermes store suite also runs against PostgreSQL. Tests that need
# root, network namespaces, /dev/net/tun, nft or PostgreSQL skip with a
# reason when they can't run, except with OPENMYST_REQUIRE_NETNS=1 (CI as
# root, see .ci/run), where they fail instead (internal/testenv).
# The exit status is go test's: any failing test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/lint.sh
bash scripts/generate-check.sh

# On CI (OPENMYST_REQUIRE_NETNS=1) a PostgreSQL that does not start fails
# the run: the PostgreSQL suites must run there, not skip.
# The cluster is this run's own (a fresh data directory unless MYST_PG_DIR
# names one) and is stopped and removed when the run ends, pass or fail.
if [ -z "${MYST_TEST_POSTGRES_DSN:-}" ] && [ -x scripts/postgres-test.sh ]; then
	if [ -z "${MYST_PG_DIR:-}" ]; then
		MYST_PG_DIR=$(mktemp -d /tmp/openmyst-pg.XXXXXX)
		export MYST_PG_DIR
		if [ "$(id -u)" = 0 ]; then chown postgres: "$MYST_PG_DIR" 2>/dev/null || true; fi
		trap 'bash scripts/postgres-test.sh stop 2>/dev/null; rm -rf "$MYST_PG_DIR"' EXIT
	fi
	if dsn_line=$(bash scripts/postgres-test.sh 2>/tmp/openmyst-postgres.log); then
		eval "$dsn_line"
		export MYST_TEST_POSTGRES_DSN
	elif [ "${OPENMYST_REQUIRE_NETNS:-}" = 1 ]; then
		echo "test.sh: PostgreSQL did not start and OPENMYST_REQUIRE_NETNS=1 forbids skipping its tests:" >&2
		cat /tmp/openmyst-postgres.log >&2
		exit 1
	else
		echo "note: PostgreSQL not started (see /tmp/openmyst-postgres.log); PostgreSQL store tests will skip" >&2
	fi
fi

# -p 2: two packages at a time on the 2-core CI machine. Any failure fails
# the run: a flake is a bug to fix, never retried into a pass.
# OPENMYST_TEST_COUNT=3 runs every test three times (to flush flakes; any
# failed run fails the whole run), with a timeout that grows with it.
count="${OPENMYST_TEST_COUNT:-1}"
case "$count" in
''|*[!0-9]*|0) echo "test.sh: OPENMYST_TEST_COUNT must be a whole number ≥ 1, not '$count'" >&2; exit 2 ;;
esac
go test -race -count="$count" -p 2 -timeout "$((20 * count))m" ./...
