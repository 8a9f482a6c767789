#!/usr/bin/env python3
"""The Python baseline of `vtde bench preprocess`: PIL decoding and transformers' image
processors, one thread, per image.

    "$(tools/reference-env.sh)/bin/python" tools/bench_preprocess.py \\
        --make-images DIR                      # write the benchmark images, print them as JSON
    "$(tools/reference-env.sh)/bin/python" tools/bench_preprocess.py \\
        --repeats 5 --package-image JSON --json-out OUT FILE...

`vtde bench preprocess` runs both (the second on the same files it measures itself); the
script is usable alone too.

`--make-images` cuts the benchmark set from scikit-image's real photos (retina, Hubble
deep field, motorcycle, coffee, chelsea, astronaut, rocket): JPEGs of 1024x768 and
4000x3000 (quality 90, 4:2:0, as cameras and PIL save them) and PNGs of 1024x768. The
photos are smaller than 12 megapixels, so they are upscaled (Lanczos) and get seeded
Gaussian noise (sigma 2.5, about a camera's sensor noise) so that the files have the
entropy, and so the decoding cost, of real camera files.

Measurements, each the median over `--repeats` passes, wall-clock (`ms`) and the thread's
CPU time (`cpu_ms`, `time.thread_time`, not inflated by other load on the machine):
- `decode`: `PIL.Image.open(f)` + `.convert("RGB")` (PIL decodes lazily; this forces it);
- `clip` / `vit` / `package`: the processor on the opened, decoded `PIL.Image` (what
  `processor(images=...)` costs after decoding): `CLIPImageProcessorPil()` and
  `ViTImageProcessorPil()` with their defaults (224 px; CLIP: shortest edge + center crop,
  bicubic; ViT: 224x224 bilinear), and the processor the package's manifest describes
  (`--package-image`, the manifest's `image` section).
Threads: numpy, OpenMP and BLAS pools are limited to one thread before anything loads;
PIL's decoding and resizing are single-threaded.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402

FILTERS = {
    "nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING,
}


def make_images(out: Path) -> list[dict]:
    import skimage.data

    out.mkdir(parents=True, exist_ok=True)
    ddir = Path(skimage.data.__file__).parent
    sources = {
        "retina": Image.open(ddir / "retina.jpg"),
        "hubble": Image.open(ddir / "hubble_deep_field.jpg"),
        "motorcycle": Image.open(ddir / "motorcycle_left.png"),
        "coffee": Image.fromarray(skimage.data.coffee()),
        "chelsea": Image.fromarray(skimage.data.chelsea()),
        "astronaut": Image.fromarray(skimage.data.astronaut()),
        "rocket": Image.open(ddir / "rocket.jpg"),
    }
    rng = np.random.default_rng(1234)

    def photo(name: str, size: tuple[int, int]) -> Image.Image:
        im = sources[name].convert("RGB")
        # Crop to the target aspect ratio, then resize.
        w, h = im.size
        tw, th = size
        if w * th > h * tw:
            cw = h * tw // th
            im = im.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
        else:
            ch = w * th // tw
            im = im.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))
        a = np.asarray(im.resize(size, Image.LANCZOS)).astype(np.float32)
        a += rng.normal(0, 2.5, a.shape)
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))

    files = []
    for name in ("motorcycle", "coffee", "chelsea", "rocket"):
        p = out / f"{name}_1024x768.jpg"
        photo(name, (1024, 768)).save(p, quality=90)
        files.append({"path": str(p), "group": "JPEG 1024x768"})
    for name in ("retina", "hubble"):
        p = out / f"{name}_4000x3000.jpg"
        photo(name, (4000, 3000)).save(p, quality=90)
        files.append({"path": str(p), "group": "JPEG 4000x3000"})
    for name in ("astronaut", "hubble"):
        p = out / f"{name}_1024x768.png"
        photo(name, (1024, 768)).save(p)
        files.append({"path": str(p), "group": "PNG 1024x768"})
    return files


def package_processor(image: dict):
    """The transformers PIL-backend processor a vtde manifest `image` section describes."""
    from transformers import CLIPImageProcessorPil, ViTImageProcessorPil

    resize = image.get("resize")
    kwargs = {
        "do_convert_rgb": True,
        "do_rescale": image.get("rescale_factor") is not None,
        "rescale_factor": image.get("rescale_factor") or 1 / 255,
        "do_normalize": image.get("normalize") is not None,
    }
    if image.get("normalize"):
        kwargs["image_mean"] = image["normalize"]["mean"]
        kwargs["image_std"] = image["normalize"]["std"]
    if resize:
        kwargs["resample"] = FILTERS[resize["filter"]]
        rule = resize["rule"]
        if rule["kind"] == "shortest_edge":
            kwargs["size"] = {"shortest_edge": rule["shortest_edge"]}
        else:
            kwargs["size"] = {"height": rule["height"], "width": rule["width"]}
    else:
        kwargs["do_resize"] = False
    crop = image.get("center_crop")
    if crop:
        return CLIPImageProcessorPil(crop_size=crop, do_center_crop=True, **kwargs)
    return ViTImageProcessorPil(**kwargs)


def bench(files: list[str], repeats: int, package_image: dict | None) -> dict:
    from transformers import CLIPImageProcessorPil, ViTImageProcessorPil

    processors = {"clip": CLIPImageProcessorPil(), "vit": ViTImageProcessorPil()}
    if package_image is not None:
        processors["package"] = package_processor(package_image)
    # Warm-up: imports, caches, first-call costs.
    warm = Image.open(files[0]).convert("RGB")
    for p in processors.values():
        p(images=[warm], return_tensors="np")

    wall: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    for f in files:
        times: dict[str, list[float]] = {"decode": [], **{k: [] for k in processors}}
        cpu_times: dict[str, list[float]] = {k: [] for k in times}

        def timed(name: str, fn) -> None:
            t, c = time.perf_counter(), time.thread_time()
            fn()
            times[name].append(time.perf_counter() - t)
            cpu_times[name].append(time.thread_time() - c)

        for _ in range(repeats):
            timed("decode", lambda: Image.open(f).convert("RGB"))
            opened = Image.open(f)
            opened.load()
            for name, proc in processors.items():
                timed(name, lambda: proc(images=[opened], return_tensors="np"))
        wall[f] = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        cpu[f] = {k: statistics.median(v) * 1e3 for k, v in cpu_times.items()}
    return {
        "versions": {"PIL": PIL.__version__, "transformers": transformers.__version__},
        "ms": wall,
        "cpu_ms": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make-images", type=Path, help="write the benchmark images here and print them")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--package-image", help="the package manifest's `image` section, as JSON")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.make_images:
        print(json.dumps(make_images(args.make_images)))
        return
    if not args.files:
        parser.error("no files")
    package_image = json.loads(args.package_image) if args.package_image else None
    out = bench(args.files, max(1, args.repeats), package_image)
    text = json.dumps(out, indent=1)
    if args.json_out:
        args.json_out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
