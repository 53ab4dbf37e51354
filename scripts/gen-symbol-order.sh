#!/usr/bin/env bash
# Regenerates scripts/crispd.order, the symbol ordering file lld uses to lay out crispd's
# start-up functions together (see Package.swift): idle RSS is mostly code pages start-up touched
# once, and without the ordering they are spread over ~20 MB of text.
#
# Runs a release crispd under valgrind's callgrind until it serves the CRI socket, asks it for
# Version and Status, stops it, and lists every crispd function that ran, in first-run order.
# (valgrind 3.19 does not know openat2, so pulls and pods cannot be profiled this way; start-up is
# what decides idle memory.) Needs root; installs valgrind with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
make -s build >&2
work=$(mktemp -d /tmp/crisp-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
# valgrind cannot read the DWARF 5 debug info; the symbol table is enough.
strip --strip-debug -o "$work/crispd" .build/release/crispd
cp .build/release/crisp-pinns .build/release/crisp-pause "$work/"
mkdir -p "$work/net.d"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.out" "$work/crispd" \
  --root "$work/root" --runroot "$work/run" --listen "$work/crisp.sock" --network-dir "$work/net.d" \
  >"$work/crispd.log" 2>"$work/valgrind.log" &
vg=$!
for _ in $(seq 1 120); do [ -S "$work/crisp.sock" ] && break; sleep 1; done
[ -S "$work/crisp.sock" ] || { echo "crispd did not start under valgrind" >&2; tail "$work/valgrind.log" >&2; kill "$vg"; exit 1; }
# What an idle node's crispd serves: the kubelet's Status, ImageFsInfo and list calls (crictl's
# info and imagefsinfo, where CRICTL names one; the bench measures idle RSS after those two).
for c in version status images pods "ps -a"; do .build/release/crispctl $c --socket "$work/crisp.sock" >/dev/null; done
CRICTL=${CRICTL:-$(command -v crictl || echo /opt/critools/bin/crictl)}
if [ -x "$CRICTL" ]; then
  for c in info imagefsinfo pods ps images; do "$CRICTL" -r "unix://$work/crisp.sock" -i "unix://$work/crisp.sock" -t 60s $c >/dev/null; done
fi
kill -TERM "$vg"
wait "$vg" || true
python3 - "$work/cg.out" "$work/crispd" scripts/crispd.order <<'PY'
import re, subprocess, sys
out, binary, target = sys.argv[1:]
names, executed, seen, objects, current = {}, [], set(), {}, None
for line in open(out, errors="replace"):
    line = line.rstrip("\n")
    m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
    if m:
        if m.group(3): objects[m.group(2)] = m.group(3)
        if m.group(1) == "ob": current = objects.get(m.group(2))
        continue
    m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
    if m:
        if m.group(3): names[m.group(2)] = m.group(3)
        if m.group(1) == "fn" and current == binary and m.group(2) not in seen:
            seen.add(m.group(2)); executed.append(m.group(2))
defined = set(subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True).stdout.split())
order, done = [], set()
for i in executed:
    n = names.get(i, "").split("'")[0]
    if n and not n.startswith("0x") and n in defined and n not in done:
        done.add(n); order.append(n)
open(target, "w").write("\n".join(order) + "\n")
print(f"{len(order)} functions written to {target}")
PY
