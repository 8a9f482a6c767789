#!/usr/bin/env python3
"""Regenerate tests/fixtures/: tiny random VisionTextDualEncoderModel checkpoints and the
reference outputs transformers computes for them on fixed images and texts.

    "$(/work/shared/reference-env.sh)/bin/python" tools/make_fixtures.py

Everything is seeded, so a re-run rewrites the same files (given the same library
versions, which are written to tests/fixtures/versions.json). The whole output
directory is deleted and rebuilt.

To add a pairing (DeiT, BEiT, CLIP vision, RoBERTa, ...), append an entry to CONFIGS.
The tower configs are built with AutoConfig.for_model(model_type, **kwargs), so any
tower transformers knows can be named; only the tokenizer builder is BERT-specific
today (see TOKENIZER_BUILDERS).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import PIL
import safetensors
import skimage
import skimage.data
import tokenizers
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoTokenizer,
    BertTokenizerFast,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
    VisionTextDualEncoderProcessor,
)
from transformers.image_processing_backends import PilBackend

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "fixtures"

SEED = 20240917

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# --------------------------------------------------------------------------------------
# The fixture matrix. One entry per checkpoint directory under tests/fixtures/.
#   vision / text:     (model_type, kwargs for AutoConfig.for_model)
#   image_processor:   (class name in `transformers`, kwargs). Must be a PIL-backend class.
#   save_processor:    "combined": VisionTextDualEncoderProcessor.save_pretrained
#                      (image processor inside processor_config.json);
#                      "separate": tokenizer and image processor saved on their own
#                      (image processor in the legacy preprocessor_config.json).
#   tokenizer:         key of TOKENIZER_BUILDERS.
#   images:            names from IMAGE_NAMES to put in the batch (None: all of them);
#                      the 224 px config uses a subset to keep the fixtures small.
#   jpeg:              also record the JPEG input (inputs/jpeg/) under jpeg_* keys.
# --------------------------------------------------------------------------------------
CONFIGS = [
    {
        "name": "vit-bert-tiny",
        "vision": (
            "vit",
            dict(
                image_size=32,
                patch_size=8,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=37,
            ),
        ),
        "text": (
            "bert",
            dict(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=37,
                max_position_embeddings=24,
            ),
        ),
        "dual": dict(projection_dim=16),
        # ViT's defaults (bilinear, mean/std 0.5, no crop, no do_convert_rgb key) except size.
        "image_processor": ("ViTImageProcessorPil", dict(size={"height": 32, "width": 32})),
        "save_processor": "combined",
        "tokenizer": "bert-wordpiece",
        "images": None,
        "jpeg": True,
    },
    {
        "name": "vit-bert-224",
        "vision": (
            "vit",
            dict(
                image_size=224,
                patch_size=32,
                hidden_size=48,
                num_hidden_layers=3,
                num_attention_heads=3,
                intermediate_size=64,
                qkv_bias=False,
                layer_norm_eps=1e-6,
            ),
        ),
        "text": (
            "bert",
            dict(
                hidden_size=48,
                num_hidden_layers=2,
                num_attention_heads=3,
                intermediate_size=64,
                max_position_embeddings=40,
                type_vocab_size=2,
            ),
        ),
        "dual": dict(projection_dim=24, logit_scale_init_value=2.0),
        "image_processor": (
            "ViTImageProcessorPil",
            dict(
                size={"height": 224, "width": 224},
                resample=3,  # PIL.Image.BICUBIC
                image_mean=CLIP_MEAN,
                image_std=CLIP_STD,
                do_convert_rgb=True,
            ),
        ),
        "save_processor": "separate",
        "tokenizer": "bert-wordpiece",
        # 224x224 float32 pixel_values are 602 KB an image: a subset keeps the fixtures small.
        "images": ["astronaut.png", "chelsea.png", "noise_37x53.png", "gradient_300x5.png", "rgba_40x30.png"],
        "jpeg": False,
    },
]

# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
LONG_TEXT = (
    "this is a very long description of a picture that keeps going well past the number "
    "of positions either text tower can hold so that the tokenizer has to truncate it "
    "there is a small brown cat sitting on a red chair next to a window and outside the "
    "window the snow is falling on a quiet street while a dog runs after a ball and a man "
    "in a blue coat walks home with a cup of hot coffee in his hand at the end of a long "
    "cold day in the city"
)

TEXTS = [
    "a photo of a cat",
    "A DOG playing in the snow.",
    "",
    "un café très chaud ☕ — 東京",
    LONG_TEXT,
    "an astronaut",
    "a cup of coffee on a wooden table, seen from above",
    "  Tabs\tand\nnewlines,   extra   spaces!  ",
    "Hello, World! 42 cats (and 7 dogs) & #1 unbelievablyxyz",
    "red",
]

# Images written to inputs/images/, in batch order. Synthetic names are <kind>_<W>x<H>.
PHOTOS = {
    # name: (skimage loader, licence note)
    "astronaut.png": ("astronaut", "Eileen Collins, NASA; public domain (no known copyright restrictions)"),
    "coffee.png": ("coffee", "Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0"),
    "chelsea.png": ("chelsea", "Stefan van der Walt; CC0"),
}
IMAGE_NAMES = [
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "noise_37x53.png",
    "pixel_1x1.png",
    "gradient_300x5.png",
    "gray_64x48.png",
    "rgba_40x30.png",
    "palette_45x35.png",
    "palette_trns_45x35.png",
]
JPEG_NAMES = ["chelsea_q90.jpg"]
PHOTO_MAX_SIDE = 200


def make_images(rng: np.random.Generator) -> dict[str, Image.Image]:
    out: dict[str, Image.Image] = {}
    for name, (loader, _) in PHOTOS.items():
        arr = getattr(skimage.data, loader)()
        im = Image.fromarray(arr).convert("RGB")
        scale = PHOTO_MAX_SIDE / max(im.size)
        if scale < 1:
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            im = im.resize(size, Image.Resampling.LANCZOS)
        out[name] = im

    out["noise_37x53.png"] = Image.fromarray(rng.integers(0, 256, size=(53, 37, 3), dtype=np.uint8), "RGB")
    out["pixel_1x1.png"] = Image.new("RGB", (1, 1), (200, 30, 90))

    # 300 wide, 5 high: a horizontal colour ramp with a different ramp per row.
    x = np.linspace(0.0, 1.0, 300)[None, :]
    y = np.arange(5)[:, None] / 4.0
    grad = np.stack([255 * x * np.ones_like(y), 255 * (1 - x) * (0.5 + 0.5 * y), 255 * y * np.ones_like(x)], -1)
    out["gradient_300x5.png"] = Image.fromarray(np.round(grad).astype(np.uint8), "RGB")

    yy, xx = np.mgrid[0:48, 0:64]
    gray = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 20, size=(48, 64))
    out["gray_64x48.png"] = Image.fromarray(np.clip(np.round(gray), 0, 255).astype(np.uint8), "L")

    # RGBA: coloured pattern, alpha 0 on the left edge, 255 on the right, a fully
    # transparent hole and a half-transparent band, so premultiplication/compositing shows.
    yy, xx = np.mgrid[0:30, 0:40]
    rgb = np.stack([(xx * 6) % 256, (yy * 8) % 256, ((xx + yy) * 5) % 256], -1)
    alpha = np.round(255 * xx / 39.0)
    alpha[10:20, 15:25] = 0
    alpha[25:28, :] = 128
    rgba = np.concatenate([rgb, alpha[..., None]], -1)
    out["rgba_40x30.png"] = Image.fromarray(rgba.astype(np.uint8), "RGBA")

    # Palette images: a 16-colour quantisation of a smooth pattern.
    yy, xx = np.mgrid[0:35, 0:45]
    src = np.stack([(xx * 5.6) % 256, (yy * 7.2) % 256, np.full_like(xx, 160)], -1).astype(np.uint8)
    pal = Image.fromarray(src, "RGB").quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out["palette_45x35.png"] = pal
    # Same, with palette index 0 marked transparent (a PNG tRNS chunk): transformers'
    # convert_to_rgb composites it onto white.
    pal_t = pal.copy()
    pal_t.info["transparency"] = 0
    out["palette_trns_45x35.png"] = pal_t
    return out


def save_images(images: dict[str, Image.Image], img_dir: Path) -> None:
    img_dir.mkdir(parents=True, exist_ok=True)
    for name in IMAGE_NAMES:
        im = images[name]
        kw = {}
        if "transparency" in im.info:
            kw["transparency"] = im.info["transparency"]
        im.save(img_dir / name, format="PNG", optimize=True, **kw)


def save_jpegs(images: dict[str, Image.Image], jpeg_dir: Path) -> None:
    jpeg_dir.mkdir(parents=True, exist_ok=True)
    images["chelsea.png"].save(jpeg_dir / "chelsea_q90.jpg", format="JPEG", quality=90, subsampling=2)


# --------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------
COMMON_WORDS = """
the of and to in is was it for on are as with his they at be this from have or by one had
not but what all were when we there can an your which their said if do will each about how
up out them then she many some so these would other into has more her two like him see time
could no make than first been its who now people my made over did down only way find use
may water long little very after words called just where most know get through back much
go good new write our me man too any day same right look think also around another came
come work three must because does part even place well such here take why help put
different away again off went old number great tell men say small every found still
between name should home big give air line set own under read last never us left end
along while might next sound below saw something thought both few those always show large
often together asked house world going want school important until form food keep children
feet land side without boy once animal life enough took four head above kind began almost
live page got earth need far hand high year mother light country father let night picture
being study second soon story since white ever paper hard near sentence better best across
during today however sure knew try told young sun thing whole hear example heard several
change answer room sea against top turned learn point city play toward five himself usually
money seen car morning table cat cats dog dogs photo photos photograph image snow playing
astronaut coffee cup wooden above seen hot chaud cafe tres un red blue green brown black
yellow chair window street ball coat walks runs falling quiet sitting cold hello tabs
newlines extra spaces description picture keeps going past positions either text tower
hold has truncate small outside while his hand end day city that tokenizer
""".split()
# Words of TEXTS deliberately left out of the vocabulary (WordPiece splits or [UNK]s them).
DELIBERATE_OOV = {"42", "unbelievablyxyz", "\u2014", "\u2615", "\u6771", "\u4eac"}
SUFFIXES = ["##s", "##es", "##ed", "##ing", "##ly", "##er", "##est", "##ion", "##al", "##y"]


def build_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    digits = list("0123456789")
    letters = list("abcdefghijklmnopqrstuvwxyz")
    cont = ["##" + c for c in letters + digits]
    vocab: list[str] = []
    seen: set[str] = set()
    for tok in specials + punct + digits + letters + cont + SUFFIXES + COMMON_WORDS:
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    return vocab


def build_bert_wordpiece(workdir: Path, max_length: int):
    vocab = build_vocab()
    vocab_file = workdir / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # NB transformers 5.24: BertTokenizerFast is an alias of the tokenizers-backed
    # BertTokenizer, whose constructor takes `vocab=` (path or dict). `vocab_file=` is
    # silently ignored and yields a 5-token vocabulary, so pass `vocab=`.
    tok = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True, model_max_length=max_length)
    assert len(tok) == len(vocab), (len(tok), len(vocab))
    # Every word of the texts is in the vocabulary, except the deliberate ones.
    norm = tok.backend_tokenizer.normalizer
    pre = tok.backend_tokenizer.pre_tokenizer
    words = {w for t in TEXTS for w, _ in pre.pre_tokenize_str(norm.normalize_str(t))}
    missing = words - set(vocab) - DELIBERATE_OOV
    assert not missing, f"add to COMMON_WORDS: {sorted(missing)}"
    return tok, vocab_file, len(vocab)


TOKENIZER_BUILDERS = {"bert-wordpiece": build_bert_wordpiece}


# --------------------------------------------------------------------------------------
# Weight perturbation
# --------------------------------------------------------------------------------------
QK_GAIN = 1.5


def perturb_(model: nn.Module, gen: torch.Generator) -> dict[str, str]:
    """Add seeded noise to every parameter so attention is far from uniform and masks,
    biases, positions and token types all change the outputs, while activations stay
    O(1). Returns {param name: rule} and asserts every parameter was touched once."""

    def noise(p: torch.Tensor, std: float) -> torch.Tensor:
        return torch.randn(p.shape, generator=gen, dtype=torch.float32) * std

    done: dict[str, str] = {}
    named = dict(model.named_parameters())

    def touch(name: str, std: float, rule: str, base: float | None = None) -> None:
        p = named[name]
        assert name not in done, name
        with torch.no_grad():
            if base is not None:
                p.fill_(base)
            p.add_(noise(p, std))
        done[name] = rule

    for mname, mod in sorted(model.named_modules(), key=lambda kv: kv[0]):
        prefix = mname + "." if mname else ""
        if isinstance(mod, nn.LayerNorm):
            if mod.weight is not None:
                touch(prefix + "weight", 0.2, "layernorm weight 1+N(0,0.2)", base=1.0)
            if mod.bias is not None:
                touch(prefix + "bias", 0.1, "layernorm bias N(0,0.1)", base=0.0)
        elif isinstance(mod, nn.Embedding):
            if "word_embeddings" in mname:
                touch(prefix + "weight", 1.0, "word embeddings +N(0,1)")
            else:  # position / token type embeddings
                touch(prefix + "weight", 0.5, "position/type embeddings +N(0,0.5)")
        elif isinstance(mod, (nn.Linear, nn.Conv2d)):
            fan_in = math.prod(mod.weight.shape[1:])
            # Query/key projections get a larger gain so attention is clearly non-uniform.
            leaf = mname.rsplit(".", 1)[-1]
            gain = QK_GAIN if leaf in ("query", "key", "q_proj", "k_proj") else 1.0
            touch(prefix + "weight", gain / math.sqrt(fan_in), f"weight +N(0,{gain}/sqrt(fan_in))")
            if mod.bias is not None:
                touch(prefix + "bias", 0.1, "bias +N(0,0.1)")

    # Bare parameters: ViT cls_token / position_embeddings, logit_scale, and anything else.
    for name in sorted(named):
        if name in done:
            continue
        if name == "logit_scale":
            touch(name, 0.1, "logit_scale +N(0,0.1)")
        elif name.endswith("cls_token"):
            touch(name, 1.0, "cls token +N(0,1)")
        elif "position_embedding" in name:
            touch(name, 0.5, "position embeddings +N(0,0.5)")
        else:
            touch(name, 0.1, "other +N(0,0.1)")
    assert set(done) == set(named), set(named) - set(done)
    return done


# --------------------------------------------------------------------------------------
# Building one fixture
# --------------------------------------------------------------------------------------
def seed_all(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous().cpu()


def i64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.int64).contiguous().cpu()


def sanity(name: str, t: torch.Tensor, bound: float = 50.0) -> None:
    assert torch.isfinite(t).all(), f"{name}: non-finite values"
    m = t.abs().max().item()
    assert m < bound, f"{name}: max |x| = {m} (saturated?)"


def build_fixture(spec: dict, out_root: Path, img_dir: Path, jpeg_dir: Path, index: int) -> dict:
    name = spec["name"]
    cdir = out_root / name
    ckpt = cdir / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    seed = SEED + 1000 * index
    seed_all(seed)

    vtype, vkw = spec["vision"]
    ttype, tkw = spec["text"]
    max_length = tkw.get("max_position_embeddings")
    if max_length is None:
        raise ValueError(f"{name}: set max_position_embeddings explicitly")

    # Tokenizer first: the text config's vocab_size must equal the vocabulary length.
    tok, vocab_file, vocab_size = TOKENIZER_BUILDERS[spec["tokenizer"]](cdir, max_length)

    vision_config = AutoConfig.for_model(vtype, **vkw)
    text_config = AutoConfig.for_model(ttype, vocab_size=vocab_size, **tkw)
    config = VisionTextDualEncoderConfig.from_vision_text_configs(vision_config, text_config, **spec["dual"])
    model = VisionTextDualEncoderModel(config=config)
    gen = torch.Generator().manual_seed(seed + 1)
    perturb_(model, gen)
    model.eval()
    perturbed = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.save_pretrained(ckpt)

    ip_cls_name, ip_kw = spec["image_processor"]
    ip_cls = getattr(transformers, ip_cls_name)
    image_processor = ip_cls(**ip_kw)
    assert isinstance(image_processor, PilBackend), f"{ip_cls} is not a PIL-backend image processor"
    if spec["save_processor"] == "combined":
        VisionTextDualEncoderProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(ckpt)
    elif spec["save_processor"] == "separate":
        tok.save_pretrained(ckpt)
        image_processor.save_pretrained(ckpt)
    else:
        raise ValueError(spec["save_processor"])
    # transformers 5 writes tokenizer.json + tokenizer_config.json only; published BERT
    # checkpoints also carry vocab.txt, so put it in as well.
    shutil.move(str(vocab_file), ckpt / "vocab.txt")

    # ---- Reload everything from disk: the reference is what the saved files produce.
    model = VisionTextDualEncoderModel.from_pretrained(ckpt)
    model.eval()
    reloaded = model.state_dict()
    assert set(reloaded) == set(perturbed), set(reloaded) ^ set(perturbed)
    for k, v in perturbed.items():
        assert torch.equal(reloaded[k], v), f"{k} changed in the save/load round trip"
    tok = AutoTokenizer.from_pretrained(ckpt)
    assert len(tok) == vocab_size
    image_processor = AutoImageProcessor.from_pretrained(ckpt, backend="pil")
    assert isinstance(image_processor, PilBackend), type(image_processor)
    ip_class = f"{type(image_processor).__module__}.{type(image_processor).__qualname__}"

    image_names = spec["images"] or IMAGE_NAMES
    images = [Image.open(img_dir / n) for n in image_names]
    # ViT's defaults have no do_convert_rgb, and then transformers raises on L, RGBA and
    # P images ("mean must have 1 elements"). Ask for transformers' own convert_to_rgb
    # (alpha composited onto white) at call time so every image has a reference.
    saved_convert = getattr(image_processor, "do_convert_rgb", None)
    pixel_values = image_processor(images, return_tensors="pt", do_convert_rgb=True)["pixel_values"]
    for im in images:
        im.close()

    texts = TEXTS
    enc = tok(texts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    text_inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}

    with torch.no_grad():
        vision_out = model.vision_model(pixel_values=pixel_values)
        text_out = model.text_model(**text_inputs)
        image_features = vision_out[1]
        text_features = text_out[1]
        image_embeds = model.visual_projection(image_features)
        text_embeds = model.text_projection(text_features)

        out = model(pixel_values=pixel_values, **text_inputs)
        n = min(len(image_names), len(texts))
        sub = {k: v[:n] for k, v in text_inputs.items()}
        loss = model(pixel_values=pixel_values[:n], return_loss=True, **sub).loss.reshape(1)

        # Cross-checks against the public helpers.
        gi = model.get_image_features(pixel_values=pixel_values)
        gt = model.get_text_features(**text_inputs)
        gi_t = gi if isinstance(gi, torch.Tensor) else gi.pooler_output
        gt_t = gt if isinstance(gt, torch.Tensor) else gt.pooler_output
        assert torch.allclose(gi_t, image_embeds, atol=1e-6), "get_image_features mismatch"
        assert torch.allclose(gt_t, text_embeds, atol=1e-6), "get_text_features mismatch"
        img_n = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
        txt_n = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
        assert torch.allclose(out.image_embeds, img_n, atol=1e-6)
        assert torch.allclose(out.text_embeds, txt_n, atol=1e-6)

        # The perturbation must make the mask and positions matter.
        no_mask = model.text_model(**{**text_inputs, "attention_mask": torch.ones_like(text_inputs["attention_mask"])})[1]
        mask_effect = (no_mask - text_features).abs().max().item()
        assert mask_effect > 1e-2, f"attention mask barely matters ({mask_effect})"

        jpeg = {}
        if spec.get("jpeg"):
            jims = [Image.open(jpeg_dir / n) for n in JPEG_NAMES]
            jpv = image_processor(jims, return_tensors="pt", do_convert_rgb=True)["pixel_values"]
            for im in jims:
                im.close()
            jfeat = model.vision_model(pixel_values=jpv)[1]
            jemb = model.visual_projection(jfeat)
            jpeg = {
                "jpeg_pixel_values": f32(jpv),
                "jpeg_image_features": f32(jfeat),
                "jpeg_image_embeds": f32(jemb),
            }

    tensors = {
        "pixel_values": f32(pixel_values),
        "input_ids": i64(text_inputs["input_ids"]),
        "attention_mask": i64(text_inputs["attention_mask"]),
        "image_features": f32(image_features),
        "text_features": f32(text_features),
        "image_embeds": f32(image_embeds),
        "text_embeds": f32(text_embeds),
        "image_embeds_normalized": f32(out.image_embeds),
        "text_embeds_normalized": f32(out.text_embeds),
        "logits_per_image": f32(out.logits_per_image),
        "logits_per_text": f32(out.logits_per_text),
        "loss": f32(loss),
        **jpeg,
    }
    if "token_type_ids" in text_inputs:
        tensors["token_type_ids"] = i64(text_inputs["token_type_ids"])
    for k, v in tensors.items():
        if v.is_floating_point():
            sanity(f"{name}/{k}", v)
    save_file(tensors, cdir / "reference.safetensors", metadata={"format": "pt"})

    logit_scale = float(model.logit_scale.detach())
    files = sorted(p.name for p in ckpt.iterdir())
    if saved_convert is None:
        convert_note = (
            "do_convert_rgb is absent from the saved config; with it unset transformers raises "
            "on L, RGBA and P images, and on RGB images the flag changes nothing"
        )
    else:
        convert_note = f"the saved config has do_convert_rgb={saved_convert!r}"
    notes = (
        f"Generated by tools/make_fixtures.py with transformers {transformers.__version__}, "
        f"torch {torch.__version__}, in float32, eval mode, torch.no_grad(). "
        f"Image processor class: {ip_class} (the PIL/numpy backend; transformers 5 names the "
        f"torchvision one ViTImageProcessor), loaded back from the checkpoint with "
        f"AutoImageProcessor.from_pretrained(dir, backend='pil'). "
        f"Images were opened with PIL Image.open(path), unconverted, and processed with "
        f"do_convert_rgb=True passed at call time ({convert_note}). "
        f"transformers' convert_to_rgb composites alpha (RGBA, and P with a tRNS transparency "
        f"index) onto white. Tokenizer: {type(tok).__name__} (tokenizers backend) from the "
        f"checkpoint, called with padding='longest', truncation=True, max_length={max_length}. "
        f"image_features/text_features are the towers' pooled outputs (vision_model(...)[1], "
        f"text_model(...)[1]); image_embeds/text_embeds are the projections, not normalized; "
        f"*_normalized, logits_per_image [n_images, n_texts] and logits_per_text come from "
        f"model(...). loss is model(..., return_loss=True) on the first loss_n images and "
        f"texts (the text tensors sliced, so padded to the full batch's longest). "
        f"The checkpoint's logit_scale ({logit_scale:.6f}) is perturbed and differs from the "
        f"config's logit_scale_init_value: read the weight. Attention implementation: "
        f"{model.config.text_config._attn_implementation}/{model.config.vision_config._attn_implementation}."
    )
    ref = {
        "images": list(image_names),
        "texts": list(texts),
        "max_length": max_length,
        "loss_n": n,
        "logit_scale": logit_scale,
        "image_processor_class": ip_class,
        "tokenizer_class": f"{type(tok).__module__}.{type(tok).__qualname__}",
        "checkpoint_files": files,
        "notes": notes,
    }
    if jpeg:
        ref["jpeg_images"] = list(JPEG_NAMES)
    (cdir / "reference.json").write_text(json.dumps(ref, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(f"[{name}] max_length (max_position_embeddings) = {max_length}")
    print(f"[{name}] image processor: {ip_class}; tokenizer: {type(tok).__name__}; vocab {vocab_size}")
    print(f"[{name}] checkpoint files: {files}")
    print(f"[{name}] logit_scale {logit_scale:.4f}; mask effect on text_features {mask_effect:.3f}")
    for k, v in tensors.items():
        if v.is_floating_point():
            print(f"  {k:24s} {str(list(v.shape)):18s} std {v.std().item() if v.numel() > 1 else 0:.3f} max|x| {v.abs().max().item():.3f}")
        else:
            print(f"  {k:24s} {str(list(v.shape)):18s} int64")
    return ref


def write_readme(out_root: Path) -> None:
    lines = [
        "# Test fixtures (generated)",
        "",
        "Everything in this directory is written by `tools/make_fixtures.py`; do not edit it",
        "by hand. Regenerate (deletes and rewrites the whole directory) with:",
        "",
        "```",
        '"$(/work/shared/reference-env.sh)/bin/python" tools/make_fixtures.py',
        "```",
        "",
        "The library versions used are in `versions.json`. Weights are random (seeded) and",
        "perturbed so that attention, masks, positions and biases all matter; they mean nothing.",
        "",
        "## Layout",
        "",
        "- `inputs/images/*.png`: the input images, in the order given by each",
        "  `reference.json`. Synthetic ones are named `<kind>_<width>x<height>.png`:",
        "  RGB noise, a 1x1 pixel, a 300x5 gradient, an `L` (grayscale) image, an `RGBA`",
        "  image, a `P` (palette) image, and a `P` image with a tRNS transparency index.",
        "- `inputs/jpeg/chelsea_q90.jpg`: a JPEG of the cat photo, for the end-to-end JPEG",
        "  target (JPEG decoders differ, so it is kept out of the PNG batch; see `jpeg_*` keys).",
        "- `inputs/texts.json`: the input texts (JSON list), in batch order.",
        "- `<config>/checkpoint/`: `save_pretrained` output of a `VisionTextDualEncoderModel`",
        "  (config.json, model.safetensors) with its tokenizer (tokenizer.json,",
        "  tokenizer_config.json, vocab.txt) and image processor config:",
        "  `vit-bert-tiny` has it in `processor_config.json` under `image_processor` (saved",
        "  through `VisionTextDualEncoderProcessor`); `vit-bert-224` has the legacy",
        "  `preprocessor_config.json`.",
        "- `<config>/reference.safetensors`: transformers' inputs and outputs, float32 (ids and",
        "  masks int64): `pixel_values`, `input_ids`, `attention_mask`, `token_type_ids`,",
        "  `image_features`, `text_features` (pooled tower outputs), `image_embeds`,",
        "  `text_embeds` (projected, not normalized), `image_embeds_normalized`,",
        "  `text_embeds_normalized`, `logits_per_image`, `logits_per_text`, `loss` (shape [1],",
        "  on the first `loss_n` images and texts); `vit-bert-tiny` also has `jpeg_pixel_values`,",
        "  `jpeg_image_features`, `jpeg_image_embeds` for `inputs/jpeg/`.",
        "- `<config>/reference.json`: `images` and `texts` in batch order, `max_length`",
        "  (= the text tower's max_position_embeddings), `loss_n`, and `notes` on how the",
        "  reference was made (image processor class and backend, RGB conversion, ...).",
        "",
        "## Licences of the photos",
        "",
        "`astronaut.png`, `coffee.png`, `chelsea.png` (and the JPEG made from chelsea) are",
        "downscaled copies of images bundled with scikit-image (`skimage.data`):",
        "",
    ]
    for name, (loader, lic) in PHOTOS.items():
        lines.append(f"- `{name}` (`skimage.data.{loader}()`): {lic}.")
    lines += [
        "",
        "All other images, the texts, the vocabulary and the weights are synthetic.",
        "",
    ]
    (out_root / "README.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default tests/fixtures)")
    ap.add_argument("--only", action="append", help="build only this config (repeatable); others are kept")
    args = ap.parse_args()
    out_root: Path = args.out

    torch.set_num_threads(1)  # bit-stable reductions from run to run
    names = [c["name"] for c in CONFIGS]
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            ap.error(f"unknown config(s): {sorted(unknown)}; known: {names}")
    if out_root.exists() and not args.only:
        shutil.rmtree(out_root)
    out_root.mkdir(parents=True, exist_ok=True)

    seed_all(SEED)
    rng = np.random.default_rng(SEED)
    images = make_images(rng)
    img_dir = out_root / "inputs" / "images"
    jpeg_dir = out_root / "inputs" / "jpeg"
    save_images(images, img_dir)
    save_jpegs(images, jpeg_dir)
    (out_root / "inputs" / "texts.json").write_text(
        json.dumps(TEXTS, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "PIL": PIL.__version__,
        "numpy": np.__version__,
        "skimage": skimage.__version__,
        "safetensors": safetensors.__version__,
    }
    (out_root / "versions.json").write_text(json.dumps(versions, indent=2) + "\n", encoding="utf-8")

    for i, spec in enumerate(CONFIGS):
        if args.only and spec["name"] not in args.only:
            continue
        cdir = out_root / spec["name"]
        if cdir.exists():
            shutil.rmtree(cdir)
        build_fixture(spec, out_root, img_dir, jpeg_dir, i)

    write_readme(out_root)
    total = sum(p.stat().st_size for p in out_root.rglob("*") if p.is_file())
    print(f"wrote {out_root} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
