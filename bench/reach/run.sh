#!/usr/bin/env bash
# Reachability benchmark: in the NAT lab (network namespaces, root), one
# ICE + WireGuard session per kind of path — public, hole-punched,
# mapped (a symmetric consumer to a forwarded ICE port), double NAT,
# relayed over UDP, relayed over TCP — measuring connect → first byte
# and bulk throughput through the tunnel, each as a ratio of the
# public pair measured in the same run, and the relay's CPU per Gbit/s.
#
#   sudo bench/reach/run.sh [RUNS]      (default 5 sessions per pair)
#
# ICE_LAB_BENCH_BULK sets the bulk transfer size in bytes (default 32 MiB).
# The 20 ms one-way delay of the issue's method is tc netem where the
# kernel has it, else the NAT lab's delay lines (internal/natlab: frames
# pass through the test process, which also caps the throughput column).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
ICE_LAB_BENCH_RUNS="$runs" OPENMYST_REQUIRE_NETNS=1 go test -run '^$' -bench '^BenchmarkLabPaths$' -benchtime 1x -timeout 30m ./nat/ice 2>&1 |
	awk '/NO added delay|one-way delay|pair +path|^ +(public|punched|mapped|birthday|doublenat|relay-udp|relay-tcp) |relay CPU|^ok|FAIL/' |
	tail -n 10
