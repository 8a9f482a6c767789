#!/usr/bin/env python3
"""Folder scoring end to end: `vtde score` against vtde's model-only throughput and
against the Python pipeline (PIL + transformers' image processor + onnxruntime on the
same ONNX graphs), measured side by side in one run.

    cargo build --release -p vtde-cli
    "$(tools/reference-env.sh)/bin/python" tools/bench_folder.py --work /tmp/vtde-bench

What it does (everything under --work, reused when already there):
1. a CLIP ViT-B/32-sized `CLIPModel` with random weights (tokenizer files from the
   clip-modern test fixture), saved with `save_pretrained`, exported with `vtde export`;
2. folders of JPEG photos made from smooth random fields (96 of 1024x768 and 64 of
   4000x3000 by default, quality 90: several batches, so that decoding overlaps the
   model);
3. for each folder, `--rounds` rounds of, in turn:
   - vtde end to end: `vtde score PACKAGE DIR --labels ... -o FILE` (decode pool, batches,
     model, scores, output files): the images/s of its summary line;
   - the same with `--fast-jpeg` (JPEG decoded at a reduced size in the DCT domain: not
     bit-exact with PIL);
   - vtde model only: the same command with `--model-only` (the first batch preprocessed
     once, then only the graphs and scoring for as many images): the images/s;
   - Python: PIL `Image.open(...).convert("RGB")`, `CLIPImageProcessorPil` on each batch,
     onnxruntime on the package's own vision.onnx and projection.onnx, normalization,
     softmax against label embeddings computed once, CSV rows written; timed from the
     first image to the last, sessions created beforehand.
   The median of each is reported, and the median over rounds of each round's ratios
   (paired, so that the machine's changing load cancels), for the targets of docs/design.md:
   end to end / model only (within 15%: >= 0.85) and vtde / Python (>= 1.4 on 1024x768,
   >= 3 on 12-megapixel photos). All use the same ONNX Runtime thread count (--threads).
"""
import argparse
import csv
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["a photo of a cat", "a photo of a dog", "a landscape", "a cup of coffee"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_checkpoint(out: Path):
    """A CLIPModel with CLIP ViT-B/32's sizes and random weights."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    fixture = ROOT / "tests/fixtures/clip-modern/checkpoint"
    # The fixture's tokenizer: its vocabulary size and special tokens.
    tiny = json.loads((fixture / "config.json").read_text())["text_config"]
    special = {k: tiny[k] for k in ["vocab_size", "bos_token_id", "eos_token_id", "pad_token_id"]}
    config = CLIPConfig(
        text_config=dict(
            hidden_size=512, intermediate_size=2048, num_attention_heads=8,
            num_hidden_layers=12, max_position_embeddings=77, **special,
        ),
        vision_config=dict(
            hidden_size=768, intermediate_size=3072, num_attention_heads=12,
            num_hidden_layers=12, image_size=224, patch_size=32,
        ),
        projection_dim=512,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in ["vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(fixture / name, out / name)
    processor = json.loads((fixture / "processor_config.json").read_text())
    processor["image_processor"]["size"] = {"shortest_edge": 224}
    processor["image_processor"]["crop_size"] = {"height": 224, "width": 224}
    (out / "processor_config.json").write_text(json.dumps(processor, indent=2))


def make_photos(out: Path, count: int, width: int, height: int):
    """JPEGs of smooth random colour fields with some texture (compress like photos)."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        path = out / f"photo_{i:04d}.jpg"
        if path.exists():
            continue
        small = rng.uniform(0, 255, size=(height // 64 + 2, width // 64 + 2, 3)).astype(np.uint8)
        field = Image.fromarray(small).resize((width, height), Image.BICUBIC)
        arr = np.asarray(field).astype(np.int16)
        arr += rng.integers(-12, 13, size=arr.shape, dtype=np.int16)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)


def run_vtde(vtde, package, folder, threads, batch, out_file, model_only, extra=()):
    args = [str(vtde), "score", str(package), str(folder), "--labels", *LABELS,
            "--threads", str(threads), "--batch-size", str(batch), *extra]
    args += ["--model-only"] if model_only else ["-o", str(out_file)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"vtde failed ({proc.returncode}): {proc.stderr}")
    # The summary line: "N scored, ..., S.SSs, R images/s"; N / S is more precise than R.
    m = re.search(r"(\d+) scored.*?([\d.]+)s, [\d.]+ images/s", proc.stderr)
    if not m:
        raise SystemExit(f"no summary in vtde's stderr: {proc.stderr}")
    return int(m.group(1)) / float(m.group(2)), int(m.group(1))


class PythonPipeline:
    """PIL + CLIPImageProcessorPil + onnxruntime on the package's graphs."""

    def __init__(self, checkpoint, package, threads):
        import onnxruntime as ort
        from transformers import CLIPImageProcessorPil, CLIPTokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.vision = ort.InferenceSession(str(package / "vision.onnx"), opts, providers=providers)
        self.proj = ort.InferenceSession(str(package / "projection.onnx"), opts, providers=providers)
        text = ort.InferenceSession(str(package / "text.onnx"), opts, providers=providers)
        self.processor = CLIPImageProcessorPil.from_pretrained(str(checkpoint))
        tok = CLIPTokenizer.from_pretrained(str(checkpoint))
        enc = tok(LABELS, padding=True, return_tensors="np")
        feeds = {i.name: enc[i.name].astype(np.int64) for i in text.get_inputs()}
        text_features = text.run(["text_features"], feeds)[0]
        dv = self.vision.get_outputs()[0].shape[1]
        empty = np.zeros((0, dv), np.float32)
        _, t = self.proj.run(None, {"image_features": empty, "text_features": text_features})
        self.labels = t / np.linalg.norm(t, axis=1, keepdims=True)
        self.scale = float(np.exp(json.loads((package / "vtde.json").read_text())["logit_scale"]))
        self.dt = text_features.shape[1]

    def run(self, files, batch):
        from PIL import Image

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["path", *LABELS])
        no_text = np.zeros((0, self.dt), np.float32)
        start = time.perf_counter()
        for i in range(0, len(files), batch):
            chunk = files[i:i + batch]
            images = [Image.open(f).convert("RGB") for f in chunk]
            pixels = self.processor(images=images, return_tensors="np")["pixel_values"]
            feats = self.vision.run(["image_features"], {"pixel_values": pixels.astype(np.float32)})[0]
            emb, _ = self.proj.run(None, {"image_features": feats, "text_features": no_text})
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            logits = self.scale * emb @ self.labels.T
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            for f, p in zip(chunk, probs):
                writer.writerow([str(f), *(f"{x:.6f}" for x in p)])
        return len(files) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/vtde-bench-folder"))
    p.add_argument("--vtde", type=Path, default=ROOT / "target/release/vtde")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sets", default="1024x768:96,4000x3000:64",
                   help="WIDTHxHEIGHT:COUNT,... folders of photos to score")
    p.add_argument("--vtde-args", default="",
                   help="extra flags for every vtde score run, e.g. '--spin' (space-separated)")
    a = p.parse_args()
    extra = a.vtde_args.split()
    warnings.filterwarnings("ignore")
    if not a.vtde.exists():
        raise SystemExit(f"{a.vtde} missing: cargo build --release -p vtde-cli")

    checkpoint, package = a.work / "clip-b32-checkpoint", a.work / "clip-b32-package"
    if not (checkpoint / "model.safetensors").exists():
        log("making a random-weight CLIP ViT-B/32 checkpoint")
        make_checkpoint(checkpoint)
    if not (package / "vtde.json").exists():
        log("exporting it with vtde export")
        subprocess.run([str(a.vtde), "export", str(checkpoint), str(package)], check=True)
    python = PythonPipeline(checkpoint, package, a.threads)

    rows = []
    for spec in a.sets.split(","):
        size, count = spec.split(":")
        width, height = map(int, size.split("x"))
        folder = a.work / f"photos_{width}x{height}_{count}"
        make_photos(folder, int(count), width, height)
        # Exactly these files: vtde walks the folder, Python reads the list.
        files = sorted(folder.glob("*.jpg"))
        if len(files) != int(count):
            raise SystemExit(f"{folder} has {len(files)} photos, not {count}")
        log(f"{size}: {len(files)} photos, batch {a.batch_size}, {a.threads} threads")
        e2e, fast, model, py = [], [], [], []
        for r in range(a.rounds):
            rate, n = run_vtde(a.vtde, package, folder, a.threads, a.batch_size,
                               a.work / "scores.csv", False, extra)
            assert n == len(files), f"vtde scored {n} of {len(files)}"
            e2e.append(rate)
            fast.append(run_vtde(a.vtde, package, folder, a.threads, a.batch_size,
                                 a.work / "scores.csv", False, ["--fast-jpeg", *extra])[0])
            model.append(run_vtde(a.vtde, package, folder, a.threads, a.batch_size,
                                  None, True, extra)[0])
            py.append(python.run(files, a.batch_size))
            log(f"  round {r + 1}: vtde {e2e[-1]:.2f}, vtde --fast-jpeg {fast[-1]:.2f}, "
                f"model only {model[-1]:.2f}, Python {py[-1]:.2f} images/s")
        # Ratios are taken within each round (measured minutes apart at most, under the
        # same machine load), then the median over rounds.
        ratios = [statistics.median(x / y for x, y in zip(num, den))
                  for num, den in ((e2e, model), (e2e, py), (fast, py))]
        rows.append((size, len(files), *map(statistics.median, (e2e, fast, model, py)), *ratios))

    print(f"\nFolder scoring, CLIP ViT-B/32 (random weights), batch {a.batch_size}, "
          f"{a.threads} ONNX Runtime threads, medians of {a.rounds} rounds (images/s; "
          "ratios: median of the rounds' ratios)\n")
    print("| photos | vtde end to end | vtde --fast-jpeg | vtde model only | Python pipeline "
          "| end to end / model only | vtde / Python | --fast-jpeg / Python |")
    print("|---|---|---|---|---|---|---|---|")
    for size, n, e2e, fast, model, py, e2e_model, e2e_py, fast_py in rows:
        print(f"| {n} x {size} JPEG | {e2e:.2f} | {fast:.2f} | {model:.2f} | {py:.2f} | "
              f"{e2e_model:.2f} | {e2e_py:.2f} | {fast_py:.2f} |")


if __name__ == "__main__":
    main()
