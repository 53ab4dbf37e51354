#!/usr/bin/env bash
# Regenerates scripts/crispd.order, the symbol ordering file lld uses to lay out crispd's functions
# (see Package.swift). crispd's RSS is mostly code pages of its own binary, and the kernel maps a
# file's pages 64 kB (or a whole large folio) at a time around each fault: functions that run
# should sit together, or every one of them brings its own 64 kB in.
#
# Runs a release crispd under scripts/function-coverage.py (an entry probe on every function) with
# what the benchmarks measure RSS on, in three phases whose functions are listed in that order,
# each in first-run order:
#   1. start-up and an idle node's calls (Version, Status, ImageFsInfo, the lists);
#   2. a pull from the conformance registry and 10 pods, each with a running container;
#   3. stopping and removing them, and crispd's shutdown.
# What no phase ran stays where the linker puts it. Needs root, Linux 6.6 or later (BPF
# uprobe_multi), crictl, and the shared conformance registry.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SHARED=${SHARED:-$(dirname "$REPO")/shared}/conformance
export PATH=/opt/swift/usr/bin:$PATH
CRICTL=${CRICTL:-$(command -v crictl || echo /opt/critools/bin/crictl)}
[ -x "$CRICTL" ] || { echo "gen-symbol-order: crictl not found (set CRICTL=)" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then echo "gen-symbol-order: needs root" >&2; exit 1; fi
make -s build >&2
work=$(mktemp -d /var/tmp/crisp-order.XXXXXX)
chmod 755 "$work"
cleanup() {
  set +e
  pid=$(cat "$work/crispd.pid" 2>/dev/null)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  for c in $(/usr/sbin/runc --root "$work/runc-root" list -q 2>/dev/null); do /usr/sbin/runc --root "$work/runc-root" delete -f "$c"; done
  awk -v t="$work/" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  ip link del crisporder0 2>/dev/null
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
# A copy: the probes count every process that runs the file, and `make build` may replace it.
cp .build/release/crispd .build/release/crisp-pinns .build/release/crisp-pause "$work/"
mkdir -p "$work"/{root,run,runc-root,net.d,conf.d,cni,logs}
: >"$work/crisp.conf"
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$work/policy.json"
cat >"$work/net.d/10-crisporder.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "crisporder", "plugins": [
  {"type": "loopback"},
  {"type": "bridge", "bridge": "crisporder0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$work/cni", "ranges": [[{"subnet": "10.94.0.0/16"}]]}}]}
JSON
"$SHARED/registry.sh" start >&2

# The workload, run under the probes; it records CLOCK_MONOTONIC (the probes' clock) at each phase's end.
cat >"$work/workload.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
work=$1 shared=$2 crictl=$3
sock=$work/run/crisp.sock
mark() { python3 -c 'import time; print(time.monotonic_ns())' >"$work/phase-$1"; }
C() { "$crictl" --config /dev/null -t 120s -r "unix://$sock" -i "unix://$sock" "$@"; }
"$work/crispd" --config "$work/crisp.conf" --config-dir "$work/conf.d" --root "$work/root" --runroot "$work/run" \
  --listen "$sock" --registries-conf "$shared/registries.conf" --network-dir "$work/net.d" \
  --signature-policy "$work/policy.json" --runtimes "runc:/usr/sbin/runc:$work/runc-root" >"$work/crispd.log" 2>&1 &
echo $! >"$work/crispd.pid"
for _ in $(seq 600); do C version >/dev/null 2>&1 && break; sleep 0.1; done
for c in version info imagefsinfo pods ps images; do C $c >/dev/null; done
mark 1
image=registry.k8s.io/e2e-test-images/busybox:1.29-2
C pull "$image" >/dev/null
for i in $(seq 10); do
  mkdir -p "$work/logs/$i"
  printf '{"metadata": {"name": "order-%s", "namespace": "crisp-order", "uid": "crisp-order-%s", "attempt": 0}, "log_directory": "%s", "linux": {}}\n' \
    "$i" "$i" "$work/logs/$i" >"$work/pod$i.json"
  printf '{"metadata": {"name": "sleep"}, "image": {"image": "%s"}, "command": ["sleep", "600"], "log_path": "sleep.log", "linux": {}}\n' \
    "$image" >"$work/ctr$i.json"
  pod=$(C runp "$work/pod$i.json")
  ctr=$(C create --no-pull "$pod" "$work/ctr$i.json" "$work/pod$i.json")
  C start "$ctr" >/dev/null
done
mark 2
C rmp -fa >/dev/null
pid=$(cat "$work/crispd.pid")
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
SH
chmod +x "$work/workload.sh"
python3 scripts/function-coverage.py "$work/crispd" "$work/ran.txt" -- "$work/workload.sh" "$work" "$SHARED" "$CRICTL"
python3 - "$work" scripts/crispd.order <<'PY'
import sys
work, target = sys.argv[1:]
ends = [int(open(f"{work}/phase-{p}").read()) for p in (1, 2)]
phases = [[], [], []]
for line in open(f"{work}/ran.txt"):
    t, name = line.split()
    phases[sum(int(t) > e for e in ends)].append(name)
open(target, "w").write("".join(n + "\n" for p in phases for n in p))
print(f"{sum(map(len, phases))} functions written to {target} (start-up and idle {len(phases[0])}, "
      f"pull and pods {len(phases[1])}, removal and shutdown {len(phases[2])})")
PY
