#!/usr/bin/env python3
"""Regenerate tests/fixtures/images/: image files in every format and mode vtde decodes,
and what PIL and transformers make of them.

    "$(tools/reference-env.sh)/bin/python" tools/make_image_fixtures.py

The images are cut from scikit-image's bundled photos (`skimage.data`; see the README this
script writes for their licences) and written with PIL, or, where PIL cannot write a
variant (16-bit colour PNGs, low bit depths, Adam7 interlacing, tRNS on RGB and grey,
YCCK JPEGs, APNG), by the small writers below. For each file the script records:

- `rgb/<name>.png`: what transformers' `convert_to_rgb` makes of `PIL.Image.open(file)`
  (alpha and transparency composited onto white; every other mode `convert("RGB")`),
  stored losslessly as an 8-bit RGB PNG;
- `rgb_exif/<name>.png` for files with an EXIF orientation: the same after
  `PIL.ImageOps.exif_transpose` (what `transformers.image_utils.load_image` does);
- `pixel_values.safetensors`: `pixel_values` from transformers' PIL-backend processors
  (`CLIPImageProcessorPil`, `ViTImageProcessorPil`) for every file with one CLIP-style
  config, and for a set of odd-sized images with every PIL filter, both CLIP-style
  (shortest edge + center crop) and ViT-style (exact size) resizes.

`cases.json` lists it all; the processor configs are written in the form of the vtde
manifest's `image` section (`ImagePreprocess`), so a test can build vtde's preprocessor
from the same numbers. The whole output directory is rewritten; everything is seeded.

The JPEG end-to-end check (`jpeg_embeds` in cases.json) also runs the `vit-bert-224`
fixture checkpoint on a few real-photo JPEGs and records the normalized image embeddings.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL
import safetensors
import skimage
import skimage.data
import torch
import transformers
from PIL import Image, ImageFilter, ImageOps
from safetensors.numpy import save_file
from transformers import CLIPImageProcessorPil, ViTImageProcessorPil

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "images"
SEED = 424242

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
FILTERS = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,
    "box": Image.BOX,
    "hamming": Image.HAMMING,
}


# ---------------------------------------------------------------------------------------
# Source photos


def photo(name: str) -> Image.Image:
    """A scikit-image photo as a PIL image (its own mode)."""
    ddir = Path(skimage.data.__file__).parent
    files = {"rocket": "rocket.jpg", "retina": "retina.jpg"}
    if name in files:
        return Image.open(ddir / files[name])
    return Image.fromarray(getattr(skimage.data, name)())


def small(name: str, size: tuple[int, int]) -> Image.Image:
    return photo(name).convert("RGB").resize(size, Image.LANCZOS)


def strip(size: tuple[int, int]) -> Image.Image:
    """A tall, narrow image: the chelsea photo squeezed and slightly blurred, so that the
    odd 37x1001 size gives small files."""
    return small("chelsea", size).filter(ImageFilter.GaussianBlur(1.5))


# ---------------------------------------------------------------------------------------
# Minimal writers for what PIL cannot write


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_rows(samples: np.ndarray, bit_depth: int) -> list[bytes]:
    """Rows of samples (h, w*channels) packed at bit_depth, big-endian."""
    rows = []
    for row in samples:
        if bit_depth == 16:
            rows.append(row.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(row.astype(np.uint8).tobytes())
        else:
            per_byte = 8 // bit_depth
            padded = np.zeros(-(-len(row) // per_byte) * per_byte, dtype=np.uint8)
            padded[: len(row)] = row
            packed = np.zeros(len(padded) // per_byte, dtype=np.uint8)
            for i in range(per_byte):
                packed |= (padded[i::per_byte] << (8 - bit_depth * (i + 1))).astype(np.uint8)
            rows.append(packed.tobytes())
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path: Path, samples: np.ndarray, color_type: int, bit_depth: int,
              palette: bytes | None = None, trns: bytes | None = None, interlace: bool = False,
              extra: list[bytes] | None = None) -> None:
    """samples: (h, w, channels) integer array."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, c = samples.shape
    raw = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            raw += b"".join(b"\x00" + r for r in pack_rows(sub.reshape(sub.shape[0], -1), bit_depth))
    else:
        raw = b"".join(b"\x00" + r for r in pack_rows(samples.reshape(h, -1), bit_depth))
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace)))
    if palette is not None:
        out += png_chunk(b"PLTE", palette)
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    for chunk in extra or []:
        out += chunk
    out += png_chunk(b"IDAT", zlib.compress(raw, 9))
    out += png_chunk(b"IEND", b"")
    path.write_bytes(out)


def apng(path: Path, frames: list[np.ndarray]) -> None:
    """An animated PNG (8-bit RGB); the default image is the first frame."""
    h, w, _ = frames[0].shape
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    out += png_chunk(b"acTL", struct.pack(">II", len(frames), 0))
    seq = 0
    for i, f in enumerate(frames):
        out += png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, 1, 10, 0, 0))
        seq += 1
        data = zlib.compress(b"".join(b"\x00" + r.tobytes() for r in f.reshape(h, -1)), 9)
        if i == 0:
            out += png_chunk(b"IDAT", data)
        else:
            out += png_chunk(b"fdAT", struct.pack(">I", seq) + data)
            seq += 1
    out += png_chunk(b"IEND", b"")
    path.write_bytes(out)


def set_adobe_transform(data: bytes, transform: int) -> bytes:
    """Rewrites the colour transform byte of a JPEG's Adobe APP14 marker."""
    at = data.find(b"\xff\xee\x00\x0eAdobe")
    if at < 0:
        raise ValueError("no Adobe marker")
    pos = at + 4 + 5 + 2 + 2 + 2  # marker, length, "Adobe", version, flags0, flags1
    return data[:pos] + bytes([transform]) + data[pos + 1:]


def to_cmyk(rgb: np.ndarray) -> Image.Image:
    """CMYK with black generation (PIL's own RGB -> CMYK conversion leaves K at 0, which
    would not test the K arithmetic): K = 3/4 of the common ink, removed from C, M, Y."""
    cmy = 255 - rgb.astype(np.int32)
    k = cmy.min(axis=2) * 3 // 4
    planes = np.dstack([cmy - k[:, :, None], k]).astype(np.uint8)
    return Image.frombytes("CMYK", (rgb.shape[1], rgb.shape[0]), planes.tobytes())


def gif_with_offset_frame(frame_gif: bytes, screen: tuple[int, int], offset: tuple[int, int],
                          background: int = 0) -> bytes:
    """Rewrites a single-frame GIF written by PIL so that its frame sits at `offset` on a
    larger logical screen (PIL writes frames as large as the screen)."""
    data = bytearray(frame_gif)
    data[6:10] = struct.pack("<HH", *screen)
    data[11] = background
    packed = data[10]
    pos = 13 + (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0)
    while data[pos] == 0x21:  # extensions: label, then sub-blocks up to a 0 length
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C, "image descriptor expected"
    data[pos + 1:pos + 5] = struct.pack("<HH", *offset)
    return bytes(data)


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


# ---------------------------------------------------------------------------------------
# The corpus


def make_files(files: Path, rng: np.random.Generator) -> list[dict]:
    """Writes every test file; returns their descriptions (name, note)."""
    cases: list[dict] = []

    def add(name: str, note: str, **extra) -> None:
        cases.append({"file": name, "note": note, **extra})

    base = small("coffee", (71, 53))  # odd sizes: partial JPEG MCUs in both directions
    arr = np.asarray(base)

    # JPEG ------------------------------------------------------------------------------
    for sub, label, q in [(2, "420", 90), (1, "422", 75), (0, "444", 95)]:
        base.save(files / f"jpeg_{label}.jpg", quality=q, subsampling=sub)
        add(f"jpeg_{label}.jpg", f"baseline JPEG, {label[0]}:{label[1]}:{label[2]} chroma subsampling, q{q}")
    base.save(files / "jpeg_progressive_420.jpg", quality=85, progressive=True)
    add("jpeg_progressive_420.jpg", "progressive JPEG, 4:2:0")
    base.save(files / "jpeg_progressive_444.jpg", quality=85, progressive=True, subsampling=0)
    add("jpeg_progressive_444.jpg", "progressive JPEG, 4:4:4")
    base.save(files / "jpeg_restart.jpg", quality=90, restart_marker_blocks=2)
    add("jpeg_restart.jpg", "baseline JPEG with restart markers every 2 MCUs")
    base.save(files / "jpeg_optimized.jpg", quality=80, optimize=True)
    add("jpeg_optimized.jpg", "baseline JPEG with optimized Huffman tables")
    base.convert("L").save(files / "jpeg_gray.jpg", quality=90)
    add("jpeg_gray.jpg", "greyscale JPEG (PIL mode L)")
    cmyk = to_cmyk(arr)
    cmyk.save(files / "jpeg_cmyk.jpg", quality=90)
    add("jpeg_cmyk.jpg", "CMYK JPEG with an Adobe marker (inverted CMYK, PIL mode CMYK)")
    # YCCK: PIL cannot write it, so write CMYK planes that hold YCbCr of the photo and
    # flip the Adobe transform to 2; every decoder then converts YCC -> CMY.
    ycc = np.asarray(base.convert("YCbCr")).astype(np.uint8)
    k = (rng.random(ycc.shape[:2]) * 40).astype(np.uint8)
    planes = np.dstack([ycc, k])
    # PIL stores CMYK inverted (rawmode CMYK;I): write the complement so the stored
    # component values are the YCbCr ones.
    ycck_src = Image.fromarray(255 - planes, mode="CMYK")
    buf = io.BytesIO()
    ycck_src.save(buf, format="JPEG", quality=92)
    (files / "jpeg_ycck.jpg").write_bytes(set_adobe_transform(buf.getvalue(), 2))
    add("jpeg_ycck.jpg", "YCCK JPEG (Adobe transform 2, PIL mode CMYK)")
    strip((37, 1001)).save(files / "jpeg_37x1001.jpg", quality=90)
    add("jpeg_37x1001.jpg", "37x1001 JPEG, 4:2:0")
    small("astronaut", (1, 1)).save(files / "jpeg_1x1.jpg", quality=90)
    add("jpeg_1x1.jpg", "1x1 JPEG")
    # A real camera JPEG from scikit-image, cut losslessly? No: re-encoding is needed to
    # keep it small; the camera original is measured in the JPEG end-to-end check.
    small("rocket", (96, 64)).save(files / "jpeg_rocket.jpg", quality=88, subsampling=2)
    add("jpeg_rocket.jpg", "photo JPEG, 4:2:0, q88")

    # EXIF orientation: a non-symmetric image, one JPEG per orientation value.
    orient = small("chelsea", (24, 16))
    for o in range(1, 9):
        orient.save(files / f"exif_{o}.jpg", quality=92, exif=exif_bytes(o))
        add(f"exif_{o}.jpg", f"JPEG with EXIF orientation {o}", exif_orientation=o)
    orient.save(files / "exif_6.png", exif=exif_bytes(6))
    add("exif_6.png", "PNG with an eXIf chunk, orientation 6", exif_orientation=6)
    orient.save(files / "exif_8.webp", lossless=True, exif=exif_bytes(8))
    add("exif_8.webp", "lossless WebP with EXIF orientation 8", exif_orientation=8)

    # PNG ---------------------------------------------------------------------------------
    base.save(files / "png_rgb8.png")
    add("png_rgb8.png", "8-bit RGB PNG")
    # A photo with a synthetic alpha: a radial falloff (0 at the corners, opaque in the
    # middle) and a fully transparent band, so every alpha value from 0 to 255 occurs.
    yy, xx = np.mgrid[0:60, 0:60]
    radial = np.clip(255 * (1.2 - np.hypot(yy - 30, xx - 30) / 30), 0, 255).astype(np.uint8)
    radial[40:46, :] = 0
    rgba = small("chelsea", (60, 60)).convert("RGBA")
    rgba.putalpha(Image.fromarray(radial))
    rgba.save(files / "png_rgba8.png")
    add("png_rgba8.png", "8-bit RGBA PNG with varied alpha")
    base.convert("L").save(files / "png_gray8.png")
    add("png_gray8.png", "8-bit greyscale PNG (L)")
    la = Image.merge("LA", [base.convert("L"), rgba.resize(base.size).getchannel("A")])
    la.save(files / "png_la8.png")
    add("png_la8.png", "8-bit grey + alpha PNG (LA)")
    pal = base.quantize(64, dither=Image.Dither.NONE)
    pal.save(files / "png_palette.png")
    add("png_palette.png", "8-bit palette PNG (P)")
    pal_t = pal.copy()
    pal_t.info["transparency"] = 3
    pal_t.save(files / "png_palette_trns.png", transparency=3)
    add("png_palette_trns.png", "palette PNG with a tRNS transparent index")
    # Palette with per-entry alpha (tRNS of several entries).
    palette = pal.getpalette()[: 64 * 3]
    alphas = bytes(int(a) for a in np.linspace(0, 255, 64))
    write_png(files / "png_palette_alpha.png", np.asarray(pal), 3, 8,
              palette=bytes(palette), trns=alphas)
    add("png_palette_alpha.png", "palette PNG with partial alpha for every entry")
    write_png(files / "png_palette_4bit.png", np.asarray(base.quantize(16)), 3, 4,
              palette=bytes(base.quantize(16).getpalette()[: 16 * 3]))
    add("png_palette_4bit.png", "4-bit palette PNG")
    # 16-bit samples whose low byte is noise, so that the conversion's use of it shows.
    noise = rng.integers(0, 256, size=arr.shape, dtype=np.uint16)
    rgb16 = arr.astype(np.uint16) * 256 + noise
    write_png(files / "png_rgb16.png", rgb16, 2, 16)
    add("png_rgb16.png", "16-bit RGB PNG")
    alpha16 = (np.asarray(rgba.resize(base.size).getchannel("A")).astype(np.uint16) * 257)
    write_png(files / "png_rgba16.png", np.dstack([rgb16, alpha16]), 6, 16)
    add("png_rgba16.png", "16-bit RGBA PNG")
    gray = np.asarray(base.convert("L")).astype(np.uint16)
    write_png(files / "png_gray16.png", gray * 256 + noise[:, :, 0], 0, 16)
    add("png_gray16.png", "16-bit greyscale PNG (PIL mode I;16; values above 255 clip)")
    write_png(files / "png_gray16_low.png", gray, 0, 16)
    add("png_gray16_low.png", "16-bit greyscale PNG with values 0..255 only")
    write_png(files / "png_la16.png", np.dstack([gray * 257, alpha16]), 4, 16)
    add("png_la16.png", "16-bit grey + alpha PNG")
    for bits in (1, 2, 4):
        levels = (1 << bits) - 1
        write_png(files / f"png_gray{bits}.png", (gray * levels + 127) // 255, 0, bits)
        add(f"png_gray{bits}.png", f"{bits}-bit greyscale PNG")
    write_png(files / "png_rgb_trns.png", arr, 2, 8, trns=struct.pack(">HHH", *arr[10, 10]))
    add("png_rgb_trns.png", "8-bit RGB PNG with a tRNS colour key")
    g8 = np.asarray(base.convert("L"))
    write_png(files / "png_gray_trns.png", g8, 0, 8, trns=struct.pack(">H", int(g8[5, 5])))
    add("png_gray_trns.png", "8-bit greyscale PNG with a tRNS grey key")
    write_png(files / "png_interlaced.png", arr, 2, 8, interlace=True)
    add("png_interlaced.png", "Adam7-interlaced RGB PNG")
    frames = [arr, np.asarray(small("chelsea", (71, 53)))]
    apng(files / "png_animated.png", frames)
    add("png_animated.png", "animated PNG (APNG); the default image is frame 1")
    small("astronaut", (1, 1)).save(files / "png_1x1.png")
    add("png_1x1.png", "1x1 PNG")
    small("astronaut", (1, 4000)).save(files / "png_1x4000.png")
    add("png_1x4000.png", "1x4000 PNG")
    strip((37, 1001)).save(files / "png_37x1001.png")
    add("png_37x1001.png", "37x1001 PNG")
    small("chelsea", (3, 2)).save(files / "png_3x2.png")
    add("png_3x2.png", "3x2 PNG (upscaling)")

    # WebP --------------------------------------------------------------------------------
    base.save(files / "webp_lossy.webp", quality=80)
    add("webp_lossy.webp", "lossy WebP (VP8)")
    base.save(files / "webp_lossless.webp", lossless=True)
    add("webp_lossless.webp", "lossless WebP (VP8L)")
    rgba.save(files / "webp_lossy_alpha.webp", quality=80)
    add("webp_lossy_alpha.webp", "lossy WebP with an alpha channel")
    rgba.save(files / "webp_lossless_alpha.webp", lossless=True)
    add("webp_lossless_alpha.webp", "lossless WebP with an alpha channel")
    base.save(files / "webp_animated.webp", save_all=True, lossless=True,
              append_images=[small("chelsea", (71, 53))], duration=100)
    add("webp_animated.webp", "animated WebP; the first frame counts")

    # GIF ---------------------------------------------------------------------------------
    pal.save(files / "gif_still.gif")
    add("gif_still.gif", "single-frame GIF")
    pal.save(files / "gif_transparent.gif", transparency=3)
    add("gif_transparent.gif", "GIF with a transparent index")
    second = small("chelsea", (71, 53)).quantize(64)
    pal.save(files / "gif_animated.gif", save_all=True, append_images=[second], duration=100, loop=0)
    add("gif_animated.gif", "animated GIF; the first frame counts")
    part = small("chelsea", (40, 30)).quantize(32)
    buf = io.BytesIO()
    part.save(buf, format="GIF")
    (files / "gif_partial_frame.gif").write_bytes(gif_with_offset_frame(buf.getvalue(), (71, 53), (20, 12), 5))
    add("gif_partial_frame.gif", "GIF whose first frame covers part of the screen (background index 5)")
    buf = io.BytesIO()
    part.save(buf, format="GIF", transparency=2)
    (files / "gif_partial_frame_transparent.gif").write_bytes(
        gif_with_offset_frame(buf.getvalue(), (71, 53), (20, 12), 5))
    add("gif_partial_frame_transparent.gif", "GIF, partial first frame with a transparent index")

    # BMP ---------------------------------------------------------------------------------
    base.save(files / "bmp_rgb24.bmp")
    add("bmp_rgb24.bmp", "24-bit BMP")
    rgba.save(files / "bmp_rgba32.bmp")
    add("bmp_rgba32.bmp", "32-bit BMP written from RGBA")
    pal.save(files / "bmp_palette8.bmp")
    add("bmp_palette8.bmp", "8-bit palette BMP")
    base.convert("L").save(files / "bmp_gray8.bmp")
    add("bmp_gray8.bmp", "8-bit greyscale BMP")
    base.convert("1").save(files / "bmp_1bit.bmp")
    add("bmp_1bit.bmp", "1-bit BMP")

    # TIFF --------------------------------------------------------------------------------
    base.save(files / "tiff_rgb.tif")
    add("tiff_rgb.tif", "uncompressed RGB TIFF")
    base.save(files / "tiff_rgb_lzw.tif", compression="tiff_lzw")
    add("tiff_rgb_lzw.tif", "LZW RGB TIFF")
    base.save(files / "tiff_rgb_deflate.tif", compression="tiff_adobe_deflate")
    add("tiff_rgb_deflate.tif", "Deflate RGB TIFF")
    base.save(files / "tiff_rgb_packbits.tif", compression="packbits")
    add("tiff_rgb_packbits.tif", "PackBits RGB TIFF")
    rgba.save(files / "tiff_rgba.tif", compression="tiff_lzw")
    add("tiff_rgba.tif", "RGBA TIFF")
    base.convert("L").save(files / "tiff_gray.tif")
    add("tiff_gray.tif", "greyscale TIFF")
    Image.fromarray((gray * 256 + noise[:, :, 0]).astype(np.uint16)).save(files / "tiff_gray16.tif")
    add("tiff_gray16.tif", "16-bit greyscale TIFF (I;16)")
    cmyk.save(files / "tiff_cmyk.tif")
    add("tiff_cmyk.tif", "CMYK TIFF")
    pal.save(files / "tiff_palette.tif")
    add("tiff_palette.tif", "palette TIFF")
    base.convert("1").save(files / "tiff_1bit.tif")
    add("tiff_1bit.tif", "1-bit TIFF")
    # A two-page TIFF: the first page counts.
    base.save(files / "tiff_multipage.tif", save_all=True, append_images=[small("chelsea", (71, 53))])
    add("tiff_multipage.tif", "two-page TIFF; the first page counts")
    return cases


def convert_to_rgb(im: Image.Image) -> Image.Image:
    """transformers 5.24 `convert_to_rgb` for a PIL image."""
    return transformers.image_transforms.convert_to_rgb(im, return_numpy=False)


def manifest_config(kind: str, filter_name: str, size: int, width: int | None = None) -> dict:
    """A vtde manifest `image` section and the transformers processor that matches it."""
    if kind == "clip":
        return {
            "height": size, "width": size, "convert_rgb": True,
            "resize": {"rule": {"kind": "shortest_edge", "shortest_edge": size}, "filter": filter_name},
            "center_crop": {"height": size, "width": size},
            "rescale_factor": 1 / 255,
            "normalize": {"mean": CLIP_MEAN, "std": CLIP_STD},
        }
    w = width or size
    return {
        "height": size, "width": w, "convert_rgb": True,
        "resize": {"rule": {"kind": "exact", "height": size, "width": w}, "filter": filter_name},
        "center_crop": None,
        "rescale_factor": 1 / 255,
        "normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    }


def processor_for(kind: str, config: dict):
    resample = FILTERS[config["resize"]["filter"]]
    if kind == "clip":
        s = config["resize"]["rule"]["shortest_edge"]
        return CLIPImageProcessorPil(size={"shortest_edge": s}, crop_size={"height": config["height"], "width": config["width"]},
                                     resample=resample)
    return ViTImageProcessorPil(size={"height": config["height"], "width": config["width"]}, resample=resample,
                                do_convert_rgb=True)


def jpeg_embeddings(files: Path, cases: dict, tensors: dict) -> None:
    """End-to-end: the vit-bert-224 fixture on real-photo JPEGs, PIL-decoded."""
    from transformers import AutoImageProcessor, VisionTextDualEncoderModel

    ckpt = ROOT / "tests" / "fixtures" / "vit-bert-224" / "checkpoint"
    model = VisionTextDualEncoderModel.from_pretrained(ckpt).eval()
    proc = AutoImageProcessor.from_pretrained(ckpt, backend="pil")
    ddir = Path(skimage.data.__file__).parent
    names = []
    # The camera JPEGs of scikit-image are too large to commit; re-encode cuts of them.
    rocket = Image.open(ddir / "rocket.jpg").convert("RGB")
    rocket.crop((0, 0, 320, 240)).save(files / "e2e_rocket_420.jpg", quality=92)
    names.append("e2e_rocket_420.jpg")
    retina = Image.open(ddir / "retina.jpg").convert("RGB").resize((300, 300), Image.LANCZOS)
    retina.save(files / "e2e_retina_422.jpg", quality=85, subsampling=1)
    names.append("e2e_retina_422.jpg")
    astro = Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.LANCZOS)
    astro.save(files / "e2e_astronaut_progressive.jpg", quality=80, progressive=True)
    names.append("e2e_astronaut_progressive.jpg")
    images = [Image.open(files / n) for n in names]
    with torch.no_grad():
        pv = proc(images=images, return_tensors="pt")["pixel_values"]
        emb = model.get_image_features(pixel_values=pv)
        emb = emb if isinstance(emb, torch.Tensor) else emb.pooler_output
        emb = emb / emb.norm(dim=-1, keepdim=True)
    tensors["jpeg_embeds"] = emb.numpy().astype(np.float32)
    cases["jpeg_embeds"] = {
        "checkpoint": "vit-bert-224", "files": names, "tensor": "jpeg_embeds",
        "note": "normalized get_image_features of the files opened with PIL and processed by the "
                "checkpoint's PIL-backend processor; row i is files[i]",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    files = out / "files"
    for d in ("files", "rgb", "rgb_exif"):
        (out / d).mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    decode_cases = make_files(files, rng)

    tensors: dict[str, np.ndarray] = {}
    clip16 = manifest_config("clip", "bicubic", 16)
    clip_proc = processor_for("clip", clip16)
    for case in decode_cases:
        path = files / case["file"]
        im = Image.open(path)
        case.update(format=im.format, pil_mode=im.mode, size=list(im.size))
        case["rgb"] = f"rgb/{case['file']}.png"
        convert_to_rgb(im).save(out / case["rgb"])
        if case.get("exif_orientation"):
            case["rgb_exif"] = f"rgb_exif/{case['file']}.png"
            convert_to_rgb(ImageOps.exif_transpose(Image.open(path))).save(out / case["rgb_exif"])
        key = f"clip16/{case['file']}"
        tensors[key] = clip_proc(images=[Image.open(path)], return_tensors="np")["pixel_values"][0].astype(np.float32)
        case["pixel_values"] = {"processor": "clip_bicubic_16", "tensor": key}

    processors = {"clip_bicubic_16": {"class": "CLIPImageProcessorPil", "image": clip16}}
    filter_cases = []
    odd = ["png_1x1.png", "png_3x2.png", "png_1x4000.png", "png_37x1001.png", "jpeg_rocket.jpg", "png_rgba8.png"]
    for fname in FILTERS:
        for kind in ("clip", "vit"):
            config = manifest_config(kind, fname, 16, width=20) if kind == "vit" else manifest_config(kind, fname, 16)
            name = f"{kind}_{fname}"
            processors[name] = {
                "class": "CLIPImageProcessorPil" if kind == "clip" else "ViTImageProcessorPil",
                "image": config,
            }
            proc = processor_for(kind, config)
            for f in odd:
                key = f"{name}/{f}"
                tensors[key] = proc(images=[Image.open(files / f)], return_tensors="np")["pixel_values"][0].astype(np.float32)
                filter_cases.append({"file": f, "processor": name, "tensor": key})

    cases = {
        "versions": {
            "PIL": PIL.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
            "skimage": skimage.__version__, "safetensors": safetensors.__version__,
        },
        "decode": decode_cases,
        "processors": processors,
        "filters": filter_cases,
    }
    jpeg_embeddings(files, cases, tensors)
    save_file(tensors, str(out / "pixel_values.safetensors"))
    (out / "cases.json").write_text(json.dumps(cases, indent=0) + "\n")
    (out / "README.md").write_text(README)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(decode_cases)} files, {len(tensors)} tensors, {total / 1e6:.2f} MB to {out}")


README = """# Image fixtures (generated)

Written by `tools/make_image_fixtures.py`; do not edit by hand. Regenerate with

```
"$(tools/reference-env.sh)/bin/python" tools/make_image_fixtures.py
```

- `files/`: image files in every format and mode vtde decodes (JPEG baseline,
  progressive, 4:2:0/4:2:2/4:4:4, restart markers, grey, CMYK, YCCK; PNG 1/2/4/8/16-bit,
  palette with and without transparency, grey+alpha, RGBA, tRNS colour keys, Adam7, APNG;
  WebP lossy/lossless with and without alpha, animated; GIF still, transparent, animated;
  BMP 1/8/24/32-bit; TIFF raw/LZW/Deflate/PackBits, RGBA, grey, 16-bit grey, CMYK,
  palette, 1-bit, multi-page; EXIF orientations 1-8), and odd sizes (1x1, 1x4000, 37x1001,
  3x2).
- `rgb/<name>.png`: transformers 5.24 `convert_to_rgb(PIL.Image.open(file))` (alpha and
  transparency composited onto white with `PIL.Image.alpha_composite`, every other mode
  `convert("RGB")`), as an 8-bit RGB PNG.
- `rgb_exif/<name>.png`: the same after `PIL.ImageOps.exif_transpose`, for the files with
  an EXIF orientation.
- `pixel_values.safetensors`: `pixel_values` ([3, H, W], float32) from transformers'
  `CLIPImageProcessorPil` / `ViTImageProcessorPil` on `PIL.Image.open(file)`: every file
  with a CLIP-style 16x16 config (key `clip16/<file>`), and odd-sized files with every PIL
  filter in a CLIP-style (shortest edge 16, center crop 16) and a ViT-style (exact 16x20)
  config (key `<processor>/<file>`); plus `jpeg_embeds`, the normalized image embeddings
  of the `vit-bert-224` fixture for the `e2e_*.jpg` files.
- `cases.json`: what each file is (`note`, PIL's `format`, `pil_mode`, `size`), where
  its recordings are, and each processor's settings written as a vtde manifest `image`
  section.

The photos are cut from images bundled with scikit-image (`skimage.data`): `coffee`
(Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0), `astronaut` (Eileen Collins,
NASA; public domain), `chelsea` (Stefan van der Walt; CC0), `rocket` (SpaceX; CC0),
and `retina` (Häggström, Mikael (2014), CC0). Noise, alpha planes and synthetic planes are
seeded.
"""

if __name__ == "__main__":
    main()
