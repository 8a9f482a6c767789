#!/usr/bin/env python3
"""Train the demo dual encoder in models/: a small ViT + BERT VisionTextDualEncoderModel
that matches procedurally drawn shapes to captions ("a red circle on a white
background").

    PY="$(tools/reference-env.sh)/bin/python"
    "$PY" tools/train_demo.py                 # train, save, evaluate (CPU, 2 threads)
    "$PY" tools/train_demo.py --export        # ... then `vtde export` and `vtde score` it
    "$PY" tools/train_demo.py --export-only   # no training: export + score the saved checkpoint

Writes (under --out, default models/):
  demo-checkpoint/       the trained checkpoint (save_pretrained: config.json,
                         model.safetensors, tokenizer.json, tokenizer_config.json,
                         vocab.txt, processor_config.json)
  examples/*.png         example images drawn by the generator, named for what they show
  training_report.json   settings, loss curve, accuracies, the example scores
  demo/                  with --export: the vtde package (`vtde export`)

The data: shapes (circle, square, triangle, star, cross) x colours (red, green, blue,
yellow, purple, orange) x backgrounds (white, black, gray; a quarter of the images with
light noise), at a random position, size and small rotation, drawn with PIL on canvases
of 80-200 px (not square), so the image processor's resize matters. Five shape x colour
combinations (HELD_OUT) never appear in training; the evaluation reports them apart.
Every training batch is drawn fresh; each batch holds distinct shape x colour x
background triples. The loss is the model's own contrastive loss
(`model(..., return_loss=True).loss`), AdamW, linear warm-up then cosine decay.

Two things make the difference between a model that knows colours only (shape at chance)
and one that knows shapes too: a first curriculum stage of achromatic shapes with
shape-only captions (achromatic_sample), and a width-appropriate initializer_range
(INIT_RANGE); a quarter of the coloured-stage captions also name the shape only.

Everything is seeded (numpy, torch; deterministic algorithms; 2 torch
threads), so a re-run on the same library versions trains the same weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL
import torch
import transformers
from PIL import Image, ImageDraw
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    BertConfig,
    BertTokenizer,
    ViTConfig,
    ViTImageProcessorPil,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
    VisionTextDualEncoderProcessor,
)
from transformers.image_processing_backends import PilBackend

ROOT = Path(__file__).resolve().parent.parent
SEED = 20250101

# --------------------------------------------------------------------------------------
# The world: shapes, colours, backgrounds, captions.
# --------------------------------------------------------------------------------------
SHAPES = ["circle", "square", "triangle", "star", "cross"]
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 20),
    "purple": (140, 40, 180),
    "orange": (250, 130, 20),
}
# Background name -> (low, high) of its gray level.
BACKGROUNDS = {"white": (235, 255), "black": (0, 25), "gray": (105, 150)}
# Never shown in training: one per shape, at most one per colour.
HELD_OUT = {("red", "star"), ("green", "cross"), ("blue", "triangle"), ("yellow", "circle"), ("purple", "square")}
COMBOS = [(c, s) for s in SHAPES for c in COLOURS]
TRAIN_COMBOS = [cs for cs in COMBOS if cs not in HELD_OUT]
TRAIN_TRIPLES = [(c, s, b) for (c, s) in TRAIN_COMBOS for b in BACKGROUNDS]

TEMPLATES = [
    "{a} {c} {s}",
    "{a} {c} {s} on {ab} {b} background",
    "a photo of {a} {c} {s}",
    "a picture of {a} {c} {s} on {ab} {b} background",
    "a drawing of {a} {c} {s}",
    "{a} {c} {s} in front of {ab} {b} background",
    "a {s} that is {c}",
    "{c} {s}",
    "a small or large {c} {s} on {b}",
    "there is {a} {c} {s} in the image",
]
# Captions that name the shape only: they push the image tower to tell shapes apart
# whatever the colour (colour alone is far easier to learn and otherwise dominates).
SHAPE_TEMPLATES = ["a {s}", "a photo of a {s}", "a {s} on {ab} {b} background", "a drawing of a {s}"]
SHAPE_ONLY_P = 0.25


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def label(colour: str, shape: str) -> str:
    """The label form used for zero-shot evaluation and with `vtde score`."""
    return f"{article(colour)} {colour} {shape}"


def caption(rng: np.random.Generator, colour: str, shape: str, bg: str) -> str:
    if rng.random() < SHAPE_ONLY_P:
        t = SHAPE_TEMPLATES[rng.integers(len(SHAPE_TEMPLATES))]
    else:
        t = TEMPLATES[rng.integers(len(TEMPLATES))]
    return t.format(a=article(colour), c=colour, s=shape, ab=article(bg), b=bg)


# --------------------------------------------------------------------------------------
# Drawing.
# --------------------------------------------------------------------------------------
def shape_polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape of circumradius ~r centred on (cx, cy), rotated by angle."""
    if shape == "square":
        pts = [(math.cos(math.pi / 4 + k * math.pi / 2), math.sin(math.pi / 4 + k * math.pi / 2)) for k in range(4)]
    elif shape == "triangle":
        # Point up, centroid at the centre.
        pts = [(math.cos(-math.pi / 2 + k * 2 * math.pi / 3), math.sin(-math.pi / 2 + k * 2 * math.pi / 3)) for k in range(3)]
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = 1.0 if k % 2 == 0 else 0.42
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((rad * math.cos(a), rad * math.sin(a)))
    elif shape == "cross":
        w = 0.32  # half arm width relative to the arm length
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
    else:
        raise ValueError(shape)
    ca, sa = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * ca - y * sa), cy + r * (x * sa + y * ca)) for x, y in pts]


def draw_shape(rng: np.random.Generator, fill: tuple[int, int, int], bg_level: int, shape: str) -> Image.Image:
    """One shape of the given fill colour on a uniform gray-level background, on a
    canvas of 80-200 px (aspect 0.8-1.25), at a random position and size, rotated by up
    to 15 degrees; a quarter of the images get light noise."""
    w = int(rng.integers(80, 201))
    h = int(np.clip(round(w * rng.uniform(0.8, 1.25)), 80, 200))
    img = Image.new("RGB", (w, h), (bg_level, bg_level, bg_level))
    d = ImageDraw.Draw(img)
    r = float(rng.uniform(0.26, 0.44)) * min(w, h)
    cx = float(rng.uniform(r + 2, w - r - 2))
    cy = float(rng.uniform(r + 2, h - r - 2))
    if shape == "circle":
        r *= 0.9  # a circle fills more area than the polygons of the same circumradius
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        angle = math.radians(float(rng.uniform(-15, 15)))
        d.polygon(shape_polygon(shape, cx, cy, r, angle), fill=fill)
    if rng.random() < 0.25:  # light noise
        a = np.asarray(img, dtype=np.float32) + rng.normal(0, 8, size=(h, w, 3))
        img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB")
    return img


def draw(rng: np.random.Generator, colour: str, shape: str, bg: str) -> Image.Image:
    """A named colour (each channel jittered by up to 20 levels) on a named background."""
    fill = tuple(int(np.clip(v + rng.integers(-20, 21), 0, 255)) for v in COLOURS[colour])
    lo, hi = BACKGROUNDS[bg]
    return draw_shape(rng, fill, int(rng.integers(lo, hi + 1)), shape)


# Curriculum, first stage: achromatic shapes (gray level against gray level, at least 100
# levels apart) with captions that name only the shape. A small ViT trained
# contrastively on the coloured data from the start learns colour and background within
# a few hundred steps and then never picks up shape (shape accuracy stays at chance for
# thousands of steps: the colour shortcut explains most of the loss and the image
# embeddings collapse along everything else). A few hundred steps on these images first
# give it shape features, which the coloured stage then keeps and refines.
ACHROMATIC_TEMPLATES = ["a {s}", "a photo of a {s}", "a drawing of a {s}"]


def achromatic_sample(rng: np.random.Generator) -> tuple[Image.Image, str]:
    shape = SHAPES[rng.integers(len(SHAPES))]
    while True:
        fg, bg = int(rng.integers(0, 256)), int(rng.integers(0, 256))
        if abs(fg - bg) >= 100:
            break
    img = draw_shape(rng, (fg, fg, fg), bg, shape)
    return img, ACHROMATIC_TEMPLATES[rng.integers(len(ACHROMATIC_TEMPLATES))].format(s=shape)


# --------------------------------------------------------------------------------------
# Tokenizer and model.
# --------------------------------------------------------------------------------------
def build_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    digits = list("0123456789")
    letters = list("abcdefghijklmnopqrstuvwxyz")
    cont = ["##" + ch for ch in letters + digits]
    words: set[str] = set()
    for t in TEMPLATES + SHAPE_TEMPLATES + ACHROMATIC_TEMPLATES:
        for c in COLOURS:
            for s in SHAPES:
                for b in BACKGROUNDS:
                    words.update(t.format(a=article(c), c=c, s=s, ab=article(b), b=b).split())
    vocab: list[str] = []
    for tok in specials + punct + digits + letters + cont + sorted(words):
        if tok not in vocab:
            vocab.append(tok)
    return vocab


# transformers' default initializer_range (0.02) is made for 768-wide towers; at width 64
# it leaves every layer nearly linear at the start (fc1 pre-activations ~0.16), and the
# towers learn much more slowly. 1/sqrt(64) gives GELU something to bend.
INIT_RANGE = 0.125


def build_model(vocab_size: int, image_size: int, max_length: int) -> VisionTextDualEncoderModel:
    vision = ViTConfig(
        image_size=image_size,
        patch_size=16,
        initializer_range=INIT_RANGE,
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=256,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    text = BertConfig(
        vocab_size=vocab_size,
        initializer_range=INIT_RANGE,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=max_length,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    config = VisionTextDualEncoderConfig.from_vision_text_configs(vision, text, projection_dim=64)
    return VisionTextDualEncoderModel(config=config)


# --------------------------------------------------------------------------------------
# Evaluation.
# --------------------------------------------------------------------------------------
@torch.no_grad()
def zero_shot(model, tok, image_processor, images: list[Image.Image], labels: list[str]) -> np.ndarray:
    """Softmax over labels per image (logits_per_image), as `vtde score` prints it."""
    model.eval()
    t = tok(labels, padding=True, return_tensors="pt")
    out = []
    for i in range(0, len(images), 128):
        px = image_processor(images=images[i : i + 128], return_tensors="pt")["pixel_values"]
        o = model(pixel_values=px, **t)
        out.append(o.logits_per_image.softmax(-1))
    return torch.cat(out).numpy()


def evaluate(model, tok, image_processor, seed: int, per_combo: int) -> dict:
    rng = np.random.default_rng(seed)
    items = [(c, s, list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]) for c, s in COMBOS for _ in range(per_combo)]
    images = [draw(rng, c, s, b) for c, s, b in items]
    labels = [label(c, s) for c, s in COMBOS]
    probs = zero_shot(model, tok, image_processor, images, labels)
    pred = probs.argmax(1)
    truth = np.array([COMBOS.index((c, s)) for c, s, _ in items])
    held = np.array([(c, s) in HELD_OUT for c, s, _ in items])
    right = pred == truth
    shape_right = np.array([COMBOS[p][1] == s for p, (c, s, _) in zip(pred, items)])
    colour_right = np.array([COMBOS[p][0] == c for p, (c, s, _) in zip(pred, items)])

    def acc(mask):
        return {
            "n": int(mask.sum()),
            "top1": round(float(right[mask].mean()), 4),
            "shape_right": round(float(shape_right[mask].mean()), 4),
            "colour_right": round(float(colour_right[mask].mean()), 4),
        }

    by_combo = {}
    for c, s in sorted(HELD_OUT):
        m = np.array([(ci, si) == (c, s) for ci, si, _ in items])
        wrong = [label(*COMBOS[p]) for p in pred[m & ~right]]
        by_combo[label(c, s)] = {"top1": round(float(right[m].mean()), 4),
                                 "wrong_predictions": {w: wrong.count(w) for w in sorted(set(wrong))}}
    return {"seen": acc(~held), "held_out": acc(held), "all": acc(np.ones_like(held)), "held_out_by_combo": by_combo}


# Example images: (file stem, colour, shape, background, seed). blue_triangle is held out.
EXAMPLES = [
    ("red_circle", "red", "circle", "white"),
    ("blue_square", "blue", "square", "gray"),
    ("green_triangle", "green", "triangle", "black"),
    ("yellow_star", "yellow", "star", "black"),
    ("purple_cross", "purple", "cross", "white"),
    ("blue_triangle", "blue", "triangle", "white"),
    ("red_circle_on_black", "red", "circle", "black"),
    ("green_triangle_on_white", "green", "triangle", "white"),
]
EXAMPLE_LABELS = ["a red circle", "a blue square", "a green triangle", "a yellow star", "a purple cross", "a blue triangle"]


def write_examples(out_dir: Path, seed: int) -> list[Path]:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    paths = []
    for stem, c, s, b in EXAMPLES:
        p = out_dir / f"{stem}.png"
        draw(rng, c, s, b).save(p, optimize=True)
        paths.append(p)
    return paths


# --------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--achromatic-steps", type=int, default=400, help="first curriculum stage (see achromatic_sample)")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--eval-per-combo", type=int, default=12, help="eval images per shape x colour (30 combos)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=250, help="quick eval (60 images) every N steps; 0: never")
    ap.add_argument("--export", action="store_true", help="then run `vtde export` and `vtde score` (cargo)")
    ap.add_argument("--export-only", action="store_true",
                    help="no training: score the existing examples with the saved checkpoint in transformers, "
                         "then `vtde export` + `vtde score` and compare")
    args = ap.parse_args()
    if args.export_only:
        torch.set_num_threads(args.threads)
        ckpt = args.out / "demo-checkpoint"
        model = VisionTextDualEncoderModel.from_pretrained(ckpt).eval()
        tok = AutoTokenizer.from_pretrained(ckpt)
        image_processor = AutoImageProcessor.from_pretrained(ckpt, backend="pil")
        ex_paths = [args.out / "examples" / f"{stem}.png" for stem, *_ in EXAMPLES]
        ex_images = [Image.open(p).convert("RGB") for p in ex_paths]
        return export_and_score(args.out, ex_paths, zero_shot(model, tok, image_processor, ex_images, EXAMPLE_LABELS))
    assert args.batch_size <= len(TRAIN_TRIPLES), f"batch size at most {len(TRAIN_TRIPLES)} (distinct triples)"

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)
    max_length = 64

    out: Path = args.out
    ckpt = out / "demo-checkpoint"
    out.mkdir(parents=True, exist_ok=True)
    if ckpt.exists():
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True)

    # ---- Tokenizer and image processor.
    vocab = build_vocab()
    vocab_file = ckpt / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5.24: pass `vocab=` (`vocab_file=` is silently ignored).
    tok = BertTokenizer(vocab=str(vocab_file), do_lower_case=True, model_max_length=max_length)
    assert len(tok) == len(vocab), (len(tok), len(vocab))
    for c, s in COMBOS:  # every caption word is a single token
        for b in BACKGROUNDS:
            ids = tok(caption(np.random.default_rng(0), c, s, b))["input_ids"]
            assert tok.unk_token_id not in ids
    image_processor = ViTImageProcessorPil(size={"height": args.image_size, "width": args.image_size})
    assert isinstance(image_processor, PilBackend)

    model = build_model(len(vocab), args.image_size, max_length)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters; vocab {len(vocab)}; {len(TRAIN_COMBOS)} train combos, "
          f"{len(HELD_OUT)} held out", flush=True)

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or n == "logit_scale" else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))

    # ---- Train.
    losses: list[float] = []
    log: list[dict] = []
    t0 = time.time()
    data_s = 0.0
    model.train()
    for step in range(args.steps):
        td = time.time()
        if step < args.achromatic_steps:
            images, texts = map(list, zip(*(achromatic_sample(rng) for _ in range(args.batch_size))))
        else:
            pick = rng.choice(len(TRAIN_TRIPLES), size=args.batch_size, replace=False)
            triples = [TRAIN_TRIPLES[i] for i in pick]
            images = [draw(rng, c, s, b) for c, s, b in triples]
            texts = [caption(rng, c, s, b) for c, s, b in triples]
        px = image_processor(images=images, return_tensors="pt")["pixel_values"]
        t = tok(texts, padding=True, return_tensors="pt")
        data_s += time.time() - td

        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(pixel_values=px, return_loss=True, **t).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 50 == 0 or step == 0:
            recent = float(np.mean(losses[-50:]))
            entry = {"step": step + 1, "loss": round(recent, 4), "logit_scale": round(float(model.logit_scale.detach().exp()), 3),
                     "elapsed_s": round(time.time() - t0, 1)}
            log.append(entry)
            msg = ""
            if args.eval_every and (step + 1) % args.eval_every == 0:
                q = evaluate(model, tok, image_processor, seed=SEED + 3, per_combo=2)
                entry["quick_eval"] = {"top1": q["all"]["top1"], "shape_right": q["all"]["shape_right"]}
                msg = f"  quick eval top1 {q['all']['top1']:.2f} shape {q['all']['shape_right']:.2f}"
                model.train()
            print(f"step {step + 1:5d}  loss(avg 50) {recent:.4f}  scale {entry['logit_scale']:.2f}  "
                  f"lr {lr_at(step):.2e}  {entry['elapsed_s']:.0f}s{msg}", flush=True)
    train_s = time.time() - t0
    final_loss = float(np.mean(losses[-100:]))
    print(f"trained {args.steps} steps in {train_s:.0f}s (data {data_s:.0f}s); final loss (avg last 100) "
          f"{final_loss:.4f}", flush=True)

    # ---- Save, then reload everything from disk: the evaluation uses the saved files.
    model.save_pretrained(ckpt)
    VisionTextDualEncoderProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(ckpt)
    assert (ckpt / "tokenizer.json").exists() and vocab_file.exists()
    model = VisionTextDualEncoderModel.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    image_processor = AutoImageProcessor.from_pretrained(ckpt, backend="pil")
    assert isinstance(image_processor, PilBackend), type(image_processor)

    ev = evaluate(model, tok, image_processor, seed=SEED + 1, per_combo=args.eval_per_combo)
    print(f"eval (zero-shot top-1 among {len(COMBOS)} labels): seen {ev['seen']}, held out {ev['held_out']}", flush=True)
    for k, v in ev["held_out_by_combo"].items():
        print(f"  held out {k!r}: top-1 {v['top1']:.2f}, wrong: {v['wrong_predictions']}", flush=True)

    # ---- Examples, scored from the PNG files.
    ex_paths = write_examples(out / "examples", seed=SEED + 2)
    ex_images = [Image.open(p).convert("RGB") for p in ex_paths]
    ex_probs = zero_shot(model, tok, image_processor, ex_images, EXAMPLE_LABELS)
    ex_rows = []
    ex_right = 0
    for (stem, c, s, b), p, pr in zip(EXAMPLES, ex_paths, ex_probs):
        want = label(c, s)
        top = EXAMPLE_LABELS[int(pr.argmax())]
        ex_right += top == want
        ex_rows.append({"file": p.name, "truth": want, "held_out": (c, s) in HELD_OUT, "top": top,
                        "probs": {lab: round(float(x), 4) for lab, x in zip(EXAMPLE_LABELS, pr)}})
        print(f"  {p.name:30s} top {top!r:20s} p={pr.max():.3f}  {'ok' if top == want else 'WRONG'}")
    all_labels = [label(c, s) for c, s in COMBOS]
    ex_probs_all = zero_shot(model, tok, image_processor, ex_images, all_labels)
    ex_right_all = sum(all_labels[int(pr.argmax())] == label(c, s) for (_, c, s, _), pr in zip(EXAMPLES, ex_probs_all))
    print(f"examples: {ex_right}/{len(EXAMPLES)} top-1 among the {len(EXAMPLE_LABELS)} README labels, "
          f"{ex_right_all}/{len(EXAMPLES)} among all {len(all_labels)} labels", flush=True)

    report = {
        "command": "tools/train_demo.py " + " ".join(sys.argv[1:]),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "pillow": PIL.__version__, "numpy": np.__version__},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "seed": SEED,
        "parameters": n_params,
        "vocab_size": len(vocab),
        "held_out": sorted(f"{c} {s}" for c, s in HELD_OUT),
        "train_seconds": round(train_s, 1),
        "data_seconds": round(data_s, 1),
        "final_loss_avg_last_100": round(final_loss, 4),
        "loss_log": log,
        "eval": ev,
        "examples": {"labels": EXAMPLE_LABELS, "top1_right": ex_right, "top1_right_all_labels": ex_right_all,
                     "n": len(EXAMPLES), "rows": ex_rows},
    }
    (out / "training_report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

    if args.export:
        return export_and_score(out, ex_paths, ex_probs)
    return 0


def export_and_score(out: Path, ex_paths: list[Path], ex_probs: np.ndarray) -> int:
    """`vtde export` the checkpoint and `vtde score` the examples; compare with transformers."""
    out = Path(os.path.relpath(out.resolve(), ROOT))  # cargo runs in ROOT; print short paths
    pkg = out / "demo"
    if (ROOT / pkg).exists():
        shutil.rmtree(ROOT / pkg)
    cargo = ["cargo", "run", "--release", "-q", "-p", "vtde-cli", "--"]
    subprocess.run(cargo + ["export", str(out / "demo-checkpoint"), str(pkg)], cwd=ROOT, check=True)
    res = subprocess.run(cargo + ["score", str(pkg), str(out / "examples"), "--labels", *EXAMPLE_LABELS],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    print(res.stdout, end="")
    print(res.stderr, end="", file=sys.stderr)
    rows = [line.split(",") for line in res.stdout.strip().splitlines()]
    header, rows = rows[0], rows[1:]
    assert header[1:] == EXAMPLE_LABELS, header
    ours = {Path(r[0]).name: np.array([float(x) for x in r[1:]]) for r in rows}
    worst = 0.0
    agree = 0
    for p, ref in zip(ex_paths, ex_probs):
        got = ours[p.name]
        worst = max(worst, float(np.abs(got - ref).max()))
        agree += int(got.argmax() == ref.argmax())
    print(f"vtde vs transformers on the examples: top-1 agrees {agree}/{len(ex_paths)}, "
          f"max abs prob diff {worst:.2e}")
    return 0 if agree == len(ex_paths) else 1


if __name__ == "__main__":
    sys.exit(main())
