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
#   B = setup + 3 x verify    (MYST_BENCH_VERIFY_ROUNDS=3)
#   S = A + service,  H = A + http
#   verify = (B - A) / 2, service = S - A, http = H - A
# (two extra rounds halve the setup's run-to-run spread in verify-only)
# The http row's process also runs the benchmark's HTTP client, so it is an
# upper bound. The hermes alone is the "httpproc" row's child process (the
# hermes HTTP API and store as `myst hermes` runs them), counted under
# callgrind while the load generator runs natively, minus a child that
# starts and stops without serving anything:
#   P = child setup + serving,  I = child setup
#   hermes = P - I
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
# vg OUT: the callgrind command line a child runs under.
vg() { echo "valgrind --tool=callgrind --callgrind-out-file=$1"; }
# proc: the httpproc row with only the hermes child under callgrind.
proc() {
	(cd "$out" && GODEBUG=asyncpreemptoff=1 MYST_BENCH_HERMES_WRAP="$(vg "$out/p.cg")" ./hermes.test -test.run '^$' \
		-test.bench 'Exchange/sqlite/httpproc$' -test.benchtime 1x $short >"$out/p.log" 2>&1) || { cat "$out/p.log" >&2; exit 1; }
	grep -q '^PASS' "$out/p.log" || { cat "$out/p.log" >&2; exit 1; }
	sed -n 's/^summary: //p' "$out/p.cg"
}
# idle: the same child started and stopped (stdin closed) without a request.
idle() {
	mkfifo "$out/stdin"
	(cd "$out" && GODEBUG=asyncpreemptoff=1 HERMES_TEST_CHILD_DB="$out/idle.db" HERMES_TEST_CHILD_STOP_ON_EOF=1 \
		$(vg "$out/i.cg") ./hermes.test -test.run '^$' <"$out/stdin" >"$out/i.log" 2>&1) &
	local pid=$!
	exec 3>"$out/stdin"
	for _ in $(seq 600); do grep -q '^ADDR ' "$out/i.log" 2>/dev/null && break; sleep 0.2; done
	exec 3>&-
	wait "$pid" || { cat "$out/i.log" >&2; exit 1; }
	sed -n 's/^summary: //p' "$out/i.cg"
}
a=$(run a 1 'Exchange/none$')
b=$(run b 3 'Exchange/none$')
s=$(run s 1 'Exchange/sqlite/service$')
h=$(run h 1 'Exchange/sqlite/http$')
p=$(proc)
i=$(idle)
awk -v a="$a" -v b="$b" -v s="$s" -v h="$h" -v p="$p" -v i="$i" -v n="$msgs" 'BEGIN {
	v = (b - a) / 2; sv = s - a; hv = h - a; pv = p - i
	printf "messages: %d (instructions: A=%.0f B=%.0f S=%.0f H=%.0f P=%.0f I=%.0f)\n", n, a, b, s, h, p, i
	printf "verify-only:        %8.0f instructions/msg\n", v/n
	printf "service:            %8.0f instructions/msg  %.2fx verify-only\n", sv/n, sv/v
	printf "http, client too:   %8.0f instructions/msg  %.2fx verify-only\n", hv/n, hv/v
	printf "http, hermes alone: %8.0f instructions/msg  %.2fx verify-only\n", pv/n, pv/v
}'
