#!/usr/bin/env bash
# What real trees cost to extract here: pulls of the Debian-built images
# (benches/images/build.sh all) by pulltime, on ext4 and on tmpfs, and by docker
# and containerd on ext4 (pulltime compare --puller), then
#   pulltime calibrate --from-records ...
# per filesystem and puller: the fitted per-file, per-directory, per-symlink and
# per-byte costs with every residual. docs/model.md quotes the result.
#
#   benches/fit_real.sh [--runs N] [--work DIR] [--no-peers]
#
# Needs root, docker-registry, skopeo, and for the peers dockerd and containerd;
# target/release/pulltime built. Everything is written under a new directory in
# --work (default /var/tmp, ext4 here); tmpfs pulls go to /dev/shm.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PULLTIME="$REPO/target/release/pulltime"
RUNS=3
WORK_PARENT=/var/tmp
PEERS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --work) WORK_PARENT="$2"; shift 2 ;;
    --no-peers) PEERS=0; shift ;;
    *) echo "usage: $0 [--runs N] [--work DIR] [--no-peers]" >&2; exit 2 ;;
  esac
done
cache="${PULLTIME_IMAGE_CACHE:-/var/cache/pulltime-images}"
[ -x "$PULLTIME" ] || { echo "build first: cargo build --release" >&2; exit 1; }
"$REPO/benches/images/build.sh" all
W=$(mktemp -d "$WORK_PARENT/pulltime-fit.XXXXXX")
SHM=$(mktemp -d /dev/shm/pulltime-fit.XXXXXX)
source "$REPO/benches/lib.sh"
# The tmpfs pulls go; $W stays (the records and profiles are in it).
bench_cleanup_on_exit "$SHM"
port=$(free_port)
cat > "$W/registry.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $W/registry } }
http: { addr: 127.0.0.1:$port }
YML
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 & pids+=($!)
ready curl -sf "http://127.0.0.1:$port/v2/" -o /dev/null
TAGS="toolchain bigfiles layers"
for t in $TAGS; do
  skopeo copy -q --dest-tls-verify=false "oci:$cache/debian-small:$t" "docker://127.0.0.1:$port/debian/$t:v1"
done
echo "machine: $(nproc) cores, $(uname -r); work $W ($(df -T "$W" | awk 'NR==2{print $2}')), tmpfs $SHM"
mkdir -p "$W/records"
for t in $TAGS; do
  ref="127.0.0.1:$port/debian/$t:v1"
  "$PULLTIME" pull "$ref" --runs "$RUNS" -q --tmp-dir "$W" --json "$W/records/pulltime-ext4-$t.json"
  "$PULLTIME" pull "$ref" --runs "$RUNS" -q --tmp-dir "$SHM" --json "$W/records/pulltime-tmpfs-$t.json"
done
echo "== pulltime, ext4"
"$PULLTIME" calibrate --from-records "$W"/records/pulltime-ext4-*.json --name fit-ext4 --out "$W/fit-ext4.toml"
echo "== pulltime, tmpfs"
"$PULLTIME" calibrate --from-records "$W"/records/pulltime-tmpfs-*.json --name fit-tmpfs --out "$W/fit-tmpfs.toml"
if [ "$PEERS" = 1 ]; then
  dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$W/docker/root" \
    --exec-root "$W/docker/exec" --pidfile "$W/docker/pid" -H "unix://$W/docker/d.sock" \
    > "$W/dockerd.log" 2>&1 & pids+=($!)
  containerd_config "$W/containerd"
  containerd --config "$W/containerd/config.toml" > "$W/containerd.log" 2>&1 & pids+=($!)
  ready test -S "$W/docker/d.sock"
  ready test -S "$W/containerd/c.sock"
  for t in $TAGS; do
    "$PULLTIME" compare --puller docker,containerd "127.0.0.1:$port/debian/$t:v1" --runs "$RUNS" \
      --docker-host "unix://$W/docker/d.sock" --containerd-address "$W/containerd/c.sock" \
      --snapshotter native --tmp-dir "$W" --records "$W/records/peers-$t" > "$W/compare-$t.txt"
  done
  for p in docker containerd; do
    echo "== $p, ext4"
    "$PULLTIME" calibrate --from-records "$W"/records/peers-*/"$p".json --puller "$p" --name "fit-$p" --out "$W/fit-$p.toml"
  done
fi
# Held out: costs fitted without the toolchain image, then that image simulated
# on loopback and set against its measured pulls.
held() { # puller records...
  local p=$1; shift
  "$PULLTIME" calibrate --from-records "$@" --puller "$p" --name "heldout-$p" --out "$W/heldout-$p.toml" 2>/dev/null
  "$PULLTIME" simulate "oci:$cache/debian-small:toolchain" --network loopback --policy "$p" --host "$W/heldout-$p.toml" | sed -n 3p
}
echo "== held out: fitted on bigfiles and layers, simulating toolchain on loopback"
echo "pulltime (ext4):   $(held pulltime "$W"/records/pulltime-ext4-bigfiles.json "$W"/records/pulltime-ext4-layers.json)"
echo "  measured: $(python3 -c "import json,sys; print([round(r['wall_s'],2) for r in json.load(open(sys.argv[1]))['runs']])" "$W/records/pulltime-ext4-toolchain.json")"
if [ "$PEERS" = 1 ]; then
  for p in docker containerd; do
    echo "$p: $(held "$p" "$W/records/peers-bigfiles/$p.json" "$W/records/peers-layers/$p.json")"
    echo "  measured: $(python3 -c "import json,sys; print([round(r['wall_s'],2) for r in json.load(open(sys.argv[1]))['runs']])" "$W/records/peers-toolchain/$p.json")"
  done
fi
echo "records and profiles: $W (remove it when done: it holds every puller's store)"
