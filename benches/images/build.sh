#!/usr/bin/env bash
# Builds real images from Debian packages into OCI layouts, cached outside the
# repository (default /var/cache/pulltime-images; override with
# PULLTIME_IMAGE_CACHE). Each image is built once; delete its directory to rebuild.
#
#   benches/images/build.sh [small|toolchain|bigfiles|layers|ml|all]
#
# All are tags of one OCI layout, $cache/debian-small, sharing its base layers:
# small     (tag v1) bookworm minbase (one layer) + one layer with a few packages
#           (~56 MB compressed): the real image the tests pull with every puller.
# toolchain v1 + build-essential (168 MB compressed, 11,124 files): many small
#           files, the image of docs/performance.md and docs/peers.md.
# bigfiles  v1 + LLVM's and Mesa's shared libraries and their data: a layer of
#           few, large files (tens of MB each).
# ml        v1 + PyTorch, NumPy, SciPy and pandas from Debian: one layer of
#           several hundred MB, as the study's ML image has (a Python stack of
#           many small files beside a few very large shared libraries).
# layers    v1 + eight layers of one or two packages each (10 layers in all):
#           many layers, most of them small.
#
# Needs root, debootstrap and umoci, and the Debian mirror (deb.debian.org).
set -euo pipefail
cache="${PULLTIME_IMAGE_CACHE:-/var/cache/pulltime-images}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
want="${1:-small}"
mkdir -p "$cache"
# Work directories a failed earlier build left behind.
rm -rf "$cache"/.work.* "$cache"/.deboot.*

# One layer per call: unpack tag `from`, change the rootfs, repack as `tag` (the
# tag moves only when the repack succeeded).
add_layer() { # layout tag from_tag command...
  local layout=$1 tag=$2 from=$3; shift 3
  local work; work=$(mktemp -d "$cache/.work.XXXXXX")
  umoci unpack --image "$layout:$from" "$work/bundle" >/dev/null
  "$@" "$work/bundle/rootfs"
  umoci repack --image "$layout:$tag" "$work/bundle" >/dev/null
  rm -rf "$work"
}

in_chroot() { # rootfs command...
  local root=$1 rc=0; shift
  mount -t proc proc "$root/proc"
  DEBIAN_FRONTEND=noninteractive chroot "$root" "$@" || rc=$?
  umount "$root/proc"
  return $rc
}

minbase() { # rootfs
  local root=$1 tmp; tmp=$(mktemp -d "$cache/.deboot.XXXXXX")
  debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >/dev/null
  # As Debian's official images: no package lists, no downloaded packages.
  rm -rf "$tmp/var/lib/apt/lists/"* "$tmp/var/cache/apt/archives/"*.deb
  # umoci unpacked an empty rootfs here: fill it from the bootstrap.
  cp -a "$tmp/." "$root/"
  rm -rf "$tmp"
}

apt_install() { # packages... then rootfs last
  local root=${*: -1} pkgs=("${@:1:$#-1}")
  in_chroot "$root" apt-get update -qq 2>/dev/null
  in_chroot "$root" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1
  in_chroot "$root" apt-get clean
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/archives/"*.deb
}

build_small() {
  local layout="$cache/debian-small"
  [ -f "$layout/index.json" ] && grep -q '"v1"' "$layout/index.json" && return
  # Built aside and renamed when complete: a failed build leaves no half image.
  local partial="$layout.partial"
  rm -rf "$partial" "$layout"
  umoci init --layout "$partial"
  umoci new --image "$partial:v1"
  add_layer "$partial" v1 v1 minbase
  add_layer "$partial" v1 v1 apt_install ca-certificates netbase
  mv "$partial" "$layout"
  echo "built $layout:v1"
}

build_toolchain() {
  build_small
  local layout="$cache/debian-small"
  grep -q '"toolchain"' "$layout/index.json" && return
  add_layer "$layout" toolchain v1 apt_install build-essential
  echo "built $layout:toolchain"
}

build_bigfiles() {
  build_small
  local layout="$cache/debian-small"
  grep -q '"bigfiles"' "$layout/index.json" && return
  add_layer "$layout" bigfiles v1 apt_install libllvm15 libz3-4 libgl1-mesa-dri
  echo "built $layout:bigfiles"
}

build_ml() {
  build_small
  local layout="$cache/debian-small"
  grep -q '"ml"' "$layout/index.json" && return
  add_layer "$layout" ml v1 apt_install python3-torch python3-numpy python3-scipy python3-pandas
  echo "built $layout:ml"
}

build_layers() {
  build_small
  local layout="$cache/debian-small"
  grep -q '"layers"' "$layout/index.json" && return
  # Built on scratch tags, renamed when all eight layers are there (a failed
  # build's scratch tags are removed by the next one).
  for old in $(grep -o '"layers-partial-[0-9]*"' "$layout/index.json" | tr -d '"'); do
    umoci rm --image "$layout:$old"
  done
  local from=v1 i=0
  for pkgs in "less" "procps" "file" "bzip2 unzip" "tzdata" "curl" "openssh-client" "python3-minimal"; do
    i=$((i + 1))
    # shellcheck disable=SC2086 # one or two package names
    add_layer "$layout" "layers-partial-$i" "$from" apt_install $pkgs
    [ "$from" = v1 ] || umoci rm --image "$layout:$from"
    from="layers-partial-$i"
  done
  umoci tag --image "$layout:$from" layers
  umoci rm --image "$layout:$from"
  echo "built $layout:layers"
}

case "$want" in
  small) build_small ;;
  toolchain) build_toolchain ;;
  bigfiles) build_bigfiles ;;
  layers) build_layers ;;
  ml) build_ml ;;
  all) build_toolchain; build_bigfiles; build_layers; build_ml ;;
  *) echo "usage: $0 [small|toolchain|bigfiles|layers|ml|all]" >&2; exit 2 ;;
esac
