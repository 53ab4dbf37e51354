#!/usr/bin/env bash
# Image pull benchmark: a ~200 MB (uncompressed), 5-layer gzip image on a loopback
# docker-registry, pulled by crisp into an empty store, against the shell doing the same work
# in steps: per layer `curl` → `sha256sum` → `gzip -d` → `tar -x` (sequential per layer,
# layers in parallel). Prints a table: seconds, MB/s, peak RSS, ratio to the shell (target
# ≤ 1.0) and peak RSS against 100 MB.
#
# Usage: scripts/bench-images.sh            (CONFIG=release for an optimised build; default debug)
# Needs: docker-registry, curl, gzip, tar, python3; root for the overlay driver
# (CRISP_BENCH_DRIVER=vfs otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-debug}
LAYERS=5
LAYER_MB=${LAYER_MB:-40}

work=$(mktemp -d /var/tmp/crisp-bench-XXXXXX)
reg_pid=""
cleanup() {
    if [[ -n "$reg_pid" ]]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
reg="127.0.0.1:$port"
cat > "$work/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $reg
YAML
/usr/bin/docker-registry serve "$work/config.yml" >/dev/null 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done

push_blob() { # file → digest
    local f=$1 d loc
    d="sha256:$(sha256sum "$f" | cut -d' ' -f1)"
    loc=$(curl -sf -X POST -D - -o /dev/null "http://$reg/v2/bench/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
    [[ "$loc" == http* ]] || loc="http://$reg$loc"
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$f" "$loc&digest=$d" >/dev/null
    echo "$d"
}

echo "building fixture: $LAYERS layers of ~$LAYER_MB MB" >&2
layers_json="" diff_ids="" total_compressed=0
for i in $(seq $LAYERS); do
    d="$work/src$i"; mkdir -p "$d/files$i"
    # Compressible but not trivial content: base64 of random bytes, plus 500 small files.
    head -c $((LAYER_MB * 3 / 4))M /dev/urandom | base64 -w 76 > "$d/files$i/big"
    for j in $(seq 500); do head -c 2048 /dev/urandom | base64 > "$d/files$i/small$j"; done
    tar -C "$d" -cf "$work/layer$i.tar" .
    diff_ids+="\"sha256:$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)\","
    gzip -c -1 "$work/layer$i.tar" > "$work/layer$i.tar.gz"
    rm -rf "$d" "$work/layer$i.tar"
    size=$(stat -c %s "$work/layer$i.tar.gz"); total_compressed=$((total_compressed + size))
    dg=$(push_blob "$work/layer$i.tar.gz")
    echo "$dg" > "$work/layer$i.digest"
    layers_json+="{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$dg\",\"size\":$size},"
done
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "${diff_ids%,}" > "$work/config.json"
cdg=$(push_blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]}' \
    "$cdg" "$(stat -c %s "$work/config.json")" "${layers_json%,}" > "$work/manifest.json"
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$work/manifest.json" \
    "http://$reg/v2/bench/manifests/latest" >/dev/null
rm -f "$work"/layer*.tar.gz

# Shell baseline: per layer curl → file, sha256sum, gzip -d, tar -x; layers in parallel.
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
mkdir -p "$work/shell"
t0=$(date +%s.%N)
pids=()
for i in $(seq $LAYERS); do
    (
        dg=$(cat "$work/layer$i.digest"); dir="$work/shell/$i"; mkdir -p "$dir/root"
        curl -sf -o "$dir/blob" "http://$reg/v2/bench/blobs/$dg"
        [[ "sha256:$(sha256sum "$dir/blob" | cut -d' ' -f1)" == "$dg" ]] || { echo "digest mismatch" >&2; exit 1; }
        gzip -dc "$dir/blob" > "$dir/blob.tar"
        tar -xf "$dir/blob.tar" -C "$dir/root"
    ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done  # not a bare `wait`: the registry is a job too
t1=$(date +%s.%N)
shell_s=$(echo "$t1 - $t0" | bc -l)
uncompressed=$(du -sb "$work/shell" --exclude=blob --exclude=blob.tar | cut -f1)
rm -rf "$work/shell"

# crisp: the pull benchmark test in this package's test binary.
swift build -c "$CONFIG" --build-tests $([[ $CONFIG == release ]] && echo "-Xswiftc -enable-testing") >&2
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
out=$(CRISP_BENCH_IMAGE="$reg/bench:latest" CRISP_BENCH_DRIVER="${CRISP_BENCH_DRIVER:-overlay}" \
      swift test -c "$CONFIG" --skip-build --filter PullBenchmark 2>&1 | grep '^BENCH ' || true)
[[ -n "$out" ]] || { echo "crisp pull benchmark produced no result" >&2; exit 1; }
crisp_s=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$out")
rss_kb=$(sed -E 's/.*peak_rss=([0-9]+) kB.*/\1/' <<<"$out")
mb=$(echo "$uncompressed / 1000000" | bc -l)

printf '\nimage: %d layers, %.0f MB compressed, %.0f MB uncompressed (build: %s)\n\n' $LAYERS \
    "$(echo "$total_compressed / 1000000" | bc -l)" "$mb" "$CONFIG"
printf '| what | seconds | MB/s (uncompressed) | peak RSS | ratio to shell (target <= 1.0) |\n|---|---|---|---|---|\n'
printf '| shell: curl, sha256sum, gzip -d, tar -x | %.2f | %.0f | - | 1.00 |\n' "$shell_s" "$(echo "$mb / $shell_s" | bc -l)"
printf '| crisp pull (%s driver) | %.2f | %.0f | %.1f MB (target < 100 MB) | %.2f |\n' "${CRISP_BENCH_DRIVER:-overlay}" \
    "$crisp_s" "$(echo "$mb / $crisp_s" | bc -l)" "$(echo "$rss_kb / 1024" | bc -l)" "$(echo "$crisp_s / $shell_s" | bc -l)"
