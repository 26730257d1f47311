#!/usr/bin/env bash
# Run each cargo-fuzz target in fuzz/ for a bounded time.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#
#   SECONDS  time per target, default 60
#   TARGET   ansi, ring, output_json or compress; default all four, one after
#            another
#
# Prints one line per target with the executions, covered edges, corpus size
# and result. Exits 1 when any target found a crash, whose input is saved
# under fuzz/artifacts/TARGET/ with the libFuzzer log beside it. The corpus in
# fuzz/corpus/TARGET/ grows from run to run and starts from fuzz/seeds/TARGET/.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). libFuzzer needs
# nightly-only rustc flags, so the script sets RUSTC_BOOTSTRAP=1 to allow them
# on a stable toolchain. Builds go to $CARGO_TARGET_DIR when it is set, else to
# fuzz/target/. The targets are built as cargo-fuzz builds by default: release
# optimizations with debug assertions, overflow checks and AddressSanitizer.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "scripts/fuzz.sh: invalid SECONDS '$seconds': expected a whole number of seconds >= 1" >&2
    exit 2
fi
shift $(( $# > 0 ? 1 : 0 ))

all_targets=(ansi ring output_json compress)
if (( $# > 0 )); then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi
for target in "${targets[@]}"; do
    if [[ ! -f "fuzz/fuzz_targets/$target.rs" ]]; then
        echo "scripts/fuzz.sh: unknown target '$target': expected one of ${all_targets[*]}" >&2
        exit 2
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: cargo-fuzz not found: install it with 'cargo install cargo-fuzz --locked'" >&2
    exit 2
fi

export RUSTC_BOOTSTRAP=1
target_dir=${CARGO_TARGET_DIR:-$repo/fuzz/target}

# Maximum input length per target. The ansi target needs more than MAX_STRING_LEN
# (4096) stream bytes to reach the string bound.
max_len() {
    case "$1" in
        ansi) echo 8192 ;;
        ring) echo 1024 ;;
        output_json) echo 4096 ;;
        compress) echo 4096 ;;
    esac
}

echo "+ cargo fuzz build (target dir $target_dir)"
cargo fuzz build --fuzz-dir fuzz --target-dir "$target_dir"

crashed=()
summary=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    log="$artifacts/fuzz.log"
    mkdir -p "$corpus" "$artifacts"
    cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    corpus_before=$(find "$corpus" -type f | wc -l)

    libfuzzer_args=(
        "-max_total_time=$seconds"
        "-max_len=$(max_len "$target")"
        "-timeout=10"
        "-print_final_stats=1"
        "-artifact_prefix=$artifacts/"
    )
    if [[ -f "fuzz/dicts/$target.dict" ]]; then
        libfuzzer_args+=("-dict=fuzz/dicts/$target.dict")
    fi

    echo "+ cargo fuzz run $target $corpus -- ${libfuzzer_args[*]}"
    status=0
    cargo fuzz run --fuzz-dir fuzz --target-dir "$target_dir" "$target" "$corpus" \
        -- "${libfuzzer_args[@]}" >"$log" 2>&1 || status=$?

    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    # libFuzzer's last status line: "cov:" counts covered edges, "corp:" the
    # inputs it keeps in memory. The corpus folder also keeps every input it
    # ever added, so it contains more files.
    status_line=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    edges=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")
    units=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$status_line")
    corpus_after=$(find "$corpus" -type f | wc -l)
    if (( status == 0 )); then
        result="ok"
    else
        result="CRASH (exit $status)"
        crashed+=("$target")
        echo "---- $target: crash (full log in $log) ----"
        # The panic message, or AddressSanitizer's report, without the backtrace.
        sed -n '/panicked at\|==[0-9]*==ERROR/,/stack backtrace:\|SUMMARY:/p' "$log" | head -n 40
        artifact=$(sed -n "s/.*Test unit written to //p" "$log" | tail -n 1)
        echo "input: ${artifact:-not saved}"
        echo "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz $target ${artifact:-INPUT}"
    fi
    line=$(printf '%-12s %5ss %10s executions  %5s edges  %5s corpus units  files %5s -> %5s  %s' \
        "$target" "$seconds" "${executions:-?}" "${edges:-?}" "${units:-?}" \
        "$corpus_before" "$corpus_after" "$result")
    echo "$line"
    summary+=("$line")
done

echo
echo "summary:"
printf '  %s\n' "${summary[@]}"
if (( ${#crashed[@]} > 0 )); then
    echo "scripts/fuzz.sh: crashes in ${crashed[*]}; the inputs are in fuzz/artifacts/" >&2
    exit 1
fi
