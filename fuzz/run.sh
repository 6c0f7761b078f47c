#!/usr/bin/env bash
# Builds the fuzz targets and runs each one for a bounded time, one after the other.
#
#   fuzz/run.sh                      every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=300 fuzz/run.sh layer_apply manifest
#
# Environment:
#   FUZZ_SECONDS      seconds per target (libFuzzer -max_total_time), default 60
#   FUZZ_RSS_MB       memory limit per target (-rss_limit_mb), default 2048
#   FUZZ_TIMEOUT      seconds one input may take before it counts as a hang, default 10
#   FUZZ_MAX_LEN      largest input libFuzzer generates, default 65536
#   FUZZ_FILE_MB      largest file the layer targets may write (ulimit -f), default 64
#   PULLTIME_FUZZ_DIR where the layer targets make their roots, default /tmp/pulltime-fuzz-layer
#
# Output under fuzz/out/: corpus/<target> (grows across runs), artifacts/<target>
# (crashing, hanging or leaking inputs), logs/<target>.log, seeds/ (regenerated
# each run by gen_seeds.py). Exits non-zero if any target found a crash, a hang
# or ran out of memory, and prints the artifacts.
#
# The layer targets write files, symlinks and hard links from fuzzed tars. When
# run as root they run as `nobody`, so that a bug letting an entry escape its root
# cannot damage the machine; the harness still detects escapes (see src/lib.rs).
set -euo pipefail

cd "$(dirname "$0")"
ALL_TARGETS=(reference www_authenticate manifest layer_apply layer_apply_gzip)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
SECONDS_EACH=${FUZZ_SECONDS:-60}
RSS_MB=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
FSIZE_MB=${FUZZ_FILE_MB:-64}
export PULLTIME_FUZZ_DIR=${PULLTIME_FUZZ_DIR:-/tmp/pulltime-fuzz-layer}
TRIPLE=$(rustc +nightly -vV | sed -n 's/^host: //p')
BIN_DIR=target/$TRIPLE/release

mkdir -p out
python3 gen_seeds.py out/seeds >/dev/null
# Release build with AddressSanitizer and coverage instrumentation (cargo-fuzz's
# defaults), all targets.
if ! cargo +nightly fuzz build >out/build.log 2>&1; then
    tail -n 30 out/build.log >&2
    echo "fuzz build failed (fuzz/out/build.log)" >&2
    exit 2
fi

mkdir -p out/logs
status=0
summary=()
for t in "${TARGETS[@]}"; do
    corpus=out/corpus/$t
    artifacts=out/artifacts/$t
    log=out/logs/$t.log
    mkdir -p "$corpus" "$artifacts"
    run=("$BIN_DIR/$t")
    fsize=unlimited
    case $t in
    layer_apply*)
        # A tiny tar can declare a huge (sparse) file: cap what one file may grow to,
        # so such an input is reported (SIGXFSZ, -handle_xfsz) instead of filling /tmp.
        fsize=$((FSIZE_MB * 1024))
        mkdir -p "$PULLTIME_FUZZ_DIR"
        if [ "$(id -u)" = 0 ]; then
            chown nobody "$PULLTIME_FUZZ_DIR" "$corpus" "$artifacts"
            run=(setpriv --reuid=nobody --regid=nogroup --clear-groups "$BIN_DIR/$t")
        fi
        ;;
    esac
    echo "== $t: ${SECONDS_EACH}s"
    set +e
    (ulimit -f "$fsize" && exec "${run[@]}" "$corpus" "out/seeds/$t" \
        -dict="dict/${t%_gzip}.dict" \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" \
        -timeout="$TIMEOUT" -max_len="$MAX_LEN" \
        -artifact_prefix="$artifacts/" -print_final_stats=1) >"$log" 2>&1
    rc=$?
    set -e
    case $t in layer_apply*) rm -rf "${PULLTIME_FUZZ_DIR:?}"/p* ;; esac
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    found=$(find "$artifacts" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        status=1
        verdict="FOUND (exit $rc)"
    else
        verdict=ok
    fi
    summary+=("$(printf '%-18s %10s execs  cov %-6s ft %-6s corpus %-12s %s' \
        "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$verdict")")
done

echo
echo "== summary (${SECONDS_EACH}s per target; logs in fuzz/out/logs/)"
printf '%s\n' "${summary[@]}"
if [ "$status" -ne 0 ]; then
    echo
    echo "Artifacts (replay one with: $BIN_DIR/<target> <file>):"
    find out/artifacts -type f -printf 'fuzz/%p\n'
fi
exit "$status"
