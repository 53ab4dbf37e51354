#!/usr/bin/env bash
# Exec, attach-free streaming through a release crispd: the round trip of `true` over SPDY and
# WebSocket (Exec RPC + upgrade + runc exec + status) next to ExecSync and a bare `runc exec` in
# the same container (the limit; target <= 1.3x), stdin -> cat -> stdout throughput next to `cat`
# through a pipe on the host (the limit; target >= 0.5x), and crispd's RSS with 50 sessions open.
# Needs root.
#
#   BENCH_N=30 BENCH_MB=256 scripts/bench-streaming.sh     (BENCH_SKIP_BUILD=1 reuses the builds)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
N=${BENCH_N:-30}
MB=${BENCH_MB:-256}
if [ "$(id -u)" != 0 ]; then echo "bench-streaming: needs root" >&2; exit 1; fi
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  make -s build >&2
  swift build --build-tests >/dev/null
  make -s pause DIR=.build/debug >&2
fi
OUT=$(mktemp /tmp/crisp-bench-streaming.XXXXXX)
trap 'rm -f "$OUT"' EXIT
CRISPD_BIN=$PWD/.build/release/crispd CRISPCTL_BIN=$PWD/.build/release/crispctl CRISP_BENCH_OUT=$OUT CRISP_BENCH_N=$N CRISP_BENCH_MB=$MB \
  swift test --skip-build --filter 'IntegrationTests.StreamingBenchmark' >"$OUT.log" 2>&1 || { tail -30 "$OUT.log" >&2; rm -f "$OUT.log"; exit 1; }
rm -f "$OUT.log"

row() { grep "^$1 " "$OUT" | cut -d' ' -f2- | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; i=int(NR*0.99+0.999); if (i>NR) i=NR; printf "%.1f %.1f", p50, a[i]}'; }
val() { grep "^$1 " "$OUT" | cut -d' ' -f2; }
printf '\nExec round trip of `true` through crispd (release), %d iterations, ms\n' "$N"
printf '| %-30s | %8s | %8s | %14s |\n' "path" "p50" "p99" "p50 / runc exec"
printf '|%s|%s|%s|%s|\n' "--------------------------------" "----------" "----------" "----------------"
read -r bare _ <<<"$(row runc_exec)"
for k in exec_spdy exec_websocket execsync runc_exec; do
  read -r p50 p99 <<<"$(row "$k")"
  printf '| %-30s | %8s | %8s | %14s |\n' "${k//_/ }" "$p50" "$p99" "$(echo "scale=2; $p50 / $bare" | bc)"
done
cat_pipe=$(val throughput_cat_pipe)
printf '\nstdin -> cat -> stdout, %d MiB (spdy, websocket: the debug test binary as client; crispctl: the release client; runc exec: runc exec ID cat, the runtime alone)\n' "$MB"
printf '| %-30s | %10s | %12s |\n' "path" "MiB/s" "/ cat pipe"
printf '|%s|%s|%s|\n' "--------------------------------" "------------" "--------------"
for k in throughput_spdy throughput_websocket throughput_crispctl_spdy throughput_crispctl_websocket throughput_runc_exec throughput_cat_pipe; do
  grep -q "^$k " "$OUT" || continue
  v=$(val "$k")
  printf '| %-30s | %10s | %12s |\n' "${k//_/ }" "$v" "$(echo "scale=3; $v / $cat_pipe" | bc)"
done
idle=$(val rss_idle_kB); busy=$(val rss_50_sessions_kB)
printf '\n| %-30s | %10s |\n' "crispd RSS" "MB"
printf '|%s|%s|\n' "--------------------------------" "------------"
printf '| %-30s | %10s |\n' "idle (one pod)" "$(echo "scale=1; $idle / 1024" | bc)"
printf '| %-30s | %10s |\n' "50 exec sessions open" "$(echo "scale=1; $busy / 1024" | bc)"
read -r spdy _ <<<"$(row exec_spdy)"
r=$(echo "scale=2; $spdy / $bare" | bc)
# The release crispctl is the client a user has; the debug test binary is the fallback.
spdy_mbs=$(val throughput_crispctl_spdy); spdy_mbs=${spdy_mbs:-$(val throughput_spdy)}
t=$(echo "scale=3; $spdy_mbs / $cat_pipe" | bc)
printf 'exec SPDY p50 ratio %s (target <= 1.3): %s; throughput ratio %s (target >= 0.5): %s\n' "$r" \
  "$([ "$(echo "$r <= 1.3" | bc)" = 1 ] && echo PASS || echo FAIL)" "$t" \
  "$([ "$(echo "$t >= 0.5" | bc)" = 1 ] && echo PASS || echo FAIL)"
