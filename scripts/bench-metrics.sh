#!/usr/bin/env bash
# ListPodSandboxMetrics through a release crispd with 100 running containers (10 pods of 10),
# next to ListContainerStats. The limit is 1 s, a tenth of the kubelet's 10 s scrape interval.
# Needs root.
#
#   BENCH_CONTAINERS=100 BENCH_N=20 scripts/bench-metrics.sh     (BENCH_SKIP_BUILD=1 reuses the builds)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
N=${BENCH_N:-20}
CONTAINERS=${BENCH_CONTAINERS:-100}
LIMIT_MS=1000
if [ "$(id -u)" != 0 ]; then echo "bench-metrics: needs root" >&2; exit 1; fi
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  make -s build >&2
  swift build --build-tests >/dev/null
  make -s pause DIR=.build/debug >&2
fi
OUT=$(mktemp /tmp/crisp-bench-metrics.XXXXXX)
trap 'rm -f "$OUT"' EXIT
CRISPD_BIN=$PWD/.build/release/crispd CRISP_BENCH_OUT=$OUT CRISP_BENCH_N=$N CRISP_BENCH_CONTAINERS=$CONTAINERS \
  swift test --skip-build --filter 'IntegrationTests.MetricsBenchmark' >"$OUT.log" 2>&1 || { tail -30 "$OUT.log" >&2; rm -f "$OUT.log"; exit 1; }
rm -f "$OUT.log"

row() { grep "^$1 " "$OUT" | cut -d' ' -f2- | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; i=int(NR*0.99+0.999); if (i>NR) i=NR; printf "%.1f %.1f", p50, a[i]}'; }
printf '\nCRI metrics with %s running containers (release crispd), %d rounds, ms\n' "$(grep '^containers ' "$OUT" | cut -d' ' -f2)" "$N"
printf '| %-26s | %8s | %8s | %16s |\n' "RPC" "p50" "p99" "p99 / 1 s limit"
printf '|%s|%s|%s|%s|\n' "----------------------------" "----------" "----------" "------------------"
for k in list_pod_sandbox_metrics list_container_stats; do
  read -r p50 p99 <<<"$(row "$k")"
  printf '| %-26s | %8s | %8s | %16s |\n' "${k//_/ }" "$p50" "$p99" "$(echo "scale=3; $p99 / $LIMIT_MS" | bc)"
done
read -r _ p99 <<<"$(row list_pod_sandbox_metrics)"
printf 'ListPodSandboxMetrics p99 %s ms (limit %s ms): %s\n' "$p99" "$LIMIT_MS" "$([ "$(echo "$p99 <= $LIMIT_MS" | bc)" = 1 ] && echo PASS || echo FAIL)"
