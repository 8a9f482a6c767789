#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library that vtde-runtime loads at run time.
#
# The `ort` crate is built with `load-dynamic` and cannot download binaries on machines
# that only reach package registries, so this takes the library out of the pinned PyPI
# wheel instead:
#
#   bash tools/fetch-onnxruntime.sh        # prints the library's path when ready
#   bash tools/fetch-onnxruntime.sh --gpu  # the CUDA 13 build, for NVIDIA GPUs (see below)
#
# Where: $VTDE_CACHE_DIR/onnxruntime/1.31.1/, else <repo>/.cache/onnxruntime/1.31.1/ (the
# same places vtde-runtime searches). Idempotent: nothing is downloaded when the library
# is already there with the pinned sha256. Both the wheel and the library are checked
# against sha256 values pinned below, per wheel file name; an unknown platform fails
# with a message instead of running an unchecked binary.
set -euo pipefail

version=1.31.1
lib_name="libonnxruntime.so.$version"

case "${1:-}" in
  "") ;;
  --gpu) exec bash "$(dirname "${BASH_SOURCE[0]}")/fetch-onnxruntime-gpu.sh" ;;
  *) echo "usage: bash tools/fetch-onnxruntime.sh [--gpu]" >&2; exit 2 ;;
esac

# Wheel file name -> "wheel-sha256 library-sha256". The python tag is pinned (cp311)
# so that every machine of one platform gets the same file: the C library inside does
# not depend on Python.
declare -A pinned=(
  [onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl]="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"
  [onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_aarch64.whl]="da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3 8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467"
)

die() { echo "fetch-onnxruntime: $*" >&2; exit 1; }
sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${VTDE_CACHE_DIR:-$repo_root/.cache}
dest="$cache_root/onnxruntime/$version"

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) platform=manylinux_2_28_x86_64 ;;
  Linux/aarch64 | Linux/arm64) platform=manylinux_2_28_aarch64 ;;
  *) die "no pinned onnxruntime $version wheel for $(uname -s)/$(uname -m); install ONNX Runtime $version yourself and set ORT_DYLIB_PATH to its shared library" ;;
esac
wheel="onnxruntime-$version-cp311-cp311-$platform.whl"
[[ -n ${pinned[$wheel]:-} ]] || die "no pinned sha256 for $wheel"
read -r wheel_sha lib_sha <<<"${pinned[$wheel]}"

lib="$dest/$lib_name"
if [[ -f $lib && $(sha256 "$lib") == "$lib_sha" ]]; then
  echo "$lib"; exit 0
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetch-onnxruntime: downloading $wheel from PyPI" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform "$platform" --python-version 3.11 --implementation cp --abi cp311 \
  --dest "$tmp" "onnxruntime==$version" >&2 || die "pip download of onnxruntime==$version failed"

shopt -s nullglob
got=("$tmp"/*.whl)
shopt -u nullglob
[[ ${#got[@]} -eq 1 ]] || die "expected one wheel from pip, got ${#got[@]}"
got_name=$(basename "${got[0]}")
[[ $got_name == "$wheel" ]] || die "pip returned $got_name, which has no pinned sha256 (expected $wheel)"
actual=$(sha256 "${got[0]}")
[[ $actual == "$wheel_sha" ]] || die "sha256 mismatch for $wheel: expected $wheel_sha, got $actual"

# Extract with Python's zipfile: python3 is needed for pip anyway, unzip may be absent.
python3 - "${got[0]}" "onnxruntime/capi/$lib_name" "$tmp/$lib_name" <<'EOF' || die "could not extract $lib_name from $wheel"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
actual=$(sha256 "$tmp/$lib_name")
[[ $actual == "$lib_sha" ]] || die "sha256 mismatch for $lib_name in $wheel: expected $lib_sha, got $actual"

chmod 0755 "$tmp/$lib_name"
# Rename into place so that a killed run never leaves a half-written library.
mv -f "$tmp/$lib_name" "$lib"
ln -sfn "$lib_name" "$dest/libonnxruntime.so"
echo "$lib"
