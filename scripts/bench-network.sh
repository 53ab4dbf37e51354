#!/usr/bin/env bash
# CNI ADD+DEL for one pod: through crisp's CrispNetwork (PodNetworkManager: netns pinned by
# crisp-pinns, bridge + host-local + portmap, result cache) versus the same plugin chain run
# directly from this shell script (ip netns add, plugin ADDs, DELs in reverse, ip netns del), in
# the same run. Prints a table with the ratio crisp/direct (target <= 1.1). Needs root.
#
#   BENCH_N=30 scripts/bench-network.sh      (BENCH_SKIP_BUILD=1 to reuse the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
N=${BENCH_N:-30}
TARGET=1.1
PLUGINS=/usr/lib/cni

if [ "$(id -u)" != 0 ]; then echo "bench-network: needs root (netns, bridge, iptables)" >&2; exit 1; fi
for p in bridge host-local portmap; do
  [ -x "$PLUGINS/$p" ] || { echo "bench-network: $PLUGINS/$p missing (apt install containernetworking-plugins)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/crisp-bench-net.XXXXXX)
BR=crbench1
NS=crbench-direct
cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$BR" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then swift build --build-tests >/dev/null; fi

# --- direct: the same chain from the shell (bridge crbench1, 10.250.251.0/24).
BRIDGE_CONF='{"cniVersion":"1.0.0","name":"crbench","type":"bridge","bridge":"'$BR'","isGateway":true,"ipMasq":false,"hairpinMode":true,"ipam":{"type":"host-local","dataDir":"'$TMP/ipam'","ranges":[[{"subnet":"10.250.251.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}}'
portmap_conf() {
  printf '{"cniVersion":"1.0.0","name":"crbench","type":"portmap","capabilities":{"portMappings":true},"snat":true,"runtimeConfig":{"portMappings":[{"hostPort":30251,"containerPort":80,"protocol":"tcp"}]},"prevResult":%s}' "$1"
}
one_direct() {
  local id=$1 args="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench;K8S_POD_INFRA_CONTAINER_ID=$1;K8S_POD_UID=u"
  export CNI_CONTAINERID=$id CNI_NETNS=/var/run/netns/$NS CNI_IFNAME=eth0 CNI_PATH=$PLUGINS CNI_ARGS=$args
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  local r1 r2
  r1=$(CNI_COMMAND=ADD "$PLUGINS/bridge" <<<"$BRIDGE_CONF")
  r2=$(portmap_conf "$r1" | CNI_COMMAND=ADD "$PLUGINS/portmap")
  portmap_conf "$r2" | CNI_COMMAND=DEL "$PLUGINS/portmap" >/dev/null
  printf '%s,"prevResult":%s}' "${BRIDGE_CONF%\}}" "$r2" | CNI_COMMAND=DEL "$PLUGINS/bridge" >/dev/null
  ip netns del "$NS"
}
: >"$TMP/direct.txt"
: >"$TMP/crisp.txt"
# Alternate the two paths in ROUNDS blocks so load from other work on the machine hits both alike.
ROUNDS=${BENCH_ROUNDS:-3}
PER=$(( (N + ROUNDS - 1) / ROUNDS ))
for round in $(seq 1 "$ROUNDS"); do
  # crisp: the benchmark test drives PodNetworkManager (bridge crtest250, 10.250.250.0/24).
  CRISP_BENCH_OUT=$TMP/crisp-$round.txt CRISP_BENCH_N=$PER \
    swift test --skip-build --filter 'CrispNetworkTests.NetworkBenchmark' >"$TMP/test.log" 2>&1 \
    || { cat "$TMP/test.log" >&2; echo "bench-network: crisp run failed" >&2; exit 1; }
  cat "$TMP/crisp-$round.txt" >>"$TMP/crisp.txt"; echo >>"$TMP/crisp.txt"
  # direct: the same chain from the shell (bridge crbench1, 10.250.251.0/24), 2 warm-ups per round.
  for i in $(seq 1 $((PER + 2))); do
    t0=$(date +%s%N)
    one_direct "bench$round-$i"
    t1=$(date +%s%N)
    if [ "$i" -gt 2 ]; then echo "scale=3; ($t1 - $t0) / 1000000" | bc >>"$TMP/direct.txt"; fi
  done
done
sed -i '/^$/d' "$TMP/crisp.txt"
left=$(ls "$TMP/ipam/crbench" 2>/dev/null | grep -c '^10\.' || true)
[ "$left" = 0 ] || { echo "bench-network: direct run leaked $left IPs" >&2; exit 1; }

stats() { sort -n "$1" | awk '{a[NR]=$1; s+=$1} END {p=int(NR*0.9); if (p<1) p=1; printf "%.1f %.1f %.1f", s/NR, a[int((NR+1)/2)], a[p]}'; }
read -r c_mean c_med c_p90 <<<"$(stats "$TMP/crisp.txt")"
read -r d_mean d_med d_p90 <<<"$(stats "$TMP/direct.txt")"
ratio=$(echo "scale=2; $c_med / $d_med" | bc)
verdict=$(echo "$ratio <= $TARGET" | bc)
printf '\nCNI ADD+DEL, one pod, bridge+host-local+portmap, %d iterations per path in %d alternating rounds (2 warm-ups each)\n' "$((PER * ROUNDS))" "$ROUNDS"
printf '| %-38s | %9s | %10s | %8s |\n' "path" "mean ms" "median ms" "p90 ms"
printf '|%s|%s|%s|%s|\n' "----------------------------------------" "-----------" "------------" "----------"
printf '| %-38s | %9s | %10s | %8s |\n' "crisp (PodNetworkManager, debug build)" "$c_mean" "$c_med" "$c_p90"
printf '| %-38s | %9s | %10s | %8s |\n' "direct (shell script)" "$d_mean" "$d_med" "$d_p90"
printf 'ratio crisp/direct (median): %s (target <= %s): %s\n' "$ratio" "$TARGET" "$([ "$verdict" = 1 ] && echo PASS || echo FAIL)"
[ "$verdict" = 1 ]
