#!/usr/bin/env bash
# The Python binding's tests: builds the wheel (tools/build-wheel.sh --dev, reusing the
# `cargo test` build), installs it with pinned numpy, Pillow and pytest in a fresh
# virtual environment, and runs crates/vtde-python/tests against the `vtde` binary of
# this checkout and transformers' recorded fixtures. Run by CI after `cargo test`.
#
#   bash tools/test-python.sh [pytest arguments]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

wheel=$(bash tools/build-wheel.sh --dev)
# target/debug/vtde as `cargo test --workspace` builds it (a no-op after it; a plain
# `cargo build -p vtde-cli` would resolve other features and rebuild much of the tree).
cargo test --quiet --locked --workspace --no-run

venv=$(mktemp -d "${TMPDIR:-/tmp}/vtde-python-test.XXXXXX")
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv" || {
  echo "$0: python3 -m venv failed: Python's venv module is needed (Debian: apt install python3-venv)" >&2
  exit 1
}
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "$wheel" numpy==2.4.6 pillow==13.0.0 pytest==9.2.0

export ORT_DYLIB_PATH
ORT_DYLIB_PATH=$(bash tools/fetch-onnxruntime.sh)
export VTDE_CLI="$repo_root/target/debug/vtde"
# From the tests folder: the installed wheel is imported, not a source folder.
cd crates/vtde-python/tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
