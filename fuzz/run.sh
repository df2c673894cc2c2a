#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time on a scratch copy of its committed
# seed corpus (fuzz/corpus/<target>/ is never written to). Fails if any target crashes, leaving
# the crashing input in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 20 s, every target)
#
# cargo-fuzz passes nightly-only flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-20}"
shift || true
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
    exit 1
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# No sanitizer: the code under test is safe Rust, and without ASan both the build and every
# execution are much faster; debug assertions (-a) stay on, so overflows still abort.
build_flags=(--sanitizer none --debug-assertions)
cargo fuzz build "${build_flags[@]}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="${CARGO_TARGET_DIR:-target}/$triple/release"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for target in "${targets[@]}"; do
    mkdir -p "$work/$target"
    cp corpus/"$target"/* "$work/$target/"
    echo "== fuzz $target (${secs}s, $(ls corpus/"$target" | wc -l) seeds)"
    log="$work/$target.log"
    mkdir -p "artifacts/$target"
    # The binaries cargo fuzz built, run directly (as `cargo fuzz run` would, without its
    # rebuild check): new inputs go to the scratch corpus, crashes to artifacts/.
    if "$bin_dir/$target" -artifact_prefix="artifacts/$target/" \
        -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$work/$target" >"$log" 2>&1; then
        execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
        echo "   ok: ${execs:-?} executions, corpus grew to $(ls "$work/$target" | wc -l) inputs"
    else
        status=1
        tail -60 "$log"
        echo "error: fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    fi
done
exit $status
