#!/usr/bin/env bash
# The fleet model against real bursts on this host: N pullers (N = 4, 8, 16),
# each with its own store, start pulling one image at the same moment from
# `pulltime serve`, whose listener shares one egress cap among all of them; each
# node's own link is lan-1g's (1 Gbit/s, 0.3 ms). The burst is then simulated
# (`pulltime simulate --fleet N --egress E`) with the host costs fitted by
# benches/fidelity_real.sh, which never saw this image, and the measured pull
# times' p50, p95 and max are set against the simulated ones. docs/fleet.md
# quotes the table.
#
#   benches/fleet_real.sh [--nodes "4 8 16"] [--egress 50Mbit]
#                         [--pullers pulltime,containerd] [--fits DIR] [--work DIR]
#
# --fits is a fidelity_real.sh run's fits directory (default: the latest under
# target/fidelity-real). The image is synthetic (sn-text-filter-multistage at
# scale 0.02: six layers, 12.6 MB compressed), small enough that a burst of 16 lasts
# under a minute at 50 Mbit/s and the network, not this host's two cores, decides
# it: on one host every node's CPU work shares the same cores, which a fleet's
# nodes do not. containerd runs one daemon per node (native snapshotter).
# Needs root, containerd for that puller, target/release/pulltime built.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PULLTIME="$REPO/target/release/pulltime"
NODES="4 8 16"
EGRESS=50Mbit
PULLERS="pulltime,containerd"
FITS=""
WORK_PARENT=/dev/shm
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES="$2"; shift 2 ;;
    --egress) EGRESS="$2"; shift 2 ;;
    --pullers) PULLERS="$2"; shift 2 ;;
    --fits) FITS="$2"; shift 2 ;;
    --work) WORK_PARENT="$2"; shift 2 ;;
    *) echo "usage: $0 [--nodes LIST] [--egress RATE] [--pullers pulltime,containerd] [--fits DIR] [--work DIR]" >&2; exit 2 ;;
  esac
done
[ -x "$PULLTIME" ] || { echo "build first: cargo build --release" >&2; exit 1; }
if [ -z "$FITS" ]; then
  FITS=$(ls -d "$REPO"/target/fidelity-real/*/fits 2>/dev/null | sort | tail -1)
fi
[ -d "$FITS" ] || { echo "fleet_real.sh: no fits: run benches/fidelity_real.sh first or pass --fits DIR" >&2; exit 2; }
for p in ${PULLERS//,/ }; do
  case "$p" in pulltime|containerd) ;; *) echo "fleet_real.sh: --pullers takes pulltime and containerd" >&2; exit 2 ;; esac
  [ -f "$FITS/$p-without-small.toml" ] || { echo "fleet_real.sh: $FITS has no $p-without-small.toml" >&2; exit 2; }
done
W=$(mktemp -d "$WORK_PARENT/pulltime-fleet.XXXXXX")
R="$REPO/target/fleet-real/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$R"
source "$REPO/benches/lib.sh"
bench_cleanup_on_exit "$W"
now() { date +%s.%N; }

"$PULLTIME" synth sn-text-filter-multistage --scale 0.02 --to "oci:$W/image" >/dev/null
layout="oci:$W/image:sn-text-filter-multistage"
# The registry: a node's link per connection, the egress shared by all.
cat > "$W/burst.toml" <<TOML
name = "fleet-burst"
description = "Nodes on a 1 Gbit/s LAN (0.3 ms) behind a registry egress of $EGRESS shared by all."
source = "benches/fleet_real.sh"
rtt_ms = 0.3
connect_rtts = 1
connection_bandwidth = "1Gbit"
link_bandwidth = "$EGRESS"
TOML
port=$(free_port)
"$PULLTIME" serve --addr "127.0.0.1:$port" --network "$W/burst.toml" --layout "fn=$W/image" \
  > "$R/serve.log" 2>&1 & pids+=($!)
ready curl -s "http://127.0.0.1:$port/v2/" -o /dev/null
ref="127.0.0.1:$port/fn:sn-text-filter-multistage"
echo "machine: $(nproc) cores, $(uname -r); stores in $W ($(df -T "$W" | awk 'NR==2{print $2}')); egress $EGRESS; image $ref"

# One burst: every node starts at once; each writes "start end" to times/NODE.
burst() { # puller nodes
  local p=$1 n=$2 i dir=$W/$1-$2
  mkdir -p "$dir/times"
  local daemons=()
  if [ "$p" = containerd ]; then
    for i in $(seq "$n"); do
      containerd_config "$dir/c$i"
      containerd --config "$dir/c$i/config.toml" > "$dir/c$i/log" 2>&1 & daemons+=($!)
    done
    pids+=("${daemons[@]}")
    for i in $(seq "$n"); do ready test -S "$dir/c$i/c.sock"; done
  fi
  local jobs=()
  for i in $(seq "$n"); do
    if [ "$p" = containerd ]; then
      ( s=$(now); ctr --address "$dir/c$i/c.sock" -n fleet images pull --plain-http \
          --snapshotter native "$ref" > /dev/null; echo "$s $(now)" > "$dir/times/$i" ) &
    else
      mkdir -p "$dir/p$i"
      ( s=$(now); "$PULLTIME" pull "$ref" -q --tmp-dir "$dir/p$i" --json "$dir/p$i.json" > /dev/null
        echo "$s $(now)" > "$dir/times/$i" ) &
    fi
    jobs+=($!)
  done
  # Every pull finishes (and is waited for) before a failed one stops the bench.
  local failed=0
  for j in "${jobs[@]}"; do wait "$j" || failed=1; done
  [ "$failed" = 0 ] || { echo "fleet_real.sh: a pull of the $p burst of $n failed" >&2; exit 1; }
  # pulltime's own record times the pull without removing its tree afterwards.
  if [ "$p" = pulltime ]; then
    for i in $(seq "$n"); do
      read -r s _ < "$dir/times/$i"
      python3 -c "import json,sys; print(sys.argv[2], float(sys.argv[2]) + json.load(open(sys.argv[1]))['runs'][0]['wall_s'])" \
        "$dir/p$i.json" "$s" > "$dir/times/$i"
    done
  fi
  cat "$dir"/times/* > "$R/measured-$p-$n.txt"
  # This burst's daemons stop before their stores go (and leave pids).
  for d in ${daemons[@]+"${daemons[@]}"}; do kill "$d" 2>/dev/null || true; done
  for d in ${daemons[@]+"${daemons[@]}"}; do wait "$d" 2>/dev/null || true; done
  local keep=()
  for q in ${pids[@]+"${pids[@]}"}; do
    case " ${daemons[*]-} " in *" $q "*) ;; *) keep+=("$q") ;; esac
  done
  pids=(${keep[@]+"${keep[@]}"})
  rm -rf "$dir"
}

for p in ${PULLERS//,/ }; do
  for n in $NODES; do
    echo "== $p: $n nodes" >&2
    burst "$p" "$n"
    "$PULLTIME" simulate "$layout" --policy "$p" --host "$FITS/$p-without-small.toml" \
      --network lan-1g --registry-on-host --fleet "$n" --egress "$EGRESS" --fleet-spread 0 \
      --json "$R/simulated-$p-$n.json" > "$R/simulated-$p-$n.txt"
  done
done

python3 - "$R" "$NODES" "$PULLERS" "$EGRESS" <<'PY' | tee "$R/table.md"
import json, sys
r, nodes, pullers, egress = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(","), sys.argv[4]
def q(v, p):  # nearest rank, as pulltime's fleet model reports
    v = sorted(v); i = max(1, min(len(v), -(-len(v) * p // 1))); return v[int(i) - 1]
print(f"Bursts against one `pulltime serve` with a {egress} egress shared by all nodes (each node 1 Gbit/s, 0.3 ms). Pull time from each node's start, seconds; simulated from costs fitted to other images.\n")
print("| puller | nodes | measured p50 / p95 / max | simulated p50 / p95 / max | error p50 / p95 / max |")
print("|---|---|---|---|---|")
worst = 0.0
for p in pullers:
    for n in nodes:
        times = [tuple(map(float, l.split())) for l in open(f"{r}/measured-{p}-{n}.txt") if l.strip()]
        d = [e - s for s, e in times]
        sim = json.load(open(f"{r}/simulated-{p}-{n}.json"))["result"]["durations"]
        m = [q(d, .5), q(d, .95), max(d)]
        s = [q(sim, .5), q(sim, .95), max(sim)]
        e = [(b - a) / a for a, b in zip(m, s)]
        worst = max(worst, *map(abs, e))
        print(f"| {p} | {n} | {m[0]:.2f} / {m[1]:.2f} / {m[2]:.2f} | {s[0]:.2f} / {s[1]:.2f} / {s[2]:.2f} | " + " / ".join(f"{x*100:+.0f}%" for x in e) + " |")
print(f"\nworst error: {worst*100:.0f}%")
PY
echo "results: $R" >&2
