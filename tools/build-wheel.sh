#!/usr/bin/env bash
# Builds the `vtde` Python wheel (abi3: one wheel for CPython 3.9 and later) with maturin
# from PyPI, pinned below, installed in a virtual environment under <repo>/.cache.
#
#   bash tools/build-wheel.sh          # release build; prints the wheel's path
#   bash tools/build-wheel.sh --dev    # cargo's dev profile (dependencies at opt-level 2,
#                                      # vtde's crates unoptimized), reusing `cargo test`'s
#                                      # build: what tools/test-python.sh uses in CI
#
# The wheel lands in <repo>/target/wheels/. It does not hold ONNX Runtime: `vtde.Model`
# finds the library as docs/development.md says, or in an installed `onnxruntime` wheel.
set -euo pipefail

maturin_version=1.16.0

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${VTDE_CACHE_DIR:-$repo_root/.cache}
venv="$cache_root/maturin-$maturin_version"
out="$repo_root/target/wheels"

profile=release
case "${1:-}" in
  "") ;;
  --dev) profile=dev ;;
  *) echo "usage: bash tools/build-wheel.sh [--dev]" >&2; exit 2 ;;
esac

if [[ ! -x $venv/bin/maturin ]]; then
  python3 -m venv "$venv" || {
    echo "$0: python3 -m venv failed: Python's venv module is needed (Debian: apt install python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "maturin==$maturin_version"
fi

mkdir -p "$out"
rm -f "$out"/vtde-*.whl
"$venv/bin/maturin" build --quiet \
  --manifest-path "$repo_root/crates/vtde-python/Cargo.toml" \
  --profile "$profile" --locked --interpreter python3 --out "$out" >&2
ls "$out"/vtde-*.whl
