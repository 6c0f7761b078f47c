#!/usr/bin/env bash
# Inflate alone, per layer, with every gzip backend (issue 19): the table of
# docs/performance.md, "gzip backends".
#
# Builds examples/stage_costs once per backend (release; each binary copied to
# target/inflate-backends/stage_costs-NAME):
#   isal      --features gzip-isal (ISA-L's igzip, the system's libisal; the default)
#   zlib-rs   --no-default-features --features gzip-zlib-rs (the pure-Rust fallback)
#   zlib-ng   --no-default-features --features gzip-zlib-ng (zlib-ng in C, needs cmake)
#   miniz     --no-default-features --features gzip-miniz
# and measures libdeflate for orientation (`stage_costs inflate libdeflate`:
# whole-buffer, not a backend a pull can stream with).
#
# Then, on every distinct gzip layer of the given tags of an OCI layout:
# 1. correctness, untimed: each backend's output sha256 (`stage_costs diff-id`)
#    must equal the layer's diff_id in the image config (this reads every blob
#    once, so the timed runs read them from the page cache);
# 2. ROUNDS rounds; in each, every layer is inflated once by every backend, one
#    process per layer and backend, the backends' order rotated per round and
#    layer. Each run prints its wall and thread CPU (getrusage); `/usr/bin/time`
#    gives the process's peak RSS.
# The report (stdout, and --out FILE): per layer and backend the median MB/s of
# output (tar bytes / median wall), median CPU s, speed relative to zlib-rs
# (zlib-rs's median wall / the backend's) and peak RSS; then the whole set.
# With --out FILE, every run's figures are kept in FILE.runs.tsv (round, layer,
# backend, wall s, user s, sys s, output bytes, peak RSS KiB).
#
# Usage: benches/inflate_backends.sh [--rounds N] [--out FILE] [--no-build]
#          [--layout DIR] [--tags "TAG..."] [--backends "NAME..."]
# Defaults: 3 rounds; the Debian-built layout of benches/images/build.sh,
# /var/cache/pulltime-images/debian-small, tags "toolchain bigfiles"; backends
# "isal zlib-rs zlib-ng miniz libdeflate". --no-build uses the binaries already
# in target/inflate-backends/ (CARGO_TARGET_DIR is honoured).
# Needs: cargo, python3, /usr/bin/time; libisal-dev and pkg-config (isal),
# cmake (zlib-ng).
set -euo pipefail
export LC_ALL=C

REPO="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
BINS="$TARGET/inflate-backends"
ROUNDS=3
OUT=""
BUILD=1
LAYOUT=/var/cache/pulltime-images/debian-small
TAGS="toolchain bigfiles"
BACKENDS="isal zlib-rs zlib-ng miniz libdeflate"

die() { echo "inflate_backends.sh: $*" >&2; exit 1; }
say() { echo "inflate_backends.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --layout) LAYOUT="$2"; shift 2 ;;
    --tags) TAGS="$2"; shift 2 ;;
    --backends) BACKENDS="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case "$ROUNDS" in ''|*[!0-9]*|0) die "--rounds must be a positive integer, got '$ROUNDS'" ;; esac
[ -f "$LAYOUT/index.json" ] || die "no OCI layout at $LAYOUT (benches/images/build.sh builds it)"
[ -x /usr/bin/time ] || die "needs /usr/bin/time (Debian package time)"
command -v python3 >/dev/null || die "needs python3"

features_of() { # backend -> cargo feature arguments
  case "$1" in
    isal) echo "--no-default-features --features gzip-isal" ;;
    zlib-rs) echo "--no-default-features --features gzip-zlib-rs" ;;
    zlib-ng) echo "--no-default-features --features gzip-zlib-ng" ;;
    miniz) echo "--no-default-features --features gzip-miniz" ;;
    *) die "unknown backend $1" ;;
  esac
}

# The binary that measures each backend; libdeflate runs in the first one built.
mkdir -p "$BINS"
declare -A BIN=()
FIRST=""
for b in $BACKENDS; do
  [ "$b" = libdeflate ] && continue
  if [ "$BUILD" = 1 ]; then
    say "building stage_costs with $b"
    # shellcheck disable=SC2046
    (cd "$REPO" && cargo build --release --locked --quiet --example stage_costs $(features_of "$b")) \
      || die "build with $b failed"
    cp "$TARGET/release/examples/stage_costs" "$BINS/stage_costs-$b"
  fi
  [ -x "$BINS/stage_costs-$b" ] || die "no $BINS/stage_costs-$b (run without --no-build)"
  got="$("$BINS/stage_costs-$b" backend)"
  [ "$got" = "$b" ] || die "$BINS/stage_costs-$b says its backend is $got, not $b"
  BIN[$b]="$BINS/stage_costs-$b"
  [ -n "$FIRST" ] || FIRST="${BIN[$b]}"
done
case " $BACKENDS " in
  *" libdeflate "*) [ -n "$FIRST" ] || die "libdeflate runs inside a stage_costs binary: name a backend too"
                    BIN[libdeflate]="$FIRST" ;;
esac

# The versions of the Rust-side backends, as Cargo.lock pins them (flate2's own
# dependency where the lock holds two versions of one crate).
lock_versions() {
  python3 - "$REPO/Cargo.lock" <<'EOF'
import sys, tomllib
pkgs = tomllib.load(open(sys.argv[1], "rb"))["package"]
flate2 = next(p for p in pkgs if p["name"] == "flate2")
def version(name):
    for d in flate2.get("dependencies", []):
        if d.split()[0] == name and len(d.split()) > 1:
            return d.split()[1]
    vs = [p["version"] for p in pkgs if p["name"] == name]
    return vs[0] if vs else "?"
print(", ".join(f"{n} {version(n)}" for n in
                ["flate2", "zlib-rs", "libz-ng-sys", "miniz_oxide", "libdeflater"]))
EOF
}

engine_of() { [ "$1" = libdeflate ] && echo libdeflate || echo gzip; }

W="$(mktemp -d /tmp/inflate-backends.XXXXXX)"
trap 'rm -rf "$W"' EXIT

# The distinct gzip layers of the tags: digest, blob path, compressed bytes, diff_id.
python3 - "$LAYOUT" $TAGS > "$W/layers.tsv" <<'EOF'
import json, os, sys
layout, tags = sys.argv[1], sys.argv[2:]
blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
index = json.load(open(os.path.join(layout, "index.json")))
seen = set()
for tag in tags:
    ms = [m for m in index["manifests"]
          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    if not ms:
        sys.exit(f"no tag {tag} in {layout}")
    manifest = json.load(open(blob(ms[0]["digest"])))
    config = json.load(open(blob(manifest["config"]["digest"])))
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
        if not layer["mediaType"].endswith("gzip") or layer["digest"] in seen:
            continue
        seen.add(layer["digest"])
        print("\t".join([layer["digest"], blob(layer["digest"]), str(layer["size"]), diff_id]))
EOF
mapfile -t LAYERS < "$W/layers.tsv"
[ ${#LAYERS[@]} -gt 0 ] || die "no gzip layers in tags $TAGS"
say "${#LAYERS[@]} gzip layers of $TAGS in $LAYOUT"

# 1. Correctness: every backend's output is the layer's diff_id.
for line in "${LAYERS[@]}"; do
  IFS=$'\t' read -r digest path _size diff_id <<< "$line"
  for b in $BACKENDS; do
    IFS=$'\t' read -r _i got _bytes < <("${BIN[$b]}" diff-id "$(engine_of "$b")" "$path")
    [ "$got" = "$diff_id" ] || die "$b: layer ${digest:7:12} decodes to $got, its diff_id is $diff_id"
  done
done
say "every backend's output matches every layer's diff_id"

# 2. Timing: rounds x layers x backends, order rotated.
read -ra BE <<< "$BACKENDS"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for li in "${!LAYERS[@]}"; do
    IFS=$'\t' read -r digest path _size _diff <<< "${LAYERS[$li]}"
    n=${#BE[@]}
    for k in $(seq 0 $((n - 1))); do
      b=${BE[$(((k + r + li) % n))]}
      /usr/bin/time -f '%M' -o "$W/rss" "${BIN[$b]}" inflate "$(engine_of "$b")" "$path" > "$W/run"
      IFS=$'\t' read -r _i wall user sys bytes < "$W/run"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$digest" "$b" "$wall" "$user" "$sys" "$bytes" "$(tail -1 "$W/rss")" >> "$W/runs.tsv"
    done
  done
  say "round $r of $ROUNDS done"
done
LOAD1="$(cut -d' ' -f1-3 /proc/loadavg)"

{
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs, $(uname -r); load average $LOAD0 before, $LOAD1 after."
  echo "Date: $(date -u +%Y-%m-%dT%H:%MZ); $(rustc --version); libisal $(pkg-config --modversion libisal 2>/dev/null || echo '?'); $(lock_versions)."
  echo "Layers: ${#LAYERS[@]} gzip layers of $TAGS in $LAYOUT; $ROUNDS rounds, backends in rotating order, one process per layer and backend; medians."
  echo
  python3 - "$W/runs.tsv" "$W/layers.tsv" "$BACKENDS" <<'EOF'
import statistics as st, sys
runs, layers, backends = sys.argv[1], sys.argv[2], sys.argv[3].split()
size = {l.split("\t")[0]: int(l.split("\t")[2]) for l in open(layers)}
order = [l.split("\t")[0] for l in open(layers)]
by = {}
for line in open(runs):
    r, d, b, wall, user, sys_, out, rss = line.rstrip("\n").split("\t")
    by.setdefault((d, b), []).append((float(wall), float(user) + float(sys_), int(out), int(rss),
                                      float(user), float(sys_)))
def med(d, b):
    xs = by[(d, b)]
    return (st.median(x[0] for x in xs), st.median(x[1] for x in xs), xs[0][2], max(x[3] for x in xs))
ref = "zlib-rs" if "zlib-rs" in backends else backends[0]
print(f"| layer | gzip MB | tar MB | " + " | ".join(f"{b} MB/s (CPU s, x {ref}, RSS MiB)" for b in backends) + " |")
print("|---|---:|---:|" + "---:|" * len(backends))
tot = {b: [0.0, 0.0] for b in backends}
out_total = 0
for d in order:
    out = med(d, backends[0])[2]
    out_total += out
    cells = []
    for b in backends:
        wall, cpu, _, rss = med(d, b)
        tot[b][0] += wall; tot[b][1] += cpu
        cells.append(f"{out / wall / 1e6:.0f} ({cpu:.2f} s, {med(d, ref)[0] / wall:.2f}x, {rss / 1024:.0f})")
    print(f"| {d[7:19]} | {size[d] / 1e6:.1f} | {out / 1e6:.1f} | " + " | ".join(cells) + " |")
cells = [f"{out_total / tot[b][0] / 1e6:.0f} ({tot[b][1]:.2f} s, {tot[ref][0] / tot[b][0]:.2f}x)" for b in backends]
print(f"| all | {sum(size.values()) / 1e6:.1f} | {out_total / 1e6:.1f} | " + " | ".join(cells) + " |")
split = lambda b, i: sum(st.median(x[i] for x in by[(d, b)]) for d in order)
print()
print("CPU of the whole set, user + system s (medians per layer, summed): " +
      "; ".join(f"{b} {split(b, 4):.2f} + {split(b, 5):.2f}" for b in backends) + ".")
EOF
} | tee "${OUT:-/dev/null}"
[ -z "$OUT" ] || cp "$W/runs.tsv" "$OUT.runs.tsv"
