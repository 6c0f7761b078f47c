#!/usr/bin/env bash
# The simulator against the real tools, on real images it was not calibrated on.
#
# For each network profile, `pulltime serve` (shaped to it; Docker Hub's flow when
# the profile has a CDN) serves the Debian-built images (benches/images/build.sh
# all) and one synthetic image; every puller pulls every image cold, --runs times,
# in rotating order (`pulltime compare --puller`). Then, for each puller and image,
# the host's costs are fitted (`pulltime calibrate --from-records`) to that
# puller's loopback pulls of the OTHER images only, and the image is simulated
# (`pulltime simulate oci:LAYOUT --policy PULLER --host FIT`) on every network and
# set against its measured median. docs/model.md's fidelity table is this script's
# output.
#
#   benches/fidelity_real.sh [--runs N] [--work DIR] [--networks "loopback ..."]
#                            [--slow-network home-50m] [--slow-images "small layers"]
#                            [--pullers pulltime,docker,containerd]
#                            [--images "small toolchain ..."] [--markdown FILE]
#                            [--refit target/fidelity-real/TIMESTAMP]
#
# --refit pulls nothing: it fits and simulates again from an earlier run's records
# (same --networks, --pullers and --images), for changes to the model.
# --networks (default loopback, lan-1g, dockerhub-100m) get every image; the slow
# network (default home-50m; '' for none) only --slow-images, to keep the bench
# near half an hour.
#
# --work is where every puller's store lives (default /dev/shm, tmpfs: on this
# host's ext4 the cost of creating a file depends on what was deleted in the
# minutes before, and the pullers delete whole images between runs; see
# docs/model.md). Records, fits, simulations and the table are kept under
# target/fidelity-real/TIMESTAMP. Needs root, dockerd, containerd, podman, skopeo and umoci as the
# pullers chosen ask, and target/release/pulltime built.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PULLTIME="$REPO/target/release/pulltime"
RUNS=2
WORK_PARENT=/dev/shm
NETWORKS="loopback lan-1g dockerhub-100m"
SLOW_NETWORK=home-50m
SLOW_IMAGES="small layers"
PULLERS="pulltime,docker,containerd"
IMAGES="small toolchain bigfiles layers synthetic"
MARKDOWN=""
REFIT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --work) WORK_PARENT="$2"; shift 2 ;;
    --networks) NETWORKS="$2"; shift 2 ;;
    --pullers) PULLERS="$2"; shift 2 ;;
    --images) IMAGES="$2"; shift 2 ;;
    --slow-network) SLOW_NETWORK="$2"; shift 2 ;;
    --slow-images) SLOW_IMAGES="$2"; shift 2 ;;
    --markdown) MARKDOWN="$2"; shift 2 ;;
    --refit) REFIT="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--work DIR] [--networks LIST] [--slow-network NAME|''] [--slow-images LIST] [--pullers LIST] [--images LIST] [--markdown FILE] [--refit DIR]" >&2; exit 2 ;;
  esac
done
case " $NETWORKS " in *" loopback "*) ;; *) echo "fidelity_real.sh: the fits come from loopback pulls; keep loopback in --networks" >&2; exit 2 ;; esac
[ -x "$PULLTIME" ] || { echo "build first: cargo build --release" >&2; exit 1; }
cache="${PULLTIME_IMAGE_CACHE:-/var/cache/pulltime-images}"
"$REPO/benches/images/build.sh" all
# Records, fits, simulations and the table outlive the stores.
if [ -n "$REFIT" ]; then
  R="$(cd "$REFIT" && pwd)"
  [ -d "$R/records/loopback" ] || { echo "fidelity_real.sh: $REFIT has no records/loopback" >&2; exit 2; }
else
  R="$REPO/target/fidelity-real/$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$R"
fi
W=$(mktemp -d "$WORK_PARENT/pulltime-fidelity.XXXXXX")
source "$REPO/benches/lib.sh"
bench_cleanup_on_exit "$W"

# The synthetic image: many-small-files at half scale (about 225 MB unpacked).
"$PULLTIME" synth "$REPO/profiles/images/many-small-files.toml" --scale 0.5 --to "oci:$W/synth" >/dev/null
layout_of() { # image -> oci:DIR:TAG
  case "$1" in
    small) echo "oci:$cache/debian-small:v1" ;;
    synthetic) echo "oci:$W/synth:many-small-files" ;;
    *) echo "oci:$cache/debian-small:$1" ;;
  esac
}
repo_of() { # image -> REPO:TAG as served
  case "$1" in
    small) echo "debian:v1" ;;
    synthetic) echo "synth:many-small-files" ;;
    *) echo "debian:$1" ;;
  esac
}

images_of() { # network -> images pulled on it
  if [ "$1" = "$SLOW_NETWORK" ]; then echo "$SLOW_IMAGES"; else echo "$IMAGES"; fi
}
ALL_NETWORKS="$NETWORKS${SLOW_NETWORK:+ $SLOW_NETWORK}"
if [ -z "$REFIT" ]; then
daemon_args=()
if [[ ",$PULLERS," == *",docker,"* ]]; then
  dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$W/docker/root" \
    --exec-root "$W/docker/exec" --pidfile "$W/docker/pid" -H "unix://$W/docker/d.sock" \
    > "$W/dockerd.log" 2>&1 & pids+=($!)
  ready test -S "$W/docker/d.sock"
  daemon_args+=(--docker-host "unix://$W/docker/d.sock")
fi
if [[ ",$PULLERS," == *",containerd,"* ]]; then
  containerd_config "$W/containerd"
  containerd --config "$W/containerd/config.toml" > "$W/containerd.log" 2>&1 & pids+=($!)
  ready test -S "$W/containerd/c.sock"
  daemon_args+=(--containerd-address "$W/containerd/c.sock" --snapshotter native)
fi
if [[ ",$PULLERS," == *",podman,"* ]]; then
  daemon_args+=(--podman-root "$W/podman/root" --podman-runroot "$W/podman/run")
fi
mkdir -p "$W/pulltime"
fs=$(df -T "$W" | awk 'NR==2{print $2}')
echo "$fs" > "$R/filesystem"
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); stores on $fs ($W)"
echo "pullers: $PULLERS; runs per case: $RUNS; started $(date -u +%FT%TZ)"

for net in $ALL_NETWORKS; do
  port=$(free_port)
  serve=("$PULLTIME" serve --addr "127.0.0.1:$port" --network "$net"
    --layout "debian=$cache/debian-small" --layout "synth=$W/synth")
  if grep -q '^\[cdn\]' "$REPO/profiles/network/$net.toml"; then
    serve+=(--emulate dockerhub --cdn-addr "127.0.0.1:$(free_port)" --rate-limit 1000000)
  fi
  "${serve[@]}" > "$R/serve-$net.log" 2>&1 & serve_pid=$!
  pids+=("$serve_pid")
  ready curl -s "http://127.0.0.1:$port/v2/" -o /dev/null
  for img in $(images_of "$net"); do
    echo "== $net: $img" >&2
    # Every case starts from the same memory state: the kernel's cost of each
    # page a puller writes rises as free memory runs out (system CPU doubled
    # for every puller in a run that did not do this).
    sync
    { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null || true
    # ...but the registry's blobs in memory, as they were for every run before.
    cat "$cache"/debian-small/blobs/sha256/* "$W"/synth/blobs/sha256/* > /dev/null
    before=$(grep '^cpu ' /proc/stat)
    "$PULLTIME" compare --puller "$PULLERS" "127.0.0.1:$port/$(repo_of "$img")" --runs "$RUNS" \
      ${daemon_args[@]+"${daemon_args[@]}"} --tmp-dir "$W/pulltime" --timeout 900 \
      --records "$R/records/$net/$img" > "$R/compare-$net-$img.txt"
    # The share of CPU time the hypervisor gave to other guests meanwhile.
    python3 -c 'import sys; a, b = ([int(x) for x in l.split()[1:]] for l in sys.argv[1:]); d = [y - x for x, y in zip(a, b)]; print(f"{100 * d[7] / max(1, sum(d)):.1f}")' \
      "$before" "$(grep '^cpu ' /proc/stat)" > "$R/steal-$net-$img"
  done
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  unset 'pids[-1]'  # the registry, the last started
done
fi

# Held out: each image simulated from costs fitted to the other images' pulls.
rm -rf "$R/fits" "$R/sims"
mkdir -p "$R/fits" "$R/sims"
for p in ${PULLERS//,/ }; do
  for img in $IMAGES; do
    others=()
    for o in $IMAGES; do [ "$o" = "$img" ] || others+=("$R/records/loopback/$o/$p.json"); done
    # pulltime's streaming factor is fitted to those pulls' wall times.
    factor=()
    [ "$p" = pulltime ] && factor=(--network loopback)
    "$PULLTIME" calibrate --from-records "${others[@]}" --puller "$p" --name "$p-without-$img" \
      ${factor[@]+"${factor[@]}"} --out "$R/fits/$p-without-$img.toml" 2> "$R/fits/$p-without-$img.txt"
    for net in $ALL_NETWORKS; do
      case " $(images_of "$net") " in *" $img "*) ;; *) continue ;; esac
      "$PULLTIME" simulate "$(layout_of "$img")" --network "$net" --policy "$p" --registry-on-host \
        --host "$R/fits/$p-without-$img.toml" --json "$R/sims/$net-$img-$p.json" > /dev/null
    done
  done
done

fs=$(cat "$R/filesystem")
table=$(python3 - "$R" "$ALL_NETWORKS" "$IMAGES" "$PULLERS" "$fs" <<'PY'
import json, statistics, sys
w, nets, imgs, pullers, fs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split(","), sys.argv[5]
rows, errs = [], {}
for net in nets:
    for img in imgs:
        for p in pullers:
            try:
                    rec = json.load(open(f"{w}/records/{net}/{img}/{p}.json"))
            except FileNotFoundError:
                continue  # not pulled on this network
            walls = [r["wall_s"] for r in rec["runs"] if (r.get("cold") or {}).get("all_bytes_fetched", True)]
            sim = json.load(open(f"{w}/sims/{net}-{img}-{p}.json"))["runs"][0]["wall_s"]
            if not walls:
                rows.append(f"| {img} | {net} | {p} | no cold run | {sim:.2f} | | |")
                continue
            m = statistics.median(walls)
            e = (sim - m) / m
            errs.setdefault(p, {}).setdefault(net, []).append(e)
            spread = f" ({min(walls):.2f}-{max(walls):.2f})" if len(walls) > 1 else ""
            try:
                steal = open(f"{w}/steal-{net}-{img}").read().strip() + "%"
            except FileNotFoundError:
                steal = "-"
            rows.append(f"| {img} | {net} | {p} | {m:.2f}{spread} | {sim:.2f} | {e*100:+.0f}% | {steal} |")
print(f"Stores on {fs}. Measured: median wall seconds of the cold runs (range); simulated from costs fitted to the other images' loopback pulls; CPU time stolen by the hypervisor during the case's pulls.\n")
print("| image | network | puller | measured s | simulated s | error | stolen |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
print("\n| puller | network | cases | median abs error | worst |")
print("|---|---|---|---|---|")
for p in pullers:
    for net in nets:
        e = [abs(x) for x in errs.get(p, {}).get(net, [])]
        if e:
            print(f"| {p} | {net} | {len(e)} | {statistics.median(e)*100:.0f}% | {max(e)*100:.0f}% |")
PY
)
echo "$table" | tee "$R/table.md"
echo "records, fits and simulations: $R" >&2
if [ -n "$MARKDOWN" ]; then echo "$table" > "$MARKDOWN"; fi
