#!/usr/bin/env bash
# Pod and container lifecycle through a release crispd (conmon + runc, host-network pods, namespaces
# pinned, no infra container) versus the limit measured in the same run: `runc run -d` and
# `runc delete -f` of an equivalent busybox bundle. p50/p99 per step over BENCH_N iterations (2
# warm-ups), the ratios to the limit (target: pod+container start <= 1.5x `runc run -d`), and
# crispd's RSS idle and with 20 pods (target: idle < 30 MB). Two more references: the floor crisp
# must drive for a container whatever it does itself (conmon running `runc create`, then `runc
# start`), and crispd's own time per RPC from its trace log, which leaves out the benchmark's
# debug-built gRPC client. Needs root.
#
#   BENCH_N=50 scripts/bench-pods.sh        (BENCH_SKIP_BUILD=1 reuses the builds)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
N=${BENCH_N:-50}
TARGET=1.5
if [ "$(id -u)" != 0 ]; then echo "bench-pods: needs root" >&2; exit 1; fi

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  make -s build >&2
  swift build --build-tests >/dev/null
  make -s pause DIR=.build/debug >&2
fi
OUT=$(mktemp /tmp/crisp-bench-pods.XXXXXX)
trap 'rm -f "$OUT"' EXIT
CRISPD_BIN=$PWD/.build/release/crispd CRISP_BENCH_OUT=$OUT CRISP_BENCH_N=$N \
  swift test --skip-build --filter 'IntegrationTests.PodBenchmark' >"$OUT.log" 2>&1 || { tail -30 "$OUT.log" >&2; rm -f "$OUT.log"; exit 1; }
rm -f "$OUT.log"

row() { grep "^$1 " "$OUT" | cut -d' ' -f2- | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; i=int(NR*0.99+0.999); if (i>NR) i=NR; printf "%.1f %.1f", p50, a[i]}'; }
printf '\nPod lifecycle through crispd (release), %d iterations, p50 and p99 in ms\n' "$N"
printf '| %-34s | %8s | %8s |\n' "step" "p50 ms" "p99 ms"
printf '|%s|%s|%s|\n' "------------------------------------" "----------" "----------"
for k in RunPodSandbox CreateContainer+StartContainer StopContainer+RemoveContainer StopPodSandbox+RemovePodSandbox \
         crisp_pod+container_start crisp_whole_lifecycle runc_run_-d runc_run_-d_+_delete_-f \
         conmon_+_runc_create_+_runc_start crispd-side_RunPodSandbox crispd-side_CreateContainer+StartContainer \
         crispd-side_pod+container_start; do
  read -r p50 p99 <<<"$(row "$k")"
  printf '| %-34s | %8s | %8s |\n' "${k//_/ }" "$p50" "$p99"
done
read -r start _ <<<"$(row crisp_pod+container_start)"
read -r bare _ <<<"$(row runc_run_-d)"
read -r whole _ <<<"$(row crisp_whole_lifecycle)"
read -r barewhole _ <<<"$(row 'runc_run_-d_+_delete_-f')"
read -r parts _ <<<"$(row conmon_+_runc_create_+_runc_start)"
read -r server _ <<<"$(row crispd-side_pod+container_start)"
r1=$(echo "scale=2; $start / $bare" | bc)
r5=$(echo "scale=2; $server / $bare" | bc)
r3=$(echo "scale=2; $start / $parts" | bc)
r4=$(echo "scale=2; $parts / $bare" | bc)
r2=$(echo "scale=2; $whole / $barewhole" | bc)
idle=$(grep '^rss-idle-kB ' "$OUT" | cut -d' ' -f2)
busy=$(grep '^rss-20-pods-kB ' "$OUT" | cut -d' ' -f2)
idle_mb=$(echo "scale=1; $idle / 1024" | bc)
busy_mb=$(echo "scale=1; $busy / 1024" | bc)
printf '\n| %-44s | %8s | %8s | %6s |\n' "measure" "value" "limit" "ratio"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "----------" "----------" "--------"
printf '| %-44s | %8s | %8s | %6s |\n' "pod+container start p50 / runc run -d p50" "$start" "$bare" "$r1"
printf '| %-44s | %8s | %8s | %6s |\n' "crispd-side pod+container start / runc run -d" "$server" "$bare" "$r5"
printf '| %-44s | %8s | %8s | %6s |\n' "whole lifecycle p50 / runc run+delete p50" "$whole" "$barewhole" "$r2"
printf '| %-44s | %8s | %8s | %6s |\n' "conmon+runc create+start p50 / runc run -d p50" "$parts" "$bare" "$r4"
printf '| %-44s | %8s | %8s | %6s |\n' "pod+container start p50 / conmon+create+start" "$start" "$parts" "$r3"
printf '| %-44s | %8s | %8s | %6s |\n' "crispd RSS idle (MB)" "$idle_mb" "30" "$(echo "scale=2; $idle_mb / 30" | bc)"
printf '| %-44s | %8s | %8s | %6s |\n' "crispd RSS with 20 pods (MB)" "$busy_mb" "-" "-"
printf 'start ratio %s (target <= %s): %s; idle RSS %s MB (target < 30): %s\n' "$r1" "$TARGET" \
  "$([ "$(echo "$r1 <= $TARGET" | bc)" = 1 ] && echo PASS || echo FAIL)" "$idle_mb" \
  "$([ "$(echo "$idle_mb < 30" | bc)" = 1 ] && echo PASS || echo FAIL)"
