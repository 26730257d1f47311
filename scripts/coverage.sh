#!/usr/bin/env bash
# Measure line coverage of the Rust core and of the Python package.
#
# Usage: scripts/coverage.sh
#
# Steps, each printed before it runs:
#   1. `cargo test --lib --release` under `cargo llvm-cov show-env`: the Rust
#      unit tests alone, without Python.
#   2. `maturin develop --release` under the same environment, which builds
#      the extension with coverage instrumentation, then the whole pytest
#      suite under coverage.py. This one run gives the Python coverage of
#      python/outcap/ and the Rust coverage of the code that only Python
#      drives (src/capture.rs, src/process.rs, src/spawn.rs, src/python/).
#   3. `cargo llvm-cov report`: Rust coverage of steps 1 and 2 together.
# Both builds use the release profile, so the report finds the test binary
# and the extension in one profile directory.
#
# Environment:
#   VENV              virtual environment to use, created with the test
#                     dependencies when missing (default: .venv)
#   CARGO_TARGET_DIR  Cargo target directory (default: target/)
#   KEEP_INSTRUMENTED 1 leaves the instrumented extension installed in VENV;
#                     by default a normal build replaces it at the end
#
# Reports go to $CARGO_TARGET_DIR/coverage-reports/ (rust-lib.txt,
# rust-all.txt, python.txt), with every uncovered line listed.
#
# Needs cargo-llvm-cov (`cargo install cargo-llvm-cov --locked`) and the
# llvm-tools component (`rustup component add llvm-tools`).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
venv=${VENV:-$repo/.venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
reports=$CARGO_TARGET_DIR/coverage-reports
export COVERAGE_FILE=$reports/python.coverage

if ! cargo llvm-cov --version >/dev/null 2>&1; then
    echo "scripts/coverage.sh: cargo-llvm-cov not found: install it with 'cargo install cargo-llvm-cov --locked'" >&2
    exit 2
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "+ python3 -m venv $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet maturin pytest pytest-timeout hypothesis mypy coverage
fi
if ! "$venv/bin/python" -c "import coverage, pytest, hypothesis" 2>/dev/null; then
    "$venv/bin/pip" install --quiet pytest pytest-timeout hypothesis mypy coverage
fi

# show-env exports RUSTC_WRAPPER and LLVM_PROFILE_FILE, so that the cargo
# and maturin builds below are instrumented and every process that runs them
# writes its counters into the target directory. Plain `cargo llvm-cov`
# would build in a separate llvm-cov-target/ directory that the maturin
# build does not share.
echo "+ source <(cargo llvm-cov show-env --sh)"
# shellcheck disable=SC1090
source <(cargo llvm-cov show-env --sh 2>/dev/null)

echo "+ cargo llvm-cov clean --workspace"
cargo llvm-cov clean --workspace
mkdir -p "$reports"

echo "+ cargo test --lib --release (instrumented)"
cargo test --lib --release
cargo llvm-cov report --release --show-missing-lines >"$reports/rust-lib.txt"

echo "+ maturin develop --release (instrumented)"
VIRTUAL_ENV=$venv "$venv/bin/maturin" develop --release

# patch = subprocess makes coverage.py also measure the Python processes
# that the tests start (the CLI tests run `python -m outcap`).
rcfile=$reports/coveragerc
cat >"$rcfile" <<RC
[run]
branch = true
source = outcap
parallel = true
patch = subprocess
data_file = $reports/python.coverage
RC

echo "+ coverage run --rcfile=$rcfile -m pytest tests/"
pytest_status=0
(
    cd "$repo"
    "$venv/bin/python" -m coverage erase --rcfile="$rcfile"
    "$venv/bin/python" -m coverage run --rcfile="$rcfile" -m pytest tests/ -q -p no:cacheprovider
) || pytest_status=$?
"$venv/bin/python" -m coverage combine --rcfile="$rcfile" --quiet
"$venv/bin/python" -m coverage report --rcfile="$rcfile" --show-missing >"$reports/python.txt"

echo "+ cargo llvm-cov report --release --show-missing-lines"
cargo llvm-cov report --release --show-missing-lines >"$reports/rust-all.txt"

# Without LLVM_PROFILE_FILE an instrumented extension writes default_*.profraw
# into the working directory of every process that imports it, so put a
# normal build back unless asked not to. Cargo does not see the flags that
# the wrapper added, so the crate must be cleaned to be rebuilt without them.
if [[ "${KEEP_INSTRUMENTED:-0}" != 1 ]]; then
    echo "+ cargo clean -p outcap --release; maturin develop --release (normal build)"
    (
        unset RUSTC_WRAPPER LLVM_PROFILE_FILE
        cargo clean -p outcap --release
        VIRTUAL_ENV=$venv "$venv/bin/maturin" develop --release
    )
fi

echo
echo "Rust, cargo test --lib --release only ($reports/rust-lib.txt):"
grep -E '^(Filename|TOTAL)' "$reports/rust-lib.txt"
echo
echo "Rust, cargo test --lib --release and pytest ($reports/rust-all.txt):"
grep -E '^(Filename|TOTAL)' "$reports/rust-all.txt"
echo
echo "Python ($reports/python.txt):"
grep -E '^(Name|TOTAL)' "$reports/python.txt"

if (( pytest_status != 0 )); then
    echo "scripts/coverage.sh: pytest failed (exit $pytest_status); the figures above cover a failing run" >&2
    exit "$pytest_status"
fi
