#!/usr/bin/env bash
# Two pulltime builds side by side: the same image, served by `pulltime serve`
# from an OCI layout over loopback, pulled cold by each build in alternation,
# ROUNDS times, into WORK. Prints each pull's wall, user and system CPU and peak
# RSS (GNU time), then the medians and the ratio B/A. docs/performance.md quotes
# it for changes to the pipeline ("Spools").
#   benches/ab.sh A_BIN B_BIN [--image oci:LAYOUT:TAG] [--work DIR] [--rounds N]
#                 [--warm MIB]
# Build A from another commit with its own target directory, e.g.
#   git worktree add /tmp/base HEAD~1 &&
#   (cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target cargo build --release)
# Every pull goes to its own new directory and, except on tmpfs, nothing is
# deleted until the end: on journal-less ext4 a tree extracted next to a fresh deletion is several times
# slower (docs/performance.md, "The filesystem's memory"). WORK (default
# /var/tmp) needs about 2 x ROUNDS x the image's unpacked size free. The image
# defaults to the Debian-built `toolchain` image of benches/images/build.sh.
# Before every pull, MIB (default 2048; 0: no) of /dev/shm are written and
# deleted: on this VM, memory that has been free for a while costs up to 2.9 s
# per GiB to touch again, memory freed a moment ago 0.37 s, and a pull writes
# about 1 GiB of new page cache (docs/performance.md, "The machine's memory").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

die() { echo "ab.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: benches/ab.sh A_BIN B_BIN [--image oci:LAYOUT:TAG] [--work DIR] [--rounds N]"
A=$(realpath "$1"); B=$(realpath "$2"); shift 2
IMAGE=oci:/var/cache/pulltime-images/debian-small:toolchain
WORK=/var/tmp
ROUNDS=5
WARM=2048
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --warm) WARM=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
for bin in "$A" "$B"; do [ -x "$bin" ] || die "$bin is not an executable"; done
[ -x /usr/bin/time ] || die "GNU time is needed: apt-get install -y time"
spec=${IMAGE#oci:}
LAYOUT=${spec%:*}; TAG=${spec##*:}
[ -f "$LAYOUT/index.json" ] || die "$LAYOUT is not an OCI layout (build it with benches/images/build.sh)"

W=$(mktemp -d "$WORK/pulltime-ab.XXXXXX")
FSTYPE=$(stat -f -c %T "$W")
bench_cleanup_on_exit "$W"
PORT=$(free_port)
"$A" serve --layout "img=$LAYOUT" --addr "127.0.0.1:$PORT" > "$W/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$W/serve.log" && break; sleep 0.1; done
grep -q listening "$W/serve.log" || die "pulltime serve did not start: $(cat "$W/serve.log")"

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cores, $FSTYPE at $WORK"
echo "# image $IMAGE; A=$A; B=$B"
printf '%-6s %-3s %8s %8s %8s %9s\n' round bin wall_s user_s sys_s rss_kb
for r in $(seq "$ROUNDS"); do
  # Alternate which build goes first.
  if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
  for which in $order; do
    if [ "$which" = A ]; then bin=$A; else bin=$B; fi
    dir="$W/$which-$r"; mkdir -p "$dir.tmp"
    sync
    if [ "$WARM" -gt 0 ]; then
      dd if=/dev/zero of=/dev/shm/pulltime-ab-warm bs=1M count="$WARM" status=none \
        || die "could not write $WARM MiB to /dev/shm to warm the free memory (--warm 0 skips it)"
      rm -f /dev/shm/pulltime-ab-warm
    fi
    /usr/bin/time -f "%e %U %S %M" -o "$W/time" \
      "$bin" pull "127.0.0.1:$PORT/img:$TAG" --dest "$dir" --tmp-dir "$dir.tmp" -q \
      || die "$which's pull failed"
    read -r wall user sys rss < "$W/time"
    printf '%-6s %-3s %8s %8s %8s %9s\n' "$r" "$which" "$wall" "$user" "$sys" "$rss"
    echo "$which $wall $user $sys $rss" >> "$W/all"
    # tmpfs has no memory of deletions, and only so much memory.
    if [ "$FSTYPE" = tmpfs ]; then rm -rf "$dir" "$dir.tmp"; fi
  done
done
python3 - "$W/all" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for which in "AB":
    r = [list(map(float, x[1:])) for x in rows if x[0] == which]
    med[which] = [statistics.median(c) for c in zip(*r)]
    wall, user, sys_, rss = med[which]
    print(f"median {which}: wall {wall:.3f} s, CPU {user + sys_:.3f} s (user {user:.2f}, sys {sys_:.2f}), peak RSS {rss / 1024:.1f} MiB")
a, b = med["A"], med["B"]
print(f"B/A: wall {b[0] / a[0]:.3f}, CPU {(b[1] + b[2]) / (a[1] + a[2]):.3f}, RSS {b[3] / a[3]:.2f}")
EOF
