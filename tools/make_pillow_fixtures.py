#!/usr/bin/env python3
"""Regenerate tests/fixtures/images/pillow/: some of Pillow's own test images that vtde
decodes as PIL does, and PIL's decoding of each.

    python -m venv /tmp/pil && /tmp/pil/bin/pip install pillow==13.0.0
    /tmp/pil/bin/pip download --no-deps --no-binary :all: pillow==13.0.0   # or fetch the sdist
    tar xzf pillow-13.0.0.tar.gz
    /tmp/pil/bin/python tools/make_pillow_fixtures.py pillow-13.0.0/Tests/images

Only Pillow is needed (the version of tools/reference-env.sh's recordings, 13.0.0).
For each file the script records `rgb/<name>.png`: what transformers' `convert_to_rgb`
makes of `PIL.Image.open(file)` (written out below, as transformers 5.24 has it: images
with an alpha band or a `transparency` entry are composited onto white, every other mode
is `convert("RGB")`), as an 8-bit RGB PNG; and `cases.json`, with PIL's mode and size.

The files are the ones vtde refused before issue 11 and now reads (32-bit float,
signed 8/16/32-bit TIFF, a GIF without a colour table, a BMP with a bad planes field),
plus `tiff_tiled_planar_16bit_RGB.tiff`, which PIL opens and the `tiff` crate panics on
(kept to test that the panic is caught quietly; it is listed with `vtde_unsupported`).
docs/cli.md lists the Pillow test images vtde still does not read, and why.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "images" / "pillow"

# (file under Tests/images, what it is, why vtde does not decode it or None)
FILES = [
    ("10ct_32bit_128.tiff", "32-bit float TIFF (PIL mode F), no PhotometricInterpretation tag", None),
    ("16bit.s.tif", "signed 16-bit TIFF (PIL mode I, raw mode I;16S)", None),
    ("16_bit_binary_pgm.tiff", "signed 32-bit TIFF (PIL mode I, raw mode I;32S)", None),
    ("8bit.s.tif", "signed 8-bit TIFF (PIL mode L: the bytes as they are)", None),
    ("no_palette.gif", "GIF without a global or local colour table (PIL mode L)", None),
    ("bmp/b/badplanes.bmp", "1-bit BMP whose planes field is not 1", None),
    (
        "tiff_tiled_planar_16bit_RGB.tiff",
        "tiled, planar (one plane per channel) 16-bit RGB TIFF",
        "the tiff crate 0.11 panics on tiled planar images (an assertion in its chunk "
        "decoder); the panic is caught and the file refused",
    ),
]


def convert_to_rgb(im: Image.Image) -> Image.Image:
    """transformers 5.24 `image_transforms.convert_to_rgb` for a PIL image."""
    has_alpha = "A" in im.getbands() or im.info.get("transparency") is not None
    if has_alpha:
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pillow_images", type=Path, help="Pillow's Tests/images folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    (out / "files").mkdir(parents=True)
    (out / "rgb").mkdir()
    cases = []
    for rel, note, unsupported in FILES:
        src = args.pillow_images / rel
        name = Path(rel).name
        shutil.copyfile(src, out / "files" / name)
        im = Image.open(src)
        case = {
            "file": name,
            "source": f"Pillow {PIL.__version__} Tests/images/{rel}",
            "note": note,
            "format": im.format,
            "pil_mode": im.mode,
            "size": list(im.size),
            "rgb": f"rgb/{name}.png",
        }
        convert_to_rgb(im).save(out / "rgb" / f"{name}.png")
        if unsupported:
            case["vtde_unsupported"] = unsupported
        cases.append(case)
    (out / "cases.json").write_text(
        json.dumps({"versions": {"PIL": PIL.__version__}, "decode": cases}, indent=1) + "\n"
    )
    (out / "README.md").write_text(
        "# Pillow's test images (generated)\n\n"
        "Written by `tools/make_pillow_fixtures.py` from Pillow's source distribution\n"
        f"(`Tests/images/`, Pillow {PIL.__version__}); do not edit by hand.\n\n"
        "- `files/`: the images, copied unchanged.\n"
        "- `rgb/<name>.png`: transformers' `convert_to_rgb(PIL.Image.open(file))`, as an\n"
        "  8-bit RGB PNG.\n"
        "- `cases.json`: what each file is, PIL's mode and size, and for files vtde does\n"
        "  not decode, why (`vtde_unsupported`).\n\n"
        "The images are Pillow's test files, distributed with Pillow under its licence\n"
        "(MIT-CMU, https://github.com/python-pillow/Pillow/blob/main/LICENSE).\n"
    )


if __name__ == "__main__":
    main()
