#!/usr/bin/env bash
# The machine's memory (docs/performance.md): what it costs to write 1 GiB into
# page cache the kernel must take from free memory, by where that memory comes
# from. Per round, on /dev/shm (tmpfs: no disk in the way; ext4's page cache
# takes its pages from the same free memory):
#   grow-1..3   three new 1 GiB files, kept: the later ones reach memory that
#               has been free for a while
#   just-freed  the three deleted, then a new 1 GiB file at once
#   same-pages  1 GiB written over that file's pages (no allocation)
# and the guest's free-page-reporting settings, when the kernel has them
# (/sys/module/page_reporting: a VM that hands freed memory back to its host,
# which must fault it in again when the guest touches it).
#   benches/fresh_memory.sh [--rounds N]
# Needs about 3 GiB free in /dev/shm; writes nothing elsewhere.
set -euo pipefail
ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "fresh_memory.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done
D=$(mktemp -d /dev/shm/pulltime-fresh-memory.XXXXXX)
trap 'rm -rf "$D"' EXIT
timed_write() { # file [dd flags...] -> seconds to write 1 GiB
  local s e
  s=$EPOCHREALTIME
  dd if=/dev/zero of="$1" bs=1M count=1024 status=none "${@:2}"
  e=$EPOCHREALTIME
  python3 -c "print(f'{$e - $s:.3f}')"
}
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); free now: $(awk '/MemFree/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
if [ -d /sys/module/page_reporting/parameters ]; then
  echo "# page_reporting: $(cd /sys/module/page_reporting/parameters && for f in *; do printf '%s=%s ' "$f" "$(cat "$f")"; done)"
fi
printf '%-6s %7s %7s %7s %11s %11s\n' round grow-1 grow-2 grow-3 just-freed same-pages
for r in $(seq "$ROUNDS"); do
  g1=$(timed_write "$D/g1"); g2=$(timed_write "$D/g2"); g3=$(timed_write "$D/g3")
  rm "$D/g1" "$D/g2" "$D/g3"
  just=$(timed_write "$D/just")
  same=$(timed_write "$D/just" conv=notrunc)
  rm "$D/just"
  printf '%-6s %7s %7s %7s %11s %11s\n' "$r" "$g1" "$g2" "$g3" "$just" "$same"
  # Let the freed memory age before the next round.
  sleep 30
done
