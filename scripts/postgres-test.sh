#!/usr/bin/env bash
# Starts (idempotently) a throwaway PostgreSQL cluster on 127.0.0.1 for the
# hermes store tests and prints ONE line on stdout:
#   export MYST_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:55432/myst_test?sslmode=disable'
# so callers can `eval "$(scripts/postgres-test.sh)"`. Everything else goes
# to stderr. Installs the Debian postgresql package if it is missing (root).
#
#   scripts/postgres-test.sh        start (or reuse) and print the DSN
#   scripts/postgres-test.sh stop   stop the cluster (data dir is kept)
#
# Environment: MYST_PG_DIR (default /tmp/openmyst-pg), MYST_PG_PORT (55432).
set -euo pipefail

dir="${MYST_PG_DIR:-/tmp/openmyst-pg}"
port="${MYST_PG_PORT:-55432}"
db=myst_test

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "postgresql is not installed and we are not root: apt-get install postgresql" >&2
		exit 1
	fi
	echo "installing postgresql (apt)..." >&2
	# Wait for other apt runs instead of failing on the lock.
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y postgresql >&2
	bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

# PostgreSQL refuses to run as root: run it as the postgres user when root.
run() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

if [ "${1:-}" = stop ]; then
	run "$bindir/pg_ctl" -D "$dir" -m fast stop >&2 || true
	exit 0
fi

if [ ! -f "$dir/PG_VERSION" ]; then
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
	chmod 700 "$dir"
	run "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >&2
fi

if ! run "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
	run "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c synchronous_commit=on" >&2
fi

if ! run "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
	run "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db" >&2
fi

echo "export MYST_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$port/$db?sslmode=disable'"
