#!/usr/bin/env bash
# pulltime side by side with the pullers it measures (issue 6).
#
# Same images, same registry (the CNCF distribution registry, `docker-registry`,
# on a free loopback port), same destination filesystem, one run with the order
# of the tools rotated every round. Cold pulls timed per tool:
#   pulltime        `pulltime pull --dest DIR` (release build, streaming mode)
#   ctr-native      `ctr images pull --plain-http --snapshotter native`
#   ctr-overlayfs   the same with the overlayfs snapshotter
#   skopeo+umoci    `skopeo copy docker://... oci:DIR` + `umoci unpack --rootless` (gzip only)
#   tar-x           `tar -xf` of the already-decompressed layers into one dir (extraction alone)
#   pigz-tar        `pigz -dc L | tar -xf -` per layer (zstd-tar: `zstd -dc L | tar -xf -`)
#   gzip-dc pigz-dc zstd-dc   decompression alone, to /dev/null
#   curl            every layer blob fetched from the registry to /dev/null (network alone)
# then a tmpfs variant (root only) and the peak RSS of pulltime for a ~1 GB layer.
#
# Cold means: a fresh destination directory per tool and round, and a fresh
# containerd (new root: empty content store, no snapshots) per ctr pull; `sync`
# before each timed command so one tool's writeback is not charged to the next.
# DEFER: on disk nothing is deleted until the end of the run. On ext4 without a
# journal (as here) inode allocation skips inodes deleted in the last seconds to
# minutes (ext4 `recently_deleted`), so `rm -rf` of one tool's 13,000 files made
# the next tool's extraction cost ~3x the system time; deleting between runs
# (including `ctr images rm --sync`, whose GC deletes the snapshots) would
# measure that, not the tools. Needs free space for all outputs (~15 GB).
# The page cache is
# NOT dropped (the machine is shared): the registry's blobs are cached for every
# tool alike. `--drop-caches` (root) drops it before every timed command.
#
# Usage: benches/peers.sh [--rounds N] [--out FILE] [--pulltime BIN] [--work DIR]
#                         [--cache DIR] [--images LIST] [--no-tmpfs] [--no-rss]
#                         [--drop-caches]
# Needs: docker-registry skopeo umoci containerd ctr tar gzip zstd curl python3,
# pigz; as root, missing containerd and pigz are installed with apt-get.
set -euo pipefail

ROUNDS=3
OUT=""
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PULLTIME="$REPO/target/release/pulltime"
WORK_PARENT=/var/tmp
CACHE=/var/tmp/pulltime-peers-cache
# PROFILE:COMPRESSION:SCALE, space separated; the first is the headline image.
IMAGES="$REPO/profiles/images/many-small-files.toml:gzip:1 sn-compose-post-multistage:gzip:0.5 sn-compose-post-multistage:zstd:0.5 ml-object-detection-multistage:gzip:0.2 ml-object-detection-multistage:zstd:0.2"
TMPFS=1
RSS=1
DROP=0

die() { echo "peers.sh: $*" >&2; exit 1; }
say() { echo "peers.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --pulltime) PULLTIME="$2"; shift 2 ;;
    --work) WORK_PARENT="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    --images) IMAGES="$2"; shift 2 ;;
    --no-tmpfs) TMPFS=0; shift ;;
    --no-rss) RSS=0; shift ;;
    --drop-caches) DROP=1; shift ;;
    -h|--help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case "$ROUNDS" in ''|*[!0-9]*|0) die "--rounds must be a positive integer, got '$ROUNDS'" ;; esac
IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1
[ "$DROP" = 1 ] && [ "$IS_ROOT" = 0 ] && die "--drop-caches needs root"

# ---------------------------------------------------------------- checks
need_pkg() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$IS_ROOT" = 1 ] && command -v apt-get >/dev/null 2>&1 && [ -n "${2:-}" ]; then
    say "$1 is missing: installing the Debian package $2 with apt-get (running as root)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null || die "apt-get install $2 failed"
    command -v "$1" >/dev/null 2>&1 && return 0
  fi
  die "$1 not found on PATH; install the Debian package $2 (apt-get install $2)"
}
need_pkg docker-registry docker-registry
need_pkg skopeo skopeo
need_pkg umoci umoci
need_pkg containerd containerd
need_pkg ctr containerd
need_pkg pigz pigz
for c in tar gzip zstd curl python3 sync; do need_pkg "$c" "$c"; done
[ -x "$PULLTIME" ] || die "no pulltime binary at $PULLTIME: run 'cargo build --release' (or pass --pulltime BIN)"
TIME_V=""; /usr/bin/time -v true >/dev/null 2>&1 && TIME_V=/usr/bin/time

mkdir -p "$WORK_PARENT" "$CACHE"
W="$(mktemp -d "$WORK_PARENT/pulltime-peers.XXXXXX")"
REG_PID=""; CTRD_PID=""; TMPFS_MNT=""
cleanup() {
  set +e
  if [ -n "$CTRD_PID" ]; then kill "$CTRD_PID" 2>/dev/null; wait "$CTRD_PID" 2>/dev/null; fi
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; fi
  if [ -n "$TMPFS_MNT" ]; then umount "$TMPFS_MNT" 2>/dev/null; fi
  # containerd's overlayfs snapshots can stay mounted if it died mid-pull.
  if [ -d "$W" ]; then
    grep -o " $W[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
RESULTS="$W/results.tsv"; : > "$RESULTS"
say "work dir $W ($(stat -f -c %T "$W"), $(findmnt -n -o FSTYPE -T "$W" 2>/dev/null))"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# ---------------------------------------------------------------- registry
PORT="$(free_port)"
mkdir -p "$W/registry"
cat > "$W/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry/data
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$W/registry/config.yml" > "$W/registry/log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null || die "docker-registry did not start (log: $(tail -3 "$W/registry/log"))"
REG="127.0.0.1:$PORT"
say "distribution registry on $REG"

# ---------------------------------------------------------------- images
# Synthesised layouts are deterministic, so they are cached in $CACHE.
declare -a NAMES=()
declare -A LAYOUT=() COMP=()
synth_push() { # profile compression scale -> sets NAME
  local profile="$1" comp="$2" scale="$3" base
  base="$(basename "$profile" .toml)"
  NAME="$base-$comp-s$scale"
  local dir="$CACHE/$NAME"
  if [ ! -f "$dir/index.json" ]; then
    say "synthesising $NAME (cached in $dir)"
    rm -rf "$dir"
    "$PULLTIME" synth "$profile" --to "oci:$dir" --tag "$base" --compression "$comp" --scale "$scale" >&2
  fi
  skopeo copy -q --dest-tls-verify=false "oci:$dir:$base" "docker://$REG/$NAME:latest" >&2 \
    || die "pushing $NAME with skopeo failed"
  LAYOUT[$NAME]="$dir:$base"; COMP[$NAME]="$comp"
}
# Layer blob paths of an image, bottom first.
layer_blobs() { # layout-dir tag
  python3 - "$1" "$2" <<'EOF'
import json, sys, os
d, tag = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(d, "index.json")))
m = next(m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
blob = lambda dg: os.path.join(d, "blobs", *dg.split(":"))
man = json.load(open(blob(m["digest"])))
for l in man["layers"]:
    print(blob(l["digest"]), l["digest"], l["size"])
EOF
}
for spec in $IMAGES; do
  IFS=: read -r p c s <<<"$spec"
  synth_push "$p" "$c" "$s"
  NAMES+=("$NAME")
  # The already-decompressed layers for tar -xf (prepared once, untimed).
  mkdir -p "$W/tars/$NAME"
  i=0
  while read -r path _ _; do
    case "$c" in gzip) pigz -dc "$path" ;; zstd) zstd -qdc "$path" ;; *) cat "$path" ;; esac > "$W/tars/$NAME/$i.tar"
    i=$((i + 1))
  done < <(layer_blobs "${LAYOUT[$NAME]%:*}" "${LAYOUT[$NAME]##*:}")
done

# ---------------------------------------------------------------- containerd
# A fresh containerd (new root, state and socket under $W/c) for every timed ctr
# pull: its content store would otherwise already hold the blobs. Started and
# stopped outside the timing; its root stays on disk until the end (see DEFER).
UNPIGZ="$(command -v unpigz || true)"
CTRD_N=0
start_containerd() {
  CTRD_N=$((CTRD_N + 1))
  CT="$W/c/$CTRD_N"
  mkdir -p "$CT"
  cat > "$CT/config.toml" <<EOF
version = 2
root = "$CT/root"
state = "$CT/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CT/sock"
[ttrpc]
  address = "$CT/sock.ttrpc"
[debug]
  address = ""
EOF
  containerd --config "$CT/config.toml" > "$CT/log" 2>&1 &
  CTRD_PID=$!
  SOCK="$CT/sock"
  for _ in $(seq 100); do ctr -a "$SOCK" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "containerd did not start (log: $(tail -3 "$CT/log"))"
}
stop_containerd() {
  kill "$CTRD_PID" 2>/dev/null || true
  wait "$CTRD_PID" 2>/dev/null || true
  CTRD_PID=""
}
start_containerd
say "containerd $(containerd --version | awk '{print $3}'); unpigz on PATH at its start: ${UNPIGZ:-no}"
# Plugins load after the socket answers: ask a few times before concluding.
OVERLAY=0
for _ in $(seq 30); do
  if ctr -a "$SOCK" plugins ls 2>/dev/null | grep -q 'overlayfs.*ok'; then OVERLAY=1; break; fi
  sleep 0.2
done
[ "$OVERLAY" = 1 ] || say "the overlayfs snapshotter is not available here ($(ctr -a "$SOCK" plugins ls 2>&1 | grep overlayfs)): ctr-overlayfs skipped"
stop_containerd

# ---------------------------------------------------------------- tools
# Each tool: run_TOOL IMAGE DIR (DIR does not exist yet; on the filesystem under test).
run_pulltime() {
  mkdir -p "$2.tmp"
  "$PULLTIME" pull "$REG/$1:latest" --dest "$2" --tmp-dir "$2.tmp" -q --json "$W/json/$1.$FS.json"
}
run_ctr() { ctr -a "$SOCK" images pull --plain-http --snapshotter "$3" "$REG/$1:latest" >/dev/null; }
run_ctr_native() { run_ctr "$1" "$2" native; }
run_ctr_overlayfs() { run_ctr "$1" "$2" overlayfs; }
run_skopeo_umoci() {
  skopeo copy -q --src-tls-verify=false "docker://$REG/$1:latest" "oci:$2.oci:img" >/dev/null
  umoci unpack --rootless --image "$2.oci:img" "$2" >/dev/null
}
run_tar_x() { mkdir -p "$2"; for t in "$W/tars/$1"/*.tar; do tar -xf "$t" -C "$2"; done; }
run_pigz_tar() {
  mkdir -p "$2"
  local d="pigz -dc"; [ "${COMP[$1]}" = zstd ] && d="zstd -qdc"
  while read -r path _ _; do $d "$path" | tar -xf - -C "$2"; done < <(blobs_of "$1")
}
decomp() { while read -r path _ _; do $2 "$path" > /dev/null; done < <(blobs_of "$1"); }
run_gzip_dc() { decomp "$1" "gzip -dc"; }
run_pigz_dc() { decomp "$1" "pigz -dc"; }
run_zstd_dc() { decomp "$1" "zstd -qdc"; }
run_curl() {
  while read -r _ digest _; do
    curl -fsS -o /dev/null "http://$REG/v2/$1/blobs/$digest"
  done < <(blobs_of "$1")
}
blobs_of() { layer_blobs "${LAYOUT[$1]%:*}" "${LAYOUT[$1]##*:}"; }

tools_for() { # image fs-kind
  local t=(pulltime)
  if [ "$2" = disk ]; then
    t+=(ctr-native)
    [ "$OVERLAY" = 1 ] && t+=(ctr-overlayfs)
    [ "${COMP[$1]}" = gzip ] && t+=(skopeo+umoci)
  fi
  t+=(tar-x)
  if [ "${COMP[$1]}" = gzip ]; then t+=(pigz-tar gzip-dc pigz-dc); else t+=(zstd-tar zstd-dc); fi
  [ "$2" = disk ] && t+=(curl)
  echo "${t[@]}"
}
fn_of() {
  case "$1" in
    pulltime) echo run_pulltime ;; ctr-native) echo run_ctr_native ;; ctr-overlayfs) echo run_ctr_overlayfs ;;
    skopeo+umoci) echo run_skopeo_umoci ;; tar-x) echo run_tar_x ;; pigz-tar|zstd-tar) echo run_pigz_tar ;;
    gzip-dc) echo run_gzip_dc ;; pigz-dc) echo run_pigz_dc ;; zstd-dc) echo run_zstd_dc ;; curl) echo run_curl ;;
  esac
}

run_rounds() { # fs-label base-dir images...
  FS="$1"; local base="$2"; shift 2
  local kind=disk; [ "$FS" = tmpfs ] && kind=tmpfs
  mkdir -p "$W/json"
  for r in $(seq "$ROUNDS"); do
    for img in "$@"; do
      read -r -a tools <<<"$(tools_for "$img" "$kind")"
      local n=${#tools[@]} off=$(( (r - 1) % ${#tools[@]} ))
      for k in $(seq 0 $((n - 1))); do
        local tool="${tools[$(( (k + off) % n ))]}"
        local dir="$base/r$r-$(echo "$tool" | tr -c 'a-z0-9\n' '_')-$img"
        case "$tool" in ctr-*) start_containerd ;; esac
        sync
        [ "$DROP" = 1 ] && echo 3 > /proc/sys/vm/drop_caches
        local t0 t1
        t0=$(now)
        "$(fn_of "$tool")" "$img" "$dir"
        t1=$(now)
        printf '%s\t%s\t%s\t%s\t%s\n' "$FS" "$img" "$tool" "$r" "$(python3 -c "print(round($t1 - $t0, 3))")" >> "$RESULTS"
        say "$FS round $r $img $tool $(tail -1 "$RESULTS" | cut -f5 | cut -c1-6) s"
        case "$tool" in ctr-*) stop_containerd ;; esac
        # On disk, outputs stay until the end of the run: deleting 13,000 files
        # makes the next tool's file creation pay (see DEFER above).
        if [ "$kind" = tmpfs ]; then rm -rf "$dir" "$dir.tmp" "$dir.oci"; fi
      done
    done
  done
}

# ---------------------------------------------------------------- runs
mkdir -p "$W/disk"
run_rounds ext4 "$W/disk" "${NAMES[@]}"
if [ "$TMPFS" = 1 ]; then
  if [ "$IS_ROOT" = 1 ]; then
    TMPFS_MNT="$W/tmpfs"; mkdir -p "$TMPFS_MNT"
    mount -t tmpfs -o size=4g tmpfs "$TMPFS_MNT"
    run_rounds tmpfs "$TMPFS_MNT" "${NAMES[0]}"
    umount "$TMPFS_MNT"; TMPFS_MNT=""
  else
    say "not root: the tmpfs variant is skipped (mounting a tmpfs needs root)"
  fi
fi

RSS_LINES=""
if [ "$RSS" = 1 ]; then
  for scale in 0.1 1; do
    synth_push "$REPO/profiles/images/one-gigabyte-layer.toml" gzip "$scale"
    dir="$W/disk/rss-$scale"
    sync
    if [ -n "$TIME_V" ]; then
      "$TIME_V" -v "$PULLTIME" pull "$REG/$NAME:latest" --dest "$dir" --tmp-dir "$W/disk" -q 2> "$W/time-v.txt" \
        || die "pulltime pull of $NAME for the RSS measurement failed: $(grep -v '^\s' "$W/time-v.txt" | head -5)"
      kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time-v.txt")"
      how="/usr/bin/time -v"
    else
      "$PULLTIME" pull "$REG/$NAME:latest" --dest "$dir" --tmp-dir "$W/disk" -q &
      pid=$!; kb=0
      while kill -0 "$pid" 2>/dev/null; do
        v="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
        [ -n "$v" ] && kb="$v"; sleep 0.05
      done
      wait "$pid" || die "pulltime pull of $NAME for the RSS measurement failed"
      how="VmHWM polled from /proc"
    fi
    tarb="$(du -sb "$dir" | cut -f1)"
    RSS_LINES+="| $NAME | $(python3 -c "print(f'{$tarb/1e6:.0f}')") MB unpacked | $(python3 -c "print(f'{$kb/1024:.1f}')") MiB | $how |"$'\n'
    rm -rf "$dir"
  done
fi

# ---------------------------------------------------------------- report
CPU="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
REPORT="$(python3 - "$RESULTS" <<EOF
import csv, statistics, sys, collections
rows = collections.defaultdict(list)
order = []
for fs, img, tool, r, s in csv.reader(open(sys.argv[1]), delimiter="\t"):
    key = (fs, img)
    if key not in order: order.append(key)
    rows[key, tool].append(float(s))
print("Machine: $(nproc) CPUs ($CPU), kernel $(uname -r), destination filesystem $(findmnt -n -o FSTYPE -T "$W") ($(findmnt -n -o SOURCE -T "$W")) under $WORK_PARENT.")
print("containerd $(containerd --version | awk '{print $3}'), unpigz on PATH when containerd started: ${UNPIGZ:-no}; skopeo $(skopeo --version | awk '{print $3}'), umoci $(umoci --version | awk '{print $3}'); $ROUNDS rounds, tool order rotated every round; page cache not dropped$( [ "$DROP" = 1 ] && echo ' (dropped before every timed command)' ).")
print()
for fs, img in order:
    tools = [t for (k, t) in rows if k == (fs, img)]
    base = statistics.median(rows[(fs, img), "pulltime"])
    print(f"### {img} on {fs}")
    print()
    print("| tool | median s | min s | max s | tool / pulltime |")
    print("|---|---:|---:|---:|---:|")
    for t in tools:
        v = rows[(fs, img), t]
        m = statistics.median(v)
        print(f"| {t} | {m:.2f} | {min(v):.2f} | {max(v):.2f} | {m / base:.2f}x |")
    print()
EOF
)"
{
  echo "$REPORT"
  if [ -n "$RSS_LINES" ]; then
    echo
    echo "### Peak RSS of pulltime pull (streaming, gzip)"
    echo
    echo "| image | size | peak RSS | measured with |"
    echo "|---|---:|---:|---|"
    printf '%s' "$RSS_LINES"
  fi
} | tee ${OUT:+"$OUT"}
if [ -n "$OUT" ]; then
  # The raw times and pulltime's last JSON record per image, for analysis.
  mkdir -p "$OUT.data"
  cp "$RESULTS" "$OUT.data/results.tsv"
  cp "$W"/json/*.json "$OUT.data/" 2>/dev/null || true
  say "raw data in $OUT.data/"
fi
