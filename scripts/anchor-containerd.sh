#!/usr/bin/env bash
# A containerd to measure crisp against in the same run (issue 12's anchor): Debian's containerd
# 1.6 with its CRI plugin, on a socket, root and state of its own under DIR, the shared offline
# conformance registry as mirror of every registry critest names, its own CNI bridge without
# masquerading, runc (the same binary crispd drives) through the runc v2 shim, cgroupfs.
#
#   scripts/anchor-containerd.sh start [DIR]   # prints the endpoint: unix://DIR/containerd.sock
#   scripts/anchor-containerd.sh stop [DIR]    # removes its pods, stops it, unmounts and removes DIR
#
#   ep=$(scripts/anchor-containerd.sh start) && ANCHOR_ENDPOINTS="containerd=$ep" scripts/bench-critest.sh
#
# containerd is installed with apt when missing (Debian 12: 1.6.20). The host's root lacks
# CAP_SYS_RESOURCE, so negative OOM score adjustments are clamped (restrict_oom_score_adj), as
# crispd does; without it every sandbox fails in runc. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SHARED=${SHARED:-$(dirname "$REPO")/shared}/conformance
cmd=${1:-}
dir=${2:-/var/tmp/crisp-anchor-containerd}
sock=$dir/containerd.sock
CRICTL=${CRICTL:-/opt/critools/bin/crictl}
[ -x "$CRICTL" ] || CRICTL=$(command -v crictl || true)
if [ "$(id -u)" != 0 ]; then echo "anchor-containerd: needs root" >&2; exit 1; fi
cri() { "$CRICTL" --config /dev/null -t 60s -r "unix://$sock" -i "unix://$sock" "$@"; }

case "$cmd" in
start)
  if ! command -v containerd >/dev/null; then
    echo "anchor-containerd: installing Debian's containerd" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd >/dev/null
  fi
  if [ -S "$sock" ] && [ -n "$CRICTL" ] && cri version >/dev/null 2>&1; then echo "unix://$sock"; exit 0; fi
  "$SHARED/registry.sh" start >&2
  mkdir -p "$dir"/{root,state,net.d,cni}
  mirrors=""
  for r in registry.k8s.io k8s.gcr.io gcr.io docker.io public.ecr.aws; do
    mirrors+="  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"$r\"]
    endpoint = [\"http://127.0.0.1:5000\"]
"
  done
  cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$dir/runc"
$mirrors
TOML
  cat >"$dir/net.d/10-anchorbench.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "anchorbench", "plugins": [
  {"type": "loopback"},
  {"type": "bridge", "bridge": "anchorbench0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$dir/cni", "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "10.90.0.0/16"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
  containerd -c "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 300); do
    cri version >/dev/null 2>&1 && { echo "unix://$sock"; exit 0; }
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "anchor-containerd: containerd did not come up; the end of its log:" >&2
  tail -20 "$dir/containerd.log" >&2
  exit 1
  ;;
stop)
  [ -d "$dir" ] || exit 0
  pid=$(cat "$dir/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    cri rmp -fa >/dev/null 2>&1 || true
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  # The shims of a containerd that died keep their containers: end them through runc's state.
  for c in $(/usr/sbin/runc --root "$dir/runc/k8s.io" list -q 2>/dev/null); do
    /usr/sbin/runc --root "$dir/runc/k8s.io" delete -f "$c" 2>/dev/null || true
  done
  awk -v t="$dir/" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  ip link del anchorbench0 2>/dev/null || true
  rm -rf --one-file-system "$dir"
  # Shim sockets live under /run/containerd/s whatever the state dir; leave the directories only
  # where another containerd still has something in them.
  rmdir /run/containerd/s /run/containerd 2>/dev/null || true
  # The pods' cgroup parent (cgroupfs driver): only an empty one goes, so one that another
  # containerd's pods are in stays.
  for c in /sys/fs/cgroup/*/k8s.io; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done; true
  ;;
*)
  echo "usage: $0 start|stop [DIR]" >&2
  exit 2
  ;;
esac
