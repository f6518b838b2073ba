#!/usr/bin/env bash
# Runs the Go benchmarks (each prints its own baseline ratio) and, as root,
# the tunnel benchmark between network namespaces. Results are recorded by
# hand in docs/benchmarks.md together with the command that made them.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchtime "${BENCHTIME:-1x}" ./...
if [ "$(id -u)" = 0 ] && [ -x bench/tunnel/run.sh ]; then
	bench/tunnel/run.sh
else
	echo "bench/tunnel skipped: needs root for network namespaces" >&2
fi
