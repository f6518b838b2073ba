#!/usr/bin/env bash
# bench/tunnel/run.sh: TCP bulk throughput of the openmyst tunnel modes
# against a plain veth path and a bare pair of upstream wireguard-go
# tunnels, all measured in one run between network namespaces with iperf3
# (1 and 4 streams), plus provider RSS with 200 idle peers.
#
# Topology (namespaces created here, removed on exit):
#   client C 198.51.100.2 -- 198.51.100.1 P provider/router 203.0.113.1 -- 203.0.113.2 S iperf3 server
#
# Background processes are started with ip netns exec directly (not through a
# shell function) so that $! is the process itself and kill reaches it.
#
# Paths:
#   veth            C -> P -> S plainly routed (the limit)
#   wg-upstream     wireguard-go main package at the go.mod version, C <-> P, P routes to S (reference)
#   wg-debian       Debian's /usr/bin/wireguard-go in the same roles (floor)
#   openmyst-kernel tunnel/kernel client in C, tunnel/kernel exit in P (NAT, exit policy, kill switch)
#   openmyst-user   tunnel/userspace client in C, iperf3 -> local forwarder -> its SOCKS5 proxy ->
#                   netstack -> WireGuard -> userspace exit netstack -> host socket in P -> S
#
# Usage: sudo bench/tunnel/run.sh
#   DUR=seconds per iperf3 run (5), ROUNDS=interleaved rounds, median reported (3),
#   PATHS=subset of "veth wg_upstream wg_debian kernel userspace"
# Needs: root, go, iproute2, nftables, iperf3, wireguard-tools (wg), wireguard-go (Debian, optional).
set -euo pipefail

DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
PATHS=${PATHS:-veth wg_upstream wg_debian kernel userspace}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/omtunbench.XXXXXX)
SUF=$$
C=omb-c-$SUF P=omb-p-$SUF S=omb-s-$SUF
PIDS=()

cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	sleep 0.5
	for ns in $C $P $S; do
		if ip netns list | grep -qw "$ns"; then
			for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null; done
		fi
	done
	sleep 0.2
	for ns in $C $P $S; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for t in go ip nft iperf3 wg; do command -v $t >/dev/null || die "missing $t"; done

inC() { ip netns exec "$C" "$@"; }
inP() { ip netns exec "$P" "$@"; }
inS() { ip netns exec "$S" "$@"; }

echo "building into $WORK ..." >&2
(cd "$ROOT" && go build -o "$WORK/wireguard-go-upstream" golang.zx2c4.com/wireguard) || die "build upstream wireguard-go"
(cd "$ROOT" && go build -o "$WORK/omtun-kernel" ./bench/tunnel/omtun-kernel) || die "build omtun-kernel"
USERSPACE=1
(cd "$ROOT" && go build -o "$WORK/omtun-userspace" ./bench/tunnel/omtun-userspace) 2>"$WORK/userspace-build.log" || USERSPACE=0
UPSTREAM_VER=$("$WORK/wireguard-go-upstream" --version | head -1)
DEBIAN_WG=$(command -v wireguard-go || true)

# --- topology ---
for ns in $C $P $S; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$C" link add vc type veth peer name vp netns "$P"
ip -n "$P" link add vu type veth peer name vs netns "$S"
ip -n "$C" addr add 198.51.100.2/24 dev vc
ip -n "$P" addr add 198.51.100.1/24 dev vp
ip -n "$P" addr add 203.0.113.1/24 dev vu
ip -n "$S" addr add 203.0.113.2/24 dev vs
for l in "$C vc" "$P vp" "$P vu" "$S vs"; do set -- $l; ip -n "$1" link set "$2" up; done
ip -n "$C" route add default via 198.51.100.1
ip -n "$S" route add default via 203.0.113.1
inP sysctl -qw net.ipv4.ip_forward=1

ip netns exec "$S" iperf3 -s >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5

# iperf3 CLIENT_NS HOST PORT STREAMS -> Gbit/s of the receiver
measure() {
	local out
	out=$(timeout $((DUR + 30)) ip netns exec "$1" iperf3 -c "$2" -p "$3" -P "$4" -t "$DUR" -f g 2>&1) || { echo "iperf3 failed: $out" >&2; echo "0"; return; }
	echo "$out" | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") v = $(i-1) } END { print (v == "" ? 0 : v) }'
}

declare -A S1 S4 R1 R4 # all samples, then their medians
run_pair() { # NAME NS HOST PORT: one sample of each stream count
	local g1 g4
	g1=$(measure "$2" "$3" "$4" 1)
	g4=$(measure "$2" "$3" "$4" 4)
	S1[$1]="${S1[$1]:-} $g1"
	S4[$1]="${S4[$1]:-} $g4"
	echo "  round $round $1: $g1 / $g4 Gbit/s" >&2
}
median() { echo "$@" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# wait_ready LOGFILE PID. Callers remove LOGFILE before starting the
# process: the background job truncates it only later, asynchronously.
wait_ready() {
	for _ in $(seq 1 200); do
		grep -q READY "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || { cat "$1" >&2; return 1; }
		sleep 0.05
	done
	cat "$1" >&2
	return 1
}

# stop PID...: SIGTERM, up to 10 s for a clean exit, then SIGKILL.
stop() {
	local pid
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "$@"; do
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			echo "run.sh: pid $pid ignored SIGTERM for 10s, killing" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
}

echo "measuring (DUR=${DUR}s per run) ..." >&2

# (1) plain veth
path_veth() { run_pair veth "$C" 203.0.113.2 5201; }

# (2)/(5) a bare pair of wireguard-go processes, P routing to S
wg_pair() { # NAME BINARY TAG
	# Distinct names: wireguard-go keeps its UAPI socket in /var/run/wireguard, shared by all namespaces.
	local ck pk
	ck=$(wg genkey); pk=$(wg genkey)
	ip netns exec "$C" env WG_PROCESS_FOREGROUND=1 WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 "$2" -f omwg${3}c$SUF >"$WORK/$1-c.log" 2>&1 &
	local cpid=$!
	ip netns exec "$P" env WG_PROCESS_FOREGROUND=1 WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 "$2" -f omwg${3}p$SUF >"$WORK/$1-p.log" 2>&1 &
	local ppid=$!
	for _ in $(seq 1 100); do
		ip -n "$C" link show omwg${3}c$SUF >/dev/null 2>&1 && ip -n "$P" link show omwg${3}p$SUF >/dev/null 2>&1 && break
		sleep 0.05
	done
	inP wg set omwg${3}p$SUF private-key <(echo "$pk") listen-port 51830 peer "$(echo "$ck" | wg pubkey)" allowed-ips 10.99.0.2/32
	inC wg set omwg${3}c$SUF private-key <(echo "$ck") peer "$(echo "$pk" | wg pubkey)" endpoint 198.51.100.1:51830 allowed-ips 10.99.0.1/32,203.0.113.0/24
	ip -n "$P" addr add 10.99.0.1/24 dev omwg${3}p$SUF
	ip -n "$C" addr add 10.99.0.2/24 dev omwg${3}c$SUF
	ip -n "$P" link set omwg${3}p$SUF mtu 1420 up
	ip -n "$C" link set omwg${3}c$SUF mtu 1420 up
	ip -n "$C" route add 203.0.113.0/24 dev omwg${3}c$SUF
	run_pair "$1" "$C" 203.0.113.2 5201
	stop "$cpid" "$ppid"
}
path_wg_upstream() { wg_pair wg-upstream "$WORK/wireguard-go-upstream" u; }
path_wg_debian() { if [ -n "$DEBIAN_WG" ]; then wg_pair wg-debian "$DEBIAN_WG" d; fi; }

EK=$(wg genkey); CK=$(wg genkey)
# (3) openmyst kernel mode
path_kernel() { kernel_path openmyst-kernel; }
# the same with ExitConfig.FlowOffload (needs nf_flow_table in the kernel;
# add kernel_offload to PATHS)
path_kernel_offload() { kernel_path openmyst-kernel-offload -offload; }
kernel_path() { # NAME [exit flags]
rm -f "$WORK/k-exit.log"
ip netns exec "$P" "$WORK/omtun-kernel" exit -key "$EK" -port 51820 -peer "$(echo "$CK" | wg pubkey)" -peer-ip 10.182.0.2 "${@:2}" >"$WORK/k-exit.log" 2>&1 &
KEXIT=$!
wait_ready "$WORK/k-exit.log" $KEXIT || die "kernel exit did not start"
rm -f "$WORK/k-client.log"
ip netns exec "$C" "$WORK/omtun-kernel" client -key "$CK" -peer "$(echo "$EK" | wg pubkey)" -endpoint 198.51.100.1:51820 -addr 10.182.0.2/32 >"$WORK/k-client.log" 2>&1 &
KCLIENT=$!
wait_ready "$WORK/k-client.log" $KCLIENT || die "kernel client did not start"
run_pair "$1" "$C" 203.0.113.2 5201
stop $KCLIENT $KEXIT
! inP nft list tables | grep -q openmyst || die "kernel exit left its nftables table behind"
! inC nft list tables | grep -q openmyst || die "kernel client left its kill switch behind"
return 0
}

# (4) openmyst userspace mode
path_userspace() {
if [ "$USERSPACE" = 1 ]; then
	rm -f "$WORK/u-exit.log"
	ip netns exec "$P" "$WORK/omtun-userspace" exit -key "$EK" -port 51821 -advertise 198.51.100.1 -peer "$(echo "$CK" | wg pubkey)" -peer-ip 10.182.0.2 >"$WORK/u-exit.log" 2>&1 &
	UEXIT=$!
	wait_ready "$WORK/u-exit.log" $UEXIT || die "userspace exit did not start"
	rm -f "$WORK/u-client.log"
	ip netns exec "$C" "$WORK/omtun-userspace" client -key "$CK" -peer "$(echo "$EK" | wg pubkey)" -endpoint 198.51.100.1:51821 -addr 10.182.0.2/32 -forward 127.0.0.1:15201=203.0.113.2:5201 >"$WORK/u-client.log" 2>&1 &
	UCLIENT=$!
	wait_ready "$WORK/u-client.log" $UCLIENT || die "userspace client did not start"
	run_pair openmyst-user "$C" 127.0.0.1 15201
	stop $UCLIENT $UEXIT
fi
}

# Rounds interleave the paths so that background load on the machine hits
# them alike; each path reports the median of its rounds.
for round in $(seq 1 "$ROUNDS"); do
	for p in $PATHS; do "path_$p"; done
done
for k in "${!S1[@]}"; do R1[$k]=$(median ${S1[$k]}); R4[$k]=$(median ${S4[$k]}); done

# Provider RSS with 200 idle peers (and with none, for reference).
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
rss_of() { # MODE(kernel|userspace) PEERS -> kB
	local bin=$WORK/omtun-$1 extra=()
	[ "$1" = userspace ] && extra=(-advertise 198.51.100.1)
	rm -f "$WORK/rss.log"
	ip netns exec "$P" "$bin" exit -key "$(wg genkey)" -port 51825 -idle-peers "$2" "${extra[@]}" >"$WORK/rss.log" 2>&1 &
	local pid=$!
	wait_ready "$WORK/rss.log" $pid || die "exit for RSS did not start"
	sleep 1
	rss_kb $pid
	stop $pid
}
RSSK0=$(rss_of kernel 0); RSSK200=$(rss_of kernel 200)
if [ "$USERSPACE" = 1 ]; then RSSU0=$(rss_of userspace 0); RSSU200=$(rss_of userspace 200); fi

# --- report ---
ref1=${R1[wg-upstream]:-0} ref4=${R4[wg-upstream]:-0}
echo
echo "tunnel throughput, iperf3 TCP, ${DUR}s per run, median of $ROUNDS interleaved rounds, $(nproc) CPUs, kernel $(uname -r)"
echo "reference (2) = $UPSTREAM_VER built with go build from go.mod"
printf '%-18s %12s %9s %12s %9s\n' path "1 stream" "x ref" "4 streams" "x ref"
row() {
	printf '%-18s %7s Gb/s %8s %7s Gb/s %8s\n' "$1" "$2" "$(awk -v a="$2" -v b="$ref1" 'BEGIN { printf (b > 0 ? "%.2f" : "n/a"), a / b }')" \
		"$3" "$(awk -v a="$3" -v b="$ref4" 'BEGIN { printf (b > 0 ? "%.2f" : "n/a"), a / b }')"
}
row "(1) veth" "${R1[veth]:-0}" "${R4[veth]:-0}"
row "(2) wg upstream" "$ref1" "$ref4"
row "(3) openmyst kern" "${R1[openmyst-kernel]:-0}" "${R4[openmyst-kernel]:-0}"
if [ -n "${R1[openmyst-kernel-offload]:-}" ]; then
	row "    (flow offload)" "${R1[openmyst-kernel-offload]:-0}" "${R4[openmyst-kernel-offload]:-0}"
fi
if [ "$USERSPACE" = 1 ]; then
	row "(4) openmyst user" "${R1[openmyst-user]:-0}" "${R4[openmyst-user]:-0}"
else
	echo "(4) openmyst user  missing (tunnel/userspace did not build: $(head -c 200 "$WORK/userspace-build.log"))"
fi
if [ -n "$DEBIAN_WG" ]; then
	row "    debian wg-go" "${R1[wg-debian]:-0}" "${R4[wg-debian]:-0}"
	echo "    (Debian: $("$DEBIAN_WG" --version | head -1))"
fi
echo "targets: kernel >= 0.90x reference, userspace >= 0.50x reference"
echo "samples per round (1 stream | 4 streams, Gbit/s):"
for k in $(echo "${!S1[@]}" | tr ' ' '\n' | sort); do printf '    %-26s %s |%s\n' "$k" "${S1[$k]}" "${S4[$k]}"; done
echo
echo "provider RSS: kernel exit $((RSSK0 / 1024)) MB idle, $((RSSK200 / 1024)) MB with 200 idle peers (target < 100 MB)"
if [ "$USERSPACE" = 1 ]; then
	echo "provider RSS: userspace exit $((RSSU0 / 1024)) MB idle, $((RSSU200 / 1024)) MB with 200 idle peers"
fi
