#!/usr/bin/env bash
# Birthday punch benchmark: in the NAT lab (network namespaces, root), RUNS
# sessions for each pair of a symmetric and an endpoint-independent side
# (symmetric ↔ masquerade, symmetric ↔ double NAT, both directions): how
# many got the punched direct path, and the time from the offers to a
# selected path (p50, max), as a ratio of an endpoint-independent pair's
# ICE direct path measured in the same run.
#
#   sudo bench/reach/punch.sh [RUNS]      (default 10 sessions per pair)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-10}"
ICE_LAB_PUNCH_RUNS="$runs" OPENMYST_REQUIRE_NETNS=1 go test -run '^$' -bench '^BenchmarkLabPunch$' -benchtime 1x -timeout 30m ./nat/ice 2>&1 |
	awk '/sessions per pair|pair +expected|^ +(ice-eim-eim|sym-eim|eim-sym|sym-dnat|dnat-sym) |^ok|FAIL/' |
	tail -n 8
