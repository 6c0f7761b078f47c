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
#   gzip-dc pigz-dc zstd-dc   decompression alone, to /dev/null, per layer
#   curl            every layer blob fetched from the registry to /dev/null, one by one
#   curl-par        the same, all blobs at once (`curl --parallel`): network alone
#   sha256sum       sha256 alone: every blob and every decompressed layer, per file
# and, with pulltime's own code (examples/stage_costs.rs, per layer):
#   pulltime-sha256            the hasher of a pull, on the same files
#   pulltime-inflate(BACKEND)  the decompressor of a pull, once per --stage-costs binary
#   pulltime-apply             the applier of a pull, on the decompressed layers in order
# then a tmpfs variant (root only) and the peak RSS of pulltime for a ~1 GB layer.
# Every timed command's wall time and CPU (user + system of the processes it
# started, from bash's `times`; for ctr only the client's: the work is done in
# containerd) is recorded, per layer for the single-stage tools. From these the
# report computes the floor of each image (docs/performance.md, "The floor"):
#   floor = max(network, largest single-layer inflate, extraction critical path,
#               (inflate + hash + extract CPU) / cores)
# with the best tool for each term, and prints every tool's time / floor and the
# term that bounds it.
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
#                         [--drop-caches] [--stage-costs "BIN..."] [--warm MIB]
#                         [--no-peers]
# --no-peers: pulltime and the single-stage tools only (no ctr, no skopeo+umoci).
# --work on a tmpfs (e.g. /dev/shm/x): every output is deleted once timed (tmpfs
# forgets deletions, and holds only so much), so an image of GBs fits in memory.
# --warm MIB: write and delete MIB of /dev/shm before every timed command (see
# warm_free_memory below; benches/ab.sh does it by default).
# LIST: space separated, PROFILE:COMPRESSION:SCALE (synthesised) or oci:DIR:TAG (an
# existing OCI layout, e.g. oci:/var/cache/pulltime-images/debian-small:toolchain
# from benches/images/build.sh). --stage-costs: examples/stage_costs binaries, one
# per gzip backend to measure (default target/release/examples/stage_costs; build
# others with `cargo build --release --example stage_costs --no-default-features
# --features gzip-miniz` and copy the binary aside).
# Needs: docker-registry skopeo umoci containerd ctr tar gzip zstd curl python3,
# pigz, sha256sum; as root, missing containerd and pigz are installed with apt-get.
set -euo pipefail
# EPOCHREALTIME and bash's `times` print with a dot.
export LC_ALL=C

ROUNDS=3
OUT=""
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PULLTIME="$REPO/target/release/pulltime"
STAGE_COSTS="$REPO/target/release/examples/stage_costs"
WORK_PARENT=/var/tmp
CACHE=/var/tmp/pulltime-peers-cache
# PROFILE:COMPRESSION:SCALE, space separated; the first is the headline image.
IMAGES="$REPO/profiles/images/many-small-files.toml:gzip:1 sn-compose-post-multistage:gzip:0.5 sn-compose-post-multistage:zstd:0.5 ml-object-detection-multistage:gzip:0.2 ml-object-detection-multistage:zstd:0.2"
TMPFS=1
RSS=1
DROP=0
WARM=0
PEERS=1

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
    --warm) WARM="$2"; shift 2 ;;
    --no-peers) PEERS=0; shift ;;
    --stage-costs) STAGE_COSTS="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case "$ROUNDS" in ''|*[!0-9]*|0) die "--rounds must be a positive integer, got '$ROUNDS'" ;; esac
case "$WARM" in ''|*[!0-9]*) die "--warm takes MiB, got '$WARM'" ;; esac
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
need_pkg sha256sum coreutils
[ -x "$PULLTIME" ] || die "no pulltime binary at $PULLTIME: run 'cargo build --release' (or pass --pulltime BIN)"
# One pulltime-inflate tool per stage_costs binary, named by its gzip backend.
declare -A BACKEND_BIN=()
BACKENDS=()
for b in $STAGE_COSTS; do
  [ -x "$b" ] || die "no stage_costs binary at $b: run 'cargo build --release --example stage_costs' (or pass --stage-costs BIN)"
  be="$("$b" backend)" || die "$b backend failed"
  [ -z "${BACKEND_BIN[$be]:-}" ] || die "two --stage-costs binaries with the gzip backend $be"
  BACKEND_BIN[$be]="$b"; BACKENDS+=("$be")
done
[ ${#BACKENDS[@]} -gt 0 ] || die "--stage-costs names no binary"
SC="${BACKEND_BIN[${BACKENDS[0]}]}"  # sha256, zstd inflate and apply: the first one
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
# results.tsv: fs image tool round wall_s cpu_user_s cpu_sys_s (whole tool);
# stages.tsv: fs image tool round item wall_s cpu_user_s cpu_sys_s (per layer or file).
RESULTS="$W/results.tsv"; : > "$RESULTS"
STAGES="$W/stages.tsv"; : > "$STAGES"
# The registry's CPU (user + system, s) while each timed command ran: it serves
# the blobs on the same cores as the tool, which a remote registry would not.
SERVED="$W/registry_cpu.tsv"; : > "$SERVED"
say "work dir $W ($(findmnt -n -f -o FSTYPE,SOURCE -T "$W" 2>/dev/null))"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------- timing
# Without forks, so that nothing but the timed command adds to the children's CPU.
clock() { NOW_US=${EPOCHREALTIME/./}; }
ms_of() { # VAR "XmY.ZZZs" -> VAR=milliseconds
  local m=${2%%m*} r=${2#*m}
  r=${r%s}
  local sec=${r%.*} frac=${r#*.}000
  printf -v "$1" '%d' $((10#$m * 60000 + 10#$sec * 1000 + 10#${frac:0:3}))
}
TICK_HZ=$(getconf CLK_TCK)
registry_ticks() { # REG_TICKS: utime + stime of the registry process, in clock ticks
  local stat
  stat="$(cat "/proc/$REG_PID/stat")" || die "the registry (pid $REG_PID) is gone"
  read -r -a f <<<"${stat##*) }"
  REG_TICKS=$(( f[11] + f[12] ))
}
child_cpu() { # CH_U CH_S: user and system ms of this shell's reaped children (bash `times`)
  local _self cu cs
  times > "$W/times.out"
  { read -r _self; read -r cu cs; } < "$W/times.out"
  ms_of CH_U "$cu"; ms_of CH_S "$cs"
}
timed() { # command... -> T_WALL (s), T_USER (s), T_SYS (s)
  local w0 u0 s0
  clock; w0=$NOW_US; child_cpu; u0=$CH_U; s0=$CH_S
  "$@"
  child_cpu; clock
  local w=$((NOW_US - w0)) u=$((CH_U - u0)) s=$((CH_S - s0))
  printf -v T_WALL '%d.%06d' $((w / 1000000)) $((w % 1000000))
  printf -v T_USER '%d.%03d' $((u / 1000)) $((u % 1000))
  printf -v T_SYS '%d.%03d' $((s / 1000)) $((s % 1000))
}
stage_rec() { # item wall user sys: one per-layer record of the tool being run
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$FS" "$CUR_IMG" "$CUR_TOOL" "$CUR_ROUND" "$1" "$2" "$3" "$4" >> "$STAGES"
}
timed_item() { # item command...: timed, and recorded as one stage of the current tool
  local item=$1; shift
  timed "$@"
  stage_rec "$item" "$T_WALL" "$T_USER" "$T_SYS"
}
sc_recs() { # items...: the lines of a stage_costs run ($W/sc.out) as stage records
  local i wall u s _b items=("$@")
  while IFS=$'\t' read -r i wall u s _b; do stage_rec "${items[$i]}" "$wall" "$u" "$s"; done < "$W/sc.out"
}

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
  LAYOUT[$NAME]="$dir:$base"
}
oci_push() { # layout-dir tag -> sets NAME
  NAME="$(basename "$1" | tr -c 'a-z0-9\n' -)-$2"
  [ -f "$1/index.json" ] || die "no OCI layout at $1 (benches/images/build.sh builds the Debian ones)"
  LAYOUT[$NAME]="$1:$2"
}
push_image() { # name
  skopeo copy -q --dest-tls-verify=false "oci:${LAYOUT[$1]}" "docker://$REG/$1:latest" >&2 \
    || die "pushing $1 with skopeo failed"
}
# Layer blobs of an image, bottom first: path digest size compression.
layer_blobs() { # layout-dir tag
  python3 - "$1" "$2" <<'EOF'
import json, sys, os
d, tag = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(d, "index.json")))
m = next(m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
blob = lambda dg: os.path.join(d, "blobs", *dg.split(":"))
man = json.load(open(blob(m["digest"])))
for l in man["layers"]:
    mt = l["mediaType"]
    comp = "gzip" if mt.endswith("gzip") else "zstd" if mt.endswith("zstd") else "none"
    print(blob(l["digest"]), l["digest"], l["size"], comp)
EOF
}
for spec in $IMAGES; do
  case "$spec" in
    oci:*) t="${spec#oci:}"; oci_push "${t%:*}" "${t##*:}" ;;
    *) IFS=: read -r p c s <<<"$spec"; synth_push "$p" "$c" "$s" ;;
  esac
  NAMES+=("$NAME")
  # The layer list, read by the tools from a file (no python inside a timing).
  mkdir -p "$W/blobs"
  layer_blobs "${LAYOUT[$NAME]%:*}" "${LAYOUT[$NAME]##*:}" > "$W/blobs/$NAME"
  comps="$(cut -d' ' -f4 "$W/blobs/$NAME" | sort -u)"
  case "$comps" in gzip|zstd) ;; *) die "$NAME: the floor needs layers of one compression, gzip or zstd (has: $(echo $comps))" ;; esac
  COMP[$NAME]="$comps"
  push_image "$NAME"
  # The already-decompressed layers for tar -xf and pulltime-apply (prepared once, untimed).
  mkdir -p "$W/tars/$NAME"
  i=0
  while read -r path _ _ c; do
    case "$c" in gzip) pigz -dc "$path" ;; zstd) zstd -qdc "$path" ;; *) cat "$path" ;; esac > "$W/tars/$NAME/$i.tar"
    i=$((i + 1))
  done < "$W/blobs/$NAME"
  say "$NAME: $i ${COMP[$NAME]} layers, $(awk '{s += $3} END {printf "%.1f", s / 1e6}' "$W/blobs/$NAME") MB compressed, $(du -cb "$W/tars/$NAME"/*.tar | awk 'END {printf "%.1f", $1 / 1e6}') MB of tar"
done

# Every output stays until the end (DEFER): check there is room for them all
# before the first timing, not when a disk-full error ends the run. Per image
# and round, about 8 unpacked trees (pulltime, ctr native and overlayfs, umoci,
# tar, pigz|tar, the applier) and 4 copies of the blobs (content stores, skopeo).
# On a tmpfs work dir each output is deleted once timed: room for the largest.
need=0
for n in "${NAMES[@]}"; do
  t=$(du -cb "$W/tars/$n"/*.tar | awk 'END {print $1}')
  b=$(awk '{s += $3} END {print s}' "$W/blobs/$n")
  if [ "$(stat -f -c %T "$W")" = tmpfs ]; then
    [ $((t + b)) -gt "$need" ] && need=$((t + b))
  else
    need=$((need + ROUNDS * (8 * t + 4 * b)))
  fi
done
avail=$(df --output=avail -B1 "$W" | sed -n 2p)
[ "$avail" -gt "$need" ] || die "the run keeps every output until its end, about $((need / 1000000000)) GB for these images and rounds, but $WORK_PARENT has $((avail / 1000000000)) GB free: fewer --rounds or --images, or free space"

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
# The single-stage tools record each layer (or file) with stage_rec.
layers_of() { # image -> BLOBS DIGESTS (bottom first), TARS, ITEMS (L0 L1 ...)
  local path digest _size _c i=0
  BLOBS=(); DIGESTS=(); TARS=(); ITEMS=()
  while read -r path digest _size _c; do
    BLOBS+=("$path"); DIGESTS+=("$digest"); TARS+=("$W/tars/$1/$i.tar"); ITEMS+=("L$i")
    i=$((i + 1))
  done < "$W/blobs/$1"
}
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
run_tar_x() {
  mkdir -p "$2"; layers_of "$1"
  local i
  for i in "${!TARS[@]}"; do timed_item "L$i" tar -xf "${TARS[$i]}" -C "$2"; done
}
run_pulltime_apply() {
  layers_of "$1"
  "$SC" apply "$2" "${TARS[@]}" > "$W/sc.out"
  sc_recs "${ITEMS[@]}"
}
run_pigz_tar() {
  mkdir -p "$2"; layers_of "$1"
  local d="pigz -dc" b; [ "${COMP[$1]}" = zstd ] && d="zstd -qdc"
  for b in "${BLOBS[@]}"; do $d "$b" | tar -xf - -C "$2"; done
}
decomp() { # image command...
  local img=$1 i; shift
  layers_of "$img"
  for i in "${!BLOBS[@]}"; do timed_item "L$i" "$@" "${BLOBS[$i]}" > /dev/null; done
}
run_gzip_dc() { decomp "$1" gzip -dc; }
run_pigz_dc() { decomp "$1" pigz -dc; }
run_zstd_dc() { decomp "$1" zstd -qdc; }
run_pulltime_inflate() { # image dir backend
  layers_of "$1"
  local bin="$SC"; [ "$3" = zstd ] || bin="${BACKEND_BIN[$3]}"
  "$bin" inflate "${COMP[$1]}" "${BLOBS[@]}" > "$W/sc.out"
  sc_recs "${ITEMS[@]}"
}
# sha256 of what a pull hashes: every blob (its digest) and every tar stream (its diff_id).
run_sha256sum() {
  layers_of "$1"
  local i
  for i in "${!BLOBS[@]}"; do timed_item "blob$i" sha256sum "${BLOBS[$i]}" > /dev/null; done
  for i in "${!TARS[@]}"; do timed_item "tar$i" sha256sum "${TARS[$i]}" > /dev/null; done
}
run_pulltime_sha256() {
  layers_of "$1"
  "$SC" sha256 "${BLOBS[@]}" "${TARS[@]}" > "$W/sc.out"
  local items=() i
  for i in "${!BLOBS[@]}"; do items+=("blob$i"); done
  for i in "${!TARS[@]}"; do items+=("tar$i"); done
  sc_recs "${items[@]}"
}
run_curl() {
  layers_of "$1"
  local d
  for d in "${DIGESTS[@]}"; do curl -fsS -o /dev/null "http://$REG/v2/$1/blobs/$d"; done
}
run_curl_par() { # every blob at once, as a puller fetches its layers
  layers_of "$1"
  local args=() d
  for d in "${DIGESTS[@]}"; do args+=(-o /dev/null "http://$REG/v2/$1/blobs/$d"); done
  curl -fsS --no-progress-meter --parallel --parallel-immediate --parallel-max 16 "${args[@]}"
}

tools_for() { # image fs-kind
  local t=(pulltime) be
  if [ "$2" = disk ] && [ "$PEERS" = 1 ]; then
    t+=(ctr-native)
    [ "$OVERLAY" = 1 ] && t+=(ctr-overlayfs)
    [ "${COMP[$1]}" = gzip ] && t+=(skopeo+umoci)
  fi
  t+=(tar-x pulltime-apply)
  if [ "${COMP[$1]}" = gzip ]; then
    t+=(pigz-tar gzip-dc pigz-dc)
    for be in "${BACKENDS[@]}"; do t+=("pulltime-inflate($be)"); done
  else
    t+=(zstd-tar zstd-dc "pulltime-inflate(zstd)")
  fi
  t+=(sha256sum pulltime-sha256)
  [ "$2" = disk ] && t+=(curl curl-par)
  echo "${t[@]}"
}
fn_of() {
  case "$1" in
    pulltime) echo run_pulltime ;; ctr-native) echo run_ctr_native ;; ctr-overlayfs) echo run_ctr_overlayfs ;;
    skopeo+umoci) echo run_skopeo_umoci ;; tar-x) echo run_tar_x ;; pigz-tar|zstd-tar) echo run_pigz_tar ;;
    gzip-dc) echo run_gzip_dc ;; pigz-dc) echo run_pigz_dc ;; zstd-dc) echo run_zstd_dc ;; curl) echo run_curl ;;
    curl-par) echo run_curl_par ;; pulltime-apply) echo run_pulltime_apply ;; pulltime-inflate*) echo run_pulltime_inflate ;;
    sha256sum) echo run_sha256sum ;; pulltime-sha256) echo run_pulltime_sha256 ;;
    *) die "no such tool: $1" ;;
  esac
}

# --warm: on this VM, memory that has been free for a while costs up to 2.9 s
# per GiB to touch again, memory freed a moment ago 0.37 s (docs/performance.md,
# "The machine's memory"); writing and deleting WARM MiB of /dev/shm before each
# timed command gives every tool recently freed memory to write its output into.
warm_free_memory() {
  [ "$WARM" -gt 0 ] || return 0
  dd if=/dev/zero of=/dev/shm/pulltime-peers-warm bs=1M count="$WARM" status=none \
    || die "could not write $WARM MiB to /dev/shm for --warm"
  rm -f /dev/shm/pulltime-peers-warm
}

run_rounds() { # disk|tmpfs base-dir images...
  local kind="$1" base="$2"; shift 2
  # The label of the results: the destination's filesystem type (ext4 here).
  FS="$(df --output=fstype "$base" | sed -n 2p)"
  # (--work on a tmpfs: told apart from the tmpfs variant's label)
  if [ "$kind" = tmpfs ]; then FS=tmpfs; elif [ "$FS" = tmpfs ]; then FS=tmpfs-work; fi
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
        warm_free_memory
        CUR_IMG=$img; CUR_TOOL=$tool; CUR_ROUND=$r
        local be=""
        case "$tool" in pulltime-inflate*) be=${tool#*\(}; be=${be%\)} ;; esac
        registry_ticks; local reg0=$REG_TICKS
        timed "$(fn_of "$tool")" "$img" "$dir" "$be"
        registry_ticks
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$FS" "$img" "$tool" "$r" "$T_WALL" "$T_USER" "$T_SYS" >> "$RESULTS"
        printf '%s\t%s\t%s\t%s\t%s\n' "$FS" "$img" "$tool" "$r" \
          "$(awk -v t=$((REG_TICKS - reg0)) -v hz="$TICK_HZ" 'BEGIN { printf "%.2f", t / hz }')" >> "$SERVED"
        say "$FS round $r $img $tool ${T_WALL:0:6} s (CPU ${T_USER} user + ${T_SYS} sys)"
        case "$tool" in ctr-*) stop_containerd ;; esac
        # On disk, outputs stay until the end of the run: deleting 13,000 files
        # makes the next tool's file creation pay (see DEFER above). tmpfs has
        # no such memory, and only so much room (--work on a tmpfs included).
        if [ "$FS" = tmpfs ] || [ "$FS" = tmpfs-work ]; then rm -rf "$dir" "$dir.tmp" "$dir.oci"; fi
      done
    done
  done
}

# ---------------------------------------------------------------- runs
mkdir -p "$W/disk"
run_rounds disk "$W/disk" "${NAMES[@]}"
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
    push_image "$NAME"
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
HEAD1="Machine: $(nproc) CPUs ($CPU), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r), destination filesystem $(findmnt -n -f -o FSTYPE -T "$W") ($(findmnt -n -f -o SOURCE -T "$W"), options $(findmnt -n -f -o OPTIONS -T "$W")) under $WORK_PARENT; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
HEAD2="containerd $(containerd --version | awk '{print $3}'), unpigz on PATH when containerd started: ${UNPIGZ:-no}; skopeo $(skopeo --version | awk '{print $3}'), umoci $(umoci --version | awk '{print $3}'), $(tar --version | sed -n 1p), pigz $(pigz --version 2>&1 | awk '{print $2}'), $(sha256sum --version | sed -n 1p); pulltime gzip backends: ${BACKENDS[*]}."
CACHE_STATE="page cache not dropped"
[ "$DROP" = 1 ] && CACHE_STATE="page cache dropped before every timed command"
MEM_STATE="free memory not warmed"
[ "$WARM" -gt 0 ] && MEM_STATE="$WARM MiB of /dev/shm written and deleted before every timed command (--warm)"
DELETES="nothing deleted on disk until the end of the run, tmpfs outputs deleted once timed"
[ "$(stat -f -c %T "$W")" = tmpfs ] && DELETES="every output deleted once timed (tmpfs work dir)"
HEAD3="$ROUNDS rounds, tool order rotated every round; $DELETES; $CACHE_STATE; $MEM_STATE. CPU: user + system of the processes a tool started."
REPORT="$(python3 "$REPO/benches/floor.py" --registry-cpu "$SERVED" "$RESULTS" "$STAGES" "$(nproc)" "$HEAD1" "$HEAD2" "$HEAD3")"
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
  cp "$STAGES" "$OUT.data/stages.tsv"
  cp "$W"/json/*.json "$OUT.data/" 2>/dev/null || true
  say "raw data in $OUT.data/"
fi
