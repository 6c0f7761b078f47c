#!/usr/bin/env bash
# The filesystem's memory of deletions (docs/performance.md): how much a recent
# deletion slows extraction next to it, for pulltime's applier and for `tar -x`
# alike, and how much is left after a wait (--window, 61 s by default: ext4's
# window once the blocks are written back; `pulltime --settle` waits 361 s,
# because a run's own allocations dirty the blocks again).
#
#   benches/deleted_nearby.sh [--work DIR] [--other DIR] [--image oci:LAYOUT:TAG]
#                             [--stage-costs BIN] [--window SECONDS]
#
# The image's layers (default: the Debian-built `toolchain` image of
# benches/images/build.sh) are decompressed once into plain tars. Then, per tool
# (pulltime = examples/stage_costs apply, tar = `tar -xf` of each layer in
# order), `sync` before every timed extraction:
#   quiet-here    into WORK/TOOL-a, nothing deleted for minutes
#   quiet-away    into OTHER/TOOL-a (same filesystem, another directory)
#   ...delete WORK/TOOL-a (as a pull tool deletes its previous tree)...
#   after-here    into WORK/TOOL-b at once, next to the deleted inodes
#   after-away    into OTHER/TOOL-b at once
#   ...sync, wait until WINDOW (61) s after the deletion, as --settle does...
#   settled-here  into WORK/TOOL-c
# and prints wall and system time per step. WORK and OTHER must be on the same
# filesystem (default /var/tmp and /var/lib, ext4 here); everything is deleted
# at the end. Needs root only to write into /var/lib.
set -euo pipefail
export LC_ALL=C
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK=/var/tmp
OTHER=/var/lib
IMAGE="oci:${PULLTIME_IMAGE_CACHE:-/var/cache/pulltime-images}/debian-small:toolchain"
STAGE_COSTS="$REPO/target/release/examples/stage_costs"
WINDOW=61
die() { echo "deleted_nearby.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK="$2"; shift 2 ;;
    --other) OTHER="$2"; shift 2 ;;
    --image) IMAGE="$2"; shift 2 ;;
    --stage-costs) STAGE_COSTS="$2"; shift 2 ;;
    --window) WINDOW="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -x "$STAGE_COSTS" ] || die "no $STAGE_COSTS: cargo build --release --example stage_costs"
case "$IMAGE" in oci:*:*) ;; *) die "--image must be oci:LAYOUT:TAG" ;; esac
layout=${IMAGE#oci:}; tag=${layout##*:}; layout=${layout%:*}
[ -f "$layout/index.json" ] || die "no OCI layout at $layout (benches/images/build.sh $tag builds it)"
W=$(mktemp -d "$WORK/pulltime-nearby.XXXXXX")
O=$(mktemp -d "$OTHER/pulltime-nearby.XXXXXX")
trap 'rm -rf "$W" "$O"' EXIT
[ "$(stat -f -c %T "$W")" = "$(stat -f -c %T "$O")" ] || die "$WORK and $OTHER are on different filesystem types"
[ "$(stat -c %d "$W")" = "$(stat -c %d "$O")" ] || die "$WORK and $OTHER are on different filesystems"

# The image's layers as plain tars, in order.
mkdir -p "$W/tars"
python3 - "$layout" "$tag" "$W/tars" <<'PY'
import json, subprocess, sys
layout, tag, out = sys.argv[1:]
index = json.load(open(f"{layout}/index.json"))
m = next(x for x in index["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
blob = lambda d: f"{layout}/blobs/{d.replace(':', '/')}"
manifest = json.load(open(blob(m["digest"])))
for i, l in enumerate(manifest["layers"]):
    tool = "zstd" if "zstd" in l["mediaType"] else "gzip"
    with open(f"{out}/{i:03}.tar", "wb") as f:
        subprocess.run([tool, "-dc", blob(l["digest"])], stdout=f, check=True)
PY
tars=("$W"/tars/*.tar)
entries=$(for t in "${tars[@]}"; do tar -tf "$t"; done | wc -l)

extract() { # TOOL DIR
  case "$1" in
    pulltime) "$STAGE_COSTS" apply "$2" "${tars[@]}" >/dev/null ;;
    tar) mkdir -p "$2"; for t in "${tars[@]}"; do tar -xf "$t" -C "$2"; done ;;
  esac
}
timed() { # STEP TOOL DIR
  sync
  local t0 c0 c1
  t0=$EPOCHREALTIME
  c0=$(awk '{print $17}' /proc/$$/stat)
  extract "$2" "$3"
  c1=$(awk '{print $17}' /proc/$$/stat)
  printf '%-13s %-9s %6.2f s wall %6.2f s system\n' "$1" "$2" \
    "$(echo "$EPOCHREALTIME - $t0" | bc)" "$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l)"
}

echo "machine: $(nproc) cores, $(uname -r), $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
echo "image: $IMAGE (${#tars[@]} layers, $entries entries)"
echo "filesystem: $(stat -f -c %T "$W") on $(df --output=source "$W" | tail -1), mount options: $(findmnt -n -o OPTIONS -T "$W")"
echo "work: $W   other: $O"
for tool in pulltime tar; do
  timed quiet-here "$tool" "$W/$tool-a"
  timed quiet-away "$tool" "$O/$tool-a"
  rm -rf "$W/$tool-a"
  deleted=$EPOCHREALTIME
  timed after-here "$tool" "$W/$tool-b"
  timed after-away "$tool" "$O/$tool-b"
  sync
  left=$(echo "$WINDOW - ($EPOCHREALTIME - $deleted)" | bc)
  if [ "$(echo "$left > 0" | bc)" = 1 ]; then sleep "$left"; fi
  timed settled-here "$tool" "$W/$tool-c"
  # This tool's trees stay until the end, so the next tool starts quiet.
done
