# Shared by the bench scripts that start daemons and registries: sourced, not run.
# They add the PIDs of what they start to `pids`; on exit each is stopped and the
# work directory given to bench_cleanup_on_exit removed.

pids=()

# Stops everything in `pids` and removes DIR when the script exits.
bench_cleanup_on_exit() { # DIR
  BENCH_WORK=$1
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null || true; done
  rm -rf "$BENCH_WORK"
}

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Retries a command for up to 30 s (150 x 0.2 s), then gives up with the script's name.
ready() {
  for _ in $(seq 150); do "$@" 2>/dev/null && return 0; sleep 0.2; done
  echo "${0##*/}: gave up waiting for: $*" >&2
  exit 1
}

# Writes DIR/config.toml for a containerd rooted in DIR (sockets DIR/c.sock and
# DIR/t.sock, CRI off).
containerd_config() { # DIR
  mkdir -p "$1"
  printf 'version = 2\nroot = "%s"\nstate = "%s"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s"\n' \
    "$1/root" "$1/state" "$1/c.sock" "$1/t.sock" > "$1/config.toml"
}
