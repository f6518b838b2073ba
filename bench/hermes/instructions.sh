#!/usr/bin/env bash
# Instructions per exchange message, counted by valgrind's callgrind
# (repeatable on a loaded, shared machine, unlike CPU time), for
# hermes.BenchmarkExchange on SQLite (synchronous=FULL): the verify-only
# baseline (both consumer signature recoveries), the in-process accept
# path ("service") and the HTTP accept path ("http": client and server in
# one process, JSON both ways over loopback TCP). Prints instructions per
# message and the ratios to verify-only, from the same messages.
#
# Whole-process counts of four runs of the same binary, subtracted:
#   A = setup + verify        (MYST_BENCH_VERIFY_ROUNDS=1, no sub-benchmark)
#   B = setup + 2 x verify    (MYST_BENCH_VERIFY_ROUNDS=2)
#   S = A + service,  H = A + http
#   verify = B - A, service = S - A, http = H - A
#
#   bash bench/hermes/instructions.sh               # 2,000 messages (-test.short)
#   MSGS_FULL=1 bash bench/hermes/instructions.sh   # 20,000 (~10x slower)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go test -c -o "$out/hermes.test" ./hermes/
short=-test.short
msgs=2000
if [ -n "${MSGS_FULL:-}" ]; then short=; msgs=20000; fi
# run NAME ROUNDS BENCH: whole-process instruction count. Go's
# asynchronous preemption signals trip callgrind, so they are off.
run() {
	(cd "$out" && MYST_BENCH_VERIFY_ROUNDS=$2 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind \
		--callgrind-out-file="$out/$1.cg" ./hermes.test -test.run '^$' -test.bench "$3" \
		-test.benchtime 1x $short >"$out/$1.log" 2>&1) || { cat "$out/$1.log" >&2; exit 1; }
	grep -q '^PASS' "$out/$1.log" || { cat "$out/$1.log" >&2; exit 1; }
	sed -n 's/^summary: //p' "$out/$1.cg"
}
a=$(run a 1 'Exchange/none$')
b=$(run b 2 'Exchange/none$')
s=$(run s 1 'Exchange/sqlite/service$')
h=$(run h 1 'Exchange/sqlite/http$')
awk -v a="$a" -v b="$b" -v s="$s" -v h="$h" -v n="$msgs" 'BEGIN {
	v = b - a; sv = s - a; hv = h - a
	printf "messages: %d (instructions: A=%.0f B=%.0f S=%.0f H=%.0f)\n", n, a, b, s, h
	printf "verify-only: %8.0f instructions/msg\n", v/n
	printf "service:     %8.0f instructions/msg  %.2fx verify-only\n", sv/n, sv/v
	printf "http:        %8.0f instructions/msg  %.2fx verify-only\n", hv/n, hv/v
}'
