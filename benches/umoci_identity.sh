#!/usr/bin/env bash
# pulltime's root filesystems against umoci's, on the Debian-built images
# (benches/images/build.sh): every tag of the layout is served by
# `pulltime serve`, pulled by pulltime in each of its ways of applying layers
# (streaming, streaming with two appliers, staged), unpacked by `umoci unpack`,
# and the trees compared entry by entry with benches/tree_diff.py: type, mode,
# owner, size, content, link target, device number, xattrs, mtime to the
# nanosecond and hard-link identity. Prints a Markdown table; exits 1 if any
# tree differs (the differences are printed above the table).
#
#   benches/umoci_identity.sh [--layout DIR] [--tags "v1 toolchain ..."]
#                             [--work DIR] [--pulltime BIN]
#
# --layout: an OCI layout (default /var/cache/pulltime-images/debian-small,
# gzip: umoci 0.4.7 cannot unpack zstd layers); --tags: default every tag in
# its index.json. --work (default /dev/shm, tmpfs) holds one image's trees at
# a time, about 3x its unpacked size. Needs root: without it the two tools
# part by design (pulltime drops set-id bits and skips device nodes, umoci
# --rootless keeps the bits, makes placeholder files and records owners in
# `user.rootlesscontainers` attributes: 31 such differences on v1).
# docs/performance.md ("The same tree as umoci") quotes it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
die() { echo "umoci_identity.sh: $*" >&2; exit 2; }

LAYOUT=/var/cache/pulltime-images/debian-small
TAGS=""
WORK=/dev/shm
PULLTIME="$here/../target/release/pulltime"
while [ $# -gt 0 ]; do
  case "$1" in
    --layout) LAYOUT=$2; shift 2 ;;
    --tags) TAGS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --pulltime) PULLTIME=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -f "$LAYOUT/index.json" ] || die "$LAYOUT is not an OCI layout (build one with benches/images/build.sh)"
[ -x "$PULLTIME" ] || die "$PULLTIME is not built (cargo build --release)"
command -v umoci >/dev/null || die "umoci is needed: apt-get install -y umoci"
if [ -z "$TAGS" ]; then
  TAGS=$(python3 -c 'import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    print(m.get("annotations", {}).get("org.opencontainers.image.ref.name", ""))' "$LAYOUT/index.json" | xargs)
fi
[ -n "$TAGS" ] || die "no tagged image in $LAYOUT/index.json"
[ "$(id -u)" = 0 ] || die "needs root: rootless, pulltime and umoci part by design (see --help)"

W=$(mktemp -d "$WORK/pulltime-umoci-identity.XXXXXX")
bench_cleanup_on_exit "$W"
PORT=$(free_port)
"$PULLTIME" serve --layout "img=$LAYOUT" --addr "127.0.0.1:$PORT" > "$W/serve.log" 2>&1 &
pids+=($!)
ready grep -q listening "$W/serve.log"

declare -A HOW=([streaming]="" [appliers-2]="--appliers 2" [staged]="--mode staged")
rows=()
failed=0
for tag in $TAGS; do
  umoci unpack --image "$LAYOUT:$tag" "$W/umoci" > /dev/null \
    || die "umoci unpack of $tag failed"
  for way in streaming appliers-2 staged; do
    mkdir -p "$W/tmp"
    # shellcheck disable=SC2086 # HOW holds flags
    "$PULLTIME" pull "127.0.0.1:$PORT/img:$tag" --dest "$W/pulled" --tmp-dir "$W/tmp" -q ${HOW[$way]} \
      || die "pulltime pull of $tag ($way) failed"
    echo "== $tag, $way"
    if python3 "$here/tree_diff.py" "$W/pulled" "$W/umoci/rootfs" > "$W/diff"; then
      result=identical
    else
      result="**differs**"; failed=1
    fi
    cat "$W/diff"
    entries=$(sed -n '1s/ entries.*//p' "$W/diff")
    rows+=("| $tag | $entries | $way | $result |")
    rm -rf "$W/pulled" "$W/tmp"
  done
  rm -rf "$W/umoci"
done

echo
echo "$(date -u +%F), $(uname -r), $(umoci --version), pulltime $("$PULLTIME" --version | awk '{print $2}'), trees on $(stat -f -c %T "$W"), as root"
echo
echo "| image | entries | pulltime applying | against umoci unpack |"
echo "|---|---:|---|---|"
printf '%s\n' "${rows[@]}"
exit "$failed"
