#!/usr/bin/env bash
# The pullers people run, decomposed side by side on one image: the table of
# docs/peers.md.
#
#   benches/pullers.sh [--image TAG] [--runs N] [--work DIR] [--pullers LIST]
#
# Starts the CNCF registry (docker-registry), dockerd and containerd with all
# their state under a fresh work directory (default under /var/tmp, ext4 here),
# pushes the Debian-built image (benches/images/build.sh toolchain; TAG default
# `toolchain`) and runs
#   pulltime compare --puller LIST REF --runs N --records DIR --waterfalls DIR --markdown FILE
# (rounds in rotating order; see docs/peers.md for what is removed when). Prints
# the machine, the filesystem and the table; keeps records, waterfalls and logs
# in the work directory. Needs root, and target/release/pulltime built.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PULLTIME="$REPO/target/release/pulltime"
TAG=toolchain
RUNS=3
WORK_PARENT=/var/tmp
PULLERS=pulltime,docker,containerd,podman,skopeo-umoci
while [ $# -gt 0 ]; do
  case "$1" in
    --image) TAG="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --work) WORK_PARENT="$2"; shift 2 ;;
    --pullers) PULLERS="$2"; shift 2 ;;
    *) echo "usage: $0 [--image TAG] [--runs N] [--work DIR] [--pullers LIST]" >&2; exit 2 ;;
  esac
done
cache="${PULLTIME_IMAGE_CACHE:-/var/cache/pulltime-images}"
[ -x "$PULLTIME" ] || { echo "build first: cargo build --release" >&2; exit 1; }
grep -q "\"$TAG\"" "$cache/debian-small/index.json" 2>/dev/null || "$REPO/benches/images/build.sh" "$TAG"

W=$(mktemp -d "$WORK_PARENT/pulltime-pullers.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/registry.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $W/registry } }
http: { addr: 127.0.0.1:$port }
YML
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 & pids+=($!)
dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$W/docker/root" \
  --exec-root "$W/docker/exec" --pidfile "$W/docker/pid" -H "unix://$W/docker/d.sock" \
  > "$W/dockerd.log" 2>&1 & pids+=($!)
mkdir -p "$W/containerd"
cat > "$W/containerd/config.toml" <<TOML
version = 2
root = "$W/containerd/root"
state = "$W/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/containerd/c.sock"
[ttrpc]
  address = "$W/containerd/t.sock"
TOML
containerd --config "$W/containerd/config.toml" > "$W/containerd.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  [ -S "$W/docker/d.sock" ] && [ -S "$W/containerd/c.sock" ] && curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break
  sleep 0.2
done
ref="127.0.0.1:$port/debian/$TAG:v1"
skopeo copy -q --dest-tls-verify=false "oci:$cache/debian-small:$TAG" "docker://$ref"

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "work dir: $W ($(df -T "$W" | awk 'NR==2{print $2}'); pullers' stores and pulltime's root filesystems all there)"
echo "pulltime: $("$PULLTIME" --version)"
"$PULLTIME" compare --puller "$PULLERS" "$ref" --runs "$RUNS" \
  --docker-host "unix://$W/docker/d.sock" --containerd-address "$W/containerd/c.sock" \
  --podman-root "$W/podman/root" --podman-runroot "$W/podman/run" --tmp-dir "$W" \
  --records "$W/records" --waterfalls "$W/records" --markdown "$W/table.md"
echo
echo "records and waterfalls: $W/records"
