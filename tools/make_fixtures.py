#!/usr/bin/env python3
"""Regenerate tests/fixtures/: tiny random VisionTextDualEncoderModel checkpoints and the
reference outputs transformers computes for them on fixed images and texts.

    "$(tools/reference-env.sh)/bin/python" tools/make_fixtures.py

Everything is seeded, so a re-run rewrites the same files (given the same library
versions, which are written to tests/fixtures/versions.json). The whole output
directory is deleted and rebuilt.

    "$(tools/reference-env.sh)/bin/python" tools/make_fixtures.py --only clip-modern

rebuilds only the named config(s) (and rewrites inputs/, versions.json and README.md,
which come out identical); the others are kept.

To add a pairing, append an entry to CONFIGS (new entries go at the end: each config's
seed depends on its index). The tower configs are built with
AutoConfig.for_model(model_type, **kwargs), so any tower transformers knows can be named;
the architecture is VisionTextDualEncoderModel unless the entry says "CLIPModel". The
tokenizers (BERT WordPiece, RoBERTa byte-level BPE, XLM-R Unigram, CLIP BPE) are built by
deterministic trainers in TOKENIZER_BUILDERS (the `tokenizers` trainers break ties by hash
order and differ from run to run). `vit-bert-tiny` and `vit-bert-224` are marked
legacy_reference: their reference.json keeps the original fields, byte for byte.
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
    CLIPConfig,
    CLIPModel,
    CLIPProcessor,
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
IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406]
IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225]

# Tower size of the pairing fixtures: hidden 32, 2 layers, 4 heads, an odd MLP width.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
# The images recorded by the pairing fixtures: a photo of each shape, noise, and alpha.
SMALL_IMAGES = ["astronaut.png", "chelsea.png", "noise_37x53.png", "rgba_40x30.png"]

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
        "legacy_reference": True,
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
        "legacy_reference": True,
    },
    # ---- One fixture per tower pairing (issue "Every tower the seed names, and CLIPModel
    # checkpoints as they are"). All tiny; 4 images each (pixel_values are float32).
    {
        "name": "deit-roberta",
        # DeiT: CLS + distillation token; the pooler reads the CLS token only.
        "vision": ("deit", dict(TINY, image_size=32, patch_size=8)),
        # RoBERTa: positions start at pad_token_id + 1, so max_length = 26 - 1 - 1 = 24.
        "text": ("roberta", dict(TINY, max_position_embeddings=26, type_vocab_size=1, layer_norm_eps=1e-5)),
        "dual": dict(projection_dim=16),
        # DeiT's processor: resize to size (bicubic), center crop to crop_size; real DeiT
        # checkpoints use the ImageNet default mean/std.
        "image_processor": (
            "DeiTImageProcessorPil",
            dict(
                size={"height": 40, "width": 40},
                crop_size={"height": 32, "width": 32},
                image_mean=IMAGENET_DEFAULT_MEAN,
                image_std=IMAGENET_DEFAULT_STD,
            ),
        ),
        "save_processor": "separate",
        "tokenizer": "roberta-bpe",
        "images": SMALL_IMAGES,
        "jpeg": False,
    },
    {
        "name": "beit-xlm-roberta",
        # BEiT: a relative position bias table per layer, layer scale (lambda_1/2), mean pooling.
        "vision": (
            "beit",
            dict(
                TINY,
                image_size=32,
                patch_size=8,
                use_relative_position_bias=True,
                use_shared_relative_position_bias=False,
                use_absolute_position_embeddings=False,
                layer_scale_init_value=0.5,
                use_mean_pooling=True,
            ),
        ),
        "text": ("xlm-roberta", dict(TINY, max_position_embeddings=22, type_vocab_size=1, layer_norm_eps=1e-5)),
        "dual": dict(projection_dim=16),
        # Older BEiT processor defaults, scaled down: resize 256 -> center crop 224 becomes
        # 40 -> 32; bilinear and mean/std 0.5 as in microsoft/beit-* checkpoints.
        "image_processor": (
            "BeitImageProcessorPil",
            dict(
                size={"height": 40, "width": 40},
                do_center_crop=True,
                crop_size={"height": 32, "width": 32},
                resample=2,  # PIL.Image.BILINEAR
                image_mean=[0.5, 0.5, 0.5],
                image_std=[0.5, 0.5, 0.5],
            ),
        ),
        "save_processor": "combined",
        "tokenizer": "xlmr-unigram",
        "images": SMALL_IMAGES,
        "jpeg": False,
    },
    {
        "name": "beit-shared-bert",
        # The other BEiT variant: one relative position bias shared by all layers, absolute
        # position embeddings as well, CLS pooling after the final layernorm.
        "vision": (
            "beit",
            dict(
                TINY,
                image_size=32,
                patch_size=8,
                use_relative_position_bias=False,
                use_shared_relative_position_bias=True,
                use_absolute_position_embeddings=True,
                layer_scale_init_value=0.1,
                use_mean_pooling=False,
            ),
        ),
        "text": ("bert", dict(TINY, max_position_embeddings=24)),
        "dual": dict(projection_dim=16),
        # transformers 5.24's BEiT defaults, scaled down: resize to size, no crop (crop_size
        # is saved but do_center_crop is false), bicubic, mean/std 0.5.
        "image_processor": ("BeitImageProcessorPil", dict(size={"height": 32, "width": 32}, crop_size={"height": 24, "width": 24})),
        "save_processor": "combined",
        "tokenizer": "bert-wordpiece",
        "images": SMALL_IMAGES,
        "jpeg": False,
    },
    {
        "name": "clip-vision-bert",
        # model_type clip_vision_model: VisionTextDualEncoderModel builds a CLIPVisionModel.
        "vision": ("clip_vision_model", dict(TINY, image_size=32, patch_size=8)),
        "text": ("bert", dict(TINY, max_position_embeddings=24)),
        "dual": dict(projection_dim=16),
        # CLIP's processor: shortest edge to 32 (bicubic), center crop 32x32, CLIP mean/std.
        "image_processor": ("CLIPImageProcessorPil", dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})),
        "save_processor": "combined",
        "tokenizer": "bert-wordpiece",
        # Only vocab.txt (+ tokenizer_config.json): transformers builds the fast tokenizer from it.
        "drop_files": ["tokenizer.json"],
        # Weights in the transformers 4 layout of published checkpoints:
        # vision_model.vision_model.embeddings... (transformers 5 writes vision_model.embeddings...).
        "v4_prefix": ["vision_model"],
        "images": SMALL_IMAGES,
        "jpeg": False,
    },
    {
        "name": "vit-clip-text",
        "vision": ("vit", dict(TINY, image_size=32, patch_size=8)),
        # CLIP text inside the dual encoder; eos_token_id = the tokenizer's <|endoftext|>
        # (here also the highest id, as in OpenAI's vocabulary).
        "text": ("clip_text_model", dict(TINY, max_position_embeddings=20)),
        "dual": dict(projection_dim=16),
        "image_processor": (
            "ViTImageProcessorPil",
            dict(size={"height": 32, "width": 32}, resample=3, image_mean=CLIP_MEAN, image_std=CLIP_STD, do_convert_rgb=True),
        ),
        "save_processor": "separate",
        "tokenizer": "clip-bpe",
        # Only vocab.json + merges.txt (+ tokenizer_config.json).
        "drop_files": ["tokenizer.json"],
        "images": SMALL_IMAGES,
        "jpeg": False,
    },
    {
        "name": "clip-legacy",
        "architecture": "CLIPModel",
        "vision": ("clip_vision_model", dict(TINY, hidden_size=40, image_size=32, patch_size=8)),
        # The pre-#24773 config: eos_token_id 2 makes transformers pool at argmax(input_ids);
        # the tokenizer's <|endoftext|> has the highest id, as in OpenAI's vocabulary.
        "text": ("clip_text_model", dict(TINY, max_position_embeddings=16, bos_token_id=0, pad_token_id=1, eos_token_id=2)),
        "dual": dict(projection_dim=16),
        "image_processor": ("CLIPImageProcessorPil", dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})),
        "save_processor": "separate",
        "tokenizer": "clip-bpe",
        "images": SMALL_IMAGES,
        "jpeg": False,
    },
    {
        "name": "clip-modern",
        "architecture": "CLIPModel",
        # image_size 56 with patch 14 (a 4x4 grid), not 224/32.
        "vision": ("clip_vision_model", dict(TINY, image_size=56, patch_size=14)),
        # eos_token_id = the tokenizer's <|endoftext|>, which is NOT the highest id here, so
        # pooling at argmax(input_ids) would pick another token.
        "text": ("clip_text_model", dict(TINY, max_position_embeddings=24)),
        "dual": dict(projection_dim=24, logit_scale_init_value=2.0),
        "image_processor": ("CLIPImageProcessorPil", dict(size={"shortest_edge": 64}, crop_size={"height": 56, "width": 56})),
        "save_processor": "combined",
        "tokenizer": "clip-bpe-eos-mid",
        "expect_argmax_differs": True,
        "images": SMALL_IMAGES,
        "jpeg": False,
    },
    {
        "name": "sharded-fp16",
        # ViT + BERT saved in float16, in several shards (model.safetensors.index.json).
        "vision": ("vit", dict(TINY, image_size=32, patch_size=8)),
        "text": ("bert", dict(TINY, max_position_embeddings=24)),
        "dual": dict(projection_dim=16),
        "image_processor": ("ViTImageProcessorPil", dict(size={"height": 32, "width": 32})),
        "save_processor": "combined",
        "tokenizer": "bert-wordpiece",
        "save_dtype": "float16",
        "max_shard_size": "40KB",
        "images": SMALL_IMAGES,
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


# --------------------------------------------------------------------------------------
# Tokenizers other than BERT WordPiece. The `tokenizers` trainers are not deterministic
# from process to process (pair and piece ties are broken by hash order), so the
# vocabularies are built here by small deterministic trainers on the pre-tokenized
# corpus, using the pre-tokenizer of the transformers class itself, and then handed to
# that class (RobertaTokenizer, CLIPTokenizer, XLMRobertaTokenizer; all backed by
# `tokenizers`).
# --------------------------------------------------------------------------------------
EXTRA_CORPUS = [
    "The cat sat on the mat. The dog sat on the log.",
    "Photos of cats, dogs, coffee cups and astronauts; pictures of snow and windows.",
    "Hello there! What a nice day: 1, 2, 3, 4, 5, 6, 7, 8, 9, 0.",
    "A RED CHAIR, a Blue Coat, a Green Ball - small, smaller, smallest.",
    "Un café très chaud, s'il vous plaît. Il fait froid à l'extérieur.",
]


def training_corpus(drop_chars: str = "") -> list[str]:
    """COMMON_WORDS, EXTRA_CORPUS and TEXTS, without the characters in drop_chars (those
    become out-of-vocabulary for tokenizers without a byte fallback)."""
    out = [" ".join(COMMON_WORDS)] + EXTRA_CORPUS + TEXTS
    return ["".join(c for c in t if c not in drop_chars) for t in out]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable character table (the ByteLevel pre-tokenizer's)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def train_bpe(words: dict[tuple[str, ...], int], num_merges: int, min_count: int = 2) -> list[tuple[str, str]]:
    """Plain BPE: repeatedly merge the most frequent adjacent pair (ties: the
    lexicographically smallest pair). Deterministic."""
    words = dict(words)
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: dict[tuple[str, str], int] = {}
        for w, f in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + f
        if not pairs:
            break
        best, count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if count < min_count:
            break
        merges.append(best)
        a, b = best
        new_words: dict[tuple[str, ...], int] = {}
        for w, f in words.items():
            out: list[str] = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            t = tuple(out)
            new_words[t] = new_words.get(t, 0) + f
        words = new_words
    return merges


def pretokenized_words(backend, texts: list[str], end_of_word: str = "") -> dict[tuple[str, ...], int]:
    words: dict[tuple[str, ...], int] = {}
    for t in texts:
        if backend.normalizer is not None:
            t = backend.normalizer.normalize_str(t)
        for w, _ in backend.pre_tokenizer.pre_tokenize_str(t):
            sym = tuple(w[:-1]) + (w[-1] + end_of_word,) if end_of_word else tuple(w)
            words[sym] = words.get(sym, 0) + 1
    return words


def write_vocab_json(vocab: dict[str, int], path: Path) -> None:
    path.write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")


def write_merges_txt(merges: list[tuple[str, str]], path: Path) -> None:
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_roberta_bpe(workdir: Path, max_length: int):
    """Byte-level BPE in RoBERTa's layout: <s>=0 <pad>=1 </s>=2 <unk>=3, the 256 byte
    symbols, the merges, <mask> last. Files: vocab.json + merges.txt (+ tokenizer.json
    written by save_pretrained)."""
    from transformers import RobertaTokenizer

    probe = RobertaTokenizer()  # empty vocabulary; only its pre-tokenizer is used
    words = pretokenized_words(probe.backend_tokenizer, training_corpus())
    merges = train_bpe(words, 200)
    vocab: dict[str, int] = {}
    for t in ["<s>", "<pad>", "</s>", "<unk>"] + list(bytes_to_unicode().values()) + [a + b for a, b in merges] + ["<mask>"]:
        vocab.setdefault(t, len(vocab))
    vocab_file, merges_file = workdir / "vocab.json", workdir / "merges.txt"
    write_vocab_json(vocab, vocab_file)
    write_merges_txt(merges, merges_file)
    tok = RobertaTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=max_length)
    assert len(tok) == len(vocab), (len(tok), len(vocab))
    assert tok.pad_token_id == 1 and tok.cls_token_id == 0 and tok.sep_token_id == 2
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    return tok, [vocab_file, merges_file], len(vocab), ids


# Characters of TEXTS kept out of the Unigram vocabulary (no byte fallback: <unk>).
UNIGRAM_OOV_CHARS = "\u2615\u2014\u6771\u4eac"


def build_xlmr_unigram(workdir: Path, max_length: int):
    """A Unigram (SentencePiece-style) vocabulary in XLM-R's layout: <s>=0 <pad>=1 </s>=2
    <unk>=3 (XLMRobertaTokenizer hard-codes unk_id=3), pieces, <mask> last. Pieces: every
    character of the corpus plus the most frequent substrings of the Metaspace-prefixed
    words; scores are log relative frequencies (rounded, so the JSON is stable). No
    Precompiled normalizer (that needs a sentencepiece model), so case is kept."""
    from transformers import XLMRobertaTokenizer

    probe = XLMRobertaTokenizer()
    pre = probe.backend_tokenizer.pre_tokenizer
    word_counts: dict[str, int] = {}
    for t in training_corpus(UNIGRAM_OOV_CHARS):
        for w, _ in pre.pre_tokenize_str(t):
            word_counts[w] = word_counts.get(w, 0) + 1
    chars: dict[str, int] = {}
    subs: dict[str, int] = {}
    for w, f in word_counts.items():
        for c in w:
            chars[c] = chars.get(c, 0) + f
        for i in range(len(w)):
            for j in range(i + 2, min(len(w), i + 10) + 1):
                subs[w[i:j]] = subs.get(w[i:j], 0) + f
    top = sorted(((s, c) for s, c in subs.items() if c >= 2), key=lambda kv: (-kv[1] * (len(kv[0]) - 1), kv[0]))[:260]
    pieces = dict(sorted(chars.items()))
    for s, c in top:
        pieces[s] = c
    total = float(sum(pieces.values()))
    scored = sorted(((p, round(math.log(c / total), 6)) for p, c in pieces.items()), key=lambda kv: (-kv[1], kv[0]))
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + scored + [("<mask>", 0.0)]
    tok = XLMRobertaTokenizer(vocab=vocab, model_max_length=max_length)
    assert len(tok) == len(vocab), (len(tok), len(vocab))
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    return tok, [], len(vocab), ids


def _build_clip_bpe(workdir: Path, max_length: int, specials_last: bool):
    """CLIP's BPE layout: the 256 byte symbols, the same with the `</w>` end-of-word
    suffix, the merges, then <|startoftext|> and <|endoftext|>. specials_last=True puts
    the two specials at the end, as in OpenAI's vocabulary (the EOS then has the highest
    id, which the legacy argmax pooling relies on); False puts them right after the 512
    byte symbols, so the EOS is not the highest id. Files: vocab.json + merges.txt."""
    from transformers import CLIPTokenizer

    probe = CLIPTokenizer()
    words = pretokenized_words(probe.backend_tokenizer, training_corpus(), end_of_word="</w>")
    merges = train_bpe(words, 120)
    base = list(bytes_to_unicode().values())
    specials = ["<|startoftext|>", "<|endoftext|>"]
    order = base + [b + "</w>" for b in base]
    order += ([] if specials_last else specials) + [a + b for a, b in merges] + (specials if specials_last else [])
    vocab: dict[str, int] = {}
    for t in order:
        vocab.setdefault(t, len(vocab))
    vocab_file, merges_file = workdir / "vocab.json", workdir / "merges.txt"
    write_vocab_json(vocab, vocab_file)
    write_merges_txt(merges, merges_file)
    tok = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=max_length)
    assert len(tok) == len(vocab), (len(tok), len(vocab))
    eos = tok.eos_token_id
    assert tok.pad_token_id == eos, "CLIPTokenizer pads with <|endoftext|>"
    assert (eos == len(vocab) - 1) == specials_last
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": eos}
    return tok, [vocab_file, merges_file], len(vocab), ids


def build_clip_bpe_eos_last(workdir: Path, max_length: int):
    return _build_clip_bpe(workdir, max_length, specials_last=True)


def build_clip_bpe_eos_mid(workdir: Path, max_length: int):
    return _build_clip_bpe(workdir, max_length, specials_last=False)


def build_bert_wordpiece_ids(workdir: Path, max_length: int):
    tok, vocab_file, n = build_bert_wordpiece(workdir, max_length)
    return tok, [vocab_file], n, {"pad_token_id": tok.pad_token_id}


# name -> builder(workdir, max_length) -> (tokenizer, [vocabulary files written in
# workdir, moved into the checkpoint], vocab_size, {special token ids for the text config})
TOKENIZER_BUILDERS = {
    "bert-wordpiece": build_bert_wordpiece_ids,
    "roberta-bpe": build_roberta_bpe,
    "xlmr-unigram": build_xlmr_unigram,
    "clip-bpe": build_clip_bpe_eos_last,
    "clip-bpe-eos-mid": build_clip_bpe_eos_mid,
}


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
            if "word_embeddings" in mname or mname.endswith("token_embedding"):  # BERT-likes, CLIP text
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
        elif name.endswith(("cls_token", "distillation_token", "class_embedding")):
            touch(name, 1.0, "cls/distillation token +N(0,1)")
        elif name.endswith("relative_position_bias_table"):
            # BEiT: zero-initialised; large enough that the attention bias clearly matters.
            touch(name, 0.7, "relative position bias table +N(0,0.7)")
        elif name.rsplit(".", 1)[-1] in ("lambda_1", "lambda_2"):
            # BEiT layer scale: layer_scale_init_value + noise, so every channel differs.
            touch(name, 0.2, "layer scale +N(0,0.2)")
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


# Text towers whose position ids start after the padding index (RoBERTa family): the
# longest input is max_position_embeddings - pad_token_id - 1 tokens.
PADDING_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert")
# Text towers with a causal mask that pool at the EOS token (padding cannot change them).
CAUSAL_TEXT = ("clip_text_model",)

TOKENIZER_FILE_NAMES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
)
PROCESSOR_FILE_NAMES = ("processor_config.json", "preprocessor_config.json")


def text_max_length(ttype: str, tkw: dict, pad_token_id: int | None) -> tuple[int, str]:
    mpe = tkw.get("max_position_embeddings")
    if mpe is None:
        raise ValueError("set max_position_embeddings explicitly")
    if ttype in PADDING_OFFSET_POSITIONS:
        return mpe - pad_token_id - 1, (
            f"max_position_embeddings ({mpe}) - pad_token_id ({pad_token_id}) - 1: position ids start at "
            f"pad_token_id + 1"
        )
    return mpe, f"max_position_embeddings ({mpe})"


def pooling_notes(model, arch: str, vtype: str, ttype: str, ids: dict) -> dict:
    vc, tc = model.config.vision_config, model.config.text_config
    if vtype in ("vit", "deit"):
        v = "pooler: tanh(dense(last_hidden_state[:, 0])) after the final layernorm (the CLS token"
        v += "; DeiT's distillation token at index 1 is not used)" if vtype == "deit" else ")"
    elif vtype == "beit":
        v = (
            "mean of the patch tokens (last_hidden_state[:, 1:]) then pooler.layernorm (use_mean_pooling; the "
            "model's final layernorm is Identity)"
            if vc.use_mean_pooling
            else "last_hidden_state[:, 0] after the final layernorm (use_mean_pooling=False; no dense)"
        )
    elif vtype == "clip_vision_model":
        v = "post_layernorm(last_hidden_state[:, 0]) (CLS after pre_layrnorm + encoder; no dense)"
    else:
        v = "?"
    if ttype in ("bert", "roberta", "xlm-roberta"):
        t = "pooler: tanh(dense(last_hidden_state[:, 0])) (first token)"
    elif ttype == "clip_text_model":
        if tc.eos_token_id == 2:
            t = "final_layer_norm(h)[i, argmax(input_ids[i])] (legacy: text_config.eos_token_id == 2)"
        else:
            t = (
                f"final_layer_norm(h)[i, first position where input_ids == text_config.eos_token_id "
                f"({tc.eos_token_id})]"
            )
    else:
        t = "?"
    return {"vision_pooling": v, "text_pooling": t}


def rewrite_v4_prefix(ckpt: Path, towers: list[str]) -> None:
    """Rename `<tower>.X` to `<tower>.<tower>.X` in model.safetensors: the layout
    transformers 4 wrote for a CLIPVisionModel / CLIPTextModel inside a
    VisionTextDualEncoderModel (those classes wrapped a `vision_model` / `text_model`
    transformer), which is what published dual-encoder checkpoints hold. transformers 5
    reads both layouts (a PrefixChange conversion) and writes the flat one for a model it
    built itself."""
    from safetensors import safe_open

    path = ckpt / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        sd = {k: f.get_tensor(k) for k in f.keys()}
    out = {}
    for k, v in sd.items():
        tower = k.split(".", 1)[0]
        out[f"{tower}.{k}" if tower in towers else k] = v
    save_file(out, path, metadata=meta)


def build_fixture(spec: dict, out_root: Path, img_dir: Path, jpeg_dir: Path, index: int) -> dict:
    name = spec["name"]
    # The first two fixtures predate the extended reference.json fields; they are kept
    # byte-identical (Rust tests depend on them).
    legacy = spec.get("legacy_reference", False)
    arch = spec.get("architecture", "VisionTextDualEncoderModel")
    model_cls = {"VisionTextDualEncoderModel": VisionTextDualEncoderModel, "CLIPModel": CLIPModel}[arch]
    cdir = out_root / name
    ckpt = cdir / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    seed = SEED + 1000 * index
    seed_all(seed)

    vtype, vkw = spec["vision"]
    ttype, tkw = spec["text"]
    if tkw.get("max_position_embeddings") is None:
        raise ValueError(f"{name}: set max_position_embeddings explicitly")

    # The longest input the text tower takes (RoBERTa-likes: depends on the config's pad id).
    max_length, max_length_rule = text_max_length(ttype, tkw, AutoConfig.for_model(ttype, **tkw).pad_token_id)
    # Tokenizer first: the text config's vocab_size must equal the vocabulary length.
    tok, vocab_files, vocab_size, tok_ids = TOKENIZER_BUILDERS[spec["tokenizer"]](cdir, max_length)
    # Special token ids of the text config: the tokenizer's, unless the spec overrides them
    # (clip-legacy's eos_token_id 2). The legacy fixtures keep the config defaults.
    text_kwargs = dict(tkw) if legacy else {**tok_ids, **tkw}
    if ttype in PADDING_OFFSET_POSITIONS:
        assert text_kwargs["pad_token_id"] == tok.pad_token_id, "position ids are computed from the pad id"

    vision_config = AutoConfig.for_model(vtype, **vkw)
    text_config = AutoConfig.for_model(ttype, vocab_size=vocab_size, **text_kwargs)
    if arch == "CLIPModel":
        config = CLIPConfig(text_config=text_config.to_dict(), vision_config=vision_config.to_dict(), **spec["dual"])
    else:
        config = VisionTextDualEncoderConfig.from_vision_text_configs(vision_config, text_config, **spec["dual"])
    model = model_cls(config=config)
    gen = torch.Generator().manual_seed(seed + 1)
    perturb_(model, gen)
    model.eval()
    save_dtype = spec.get("save_dtype", "float32")
    save_kw = {}
    if spec.get("max_shard_size"):
        save_kw["max_shard_size"] = spec["max_shard_size"]
    if save_dtype == "float16":
        model.to(torch.float16)
        # What the reference model holds: the fp16 weights upcast to float32.
        perturbed = {k: v.detach().to(torch.float32).clone() for k, v in model.state_dict().items()}
    else:
        assert save_dtype == "float32", save_dtype
        perturbed = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.save_pretrained(ckpt, **save_kw)
    if spec.get("v4_prefix"):
        rewrite_v4_prefix(ckpt, spec["v4_prefix"])

    ip_cls_name, ip_kw = spec["image_processor"]
    ip_cls = getattr(transformers, ip_cls_name)
    image_processor = ip_cls(**ip_kw)
    assert isinstance(image_processor, PilBackend), f"{ip_cls} is not a PIL-backend image processor"
    if spec["save_processor"] == "combined":
        proc_cls = CLIPProcessor if arch == "CLIPModel" else VisionTextDualEncoderProcessor
        proc_cls(image_processor=image_processor, tokenizer=tok).save_pretrained(ckpt)
    elif spec["save_processor"] == "separate":
        tok.save_pretrained(ckpt)
        image_processor.save_pretrained(ckpt)
    else:
        raise ValueError(spec["save_processor"])
    # transformers 5 writes tokenizer.json + tokenizer_config.json only; published
    # checkpoints also carry the vocabulary files (vocab.txt; vocab.json + merges.txt),
    # so put them in as well.
    for f in vocab_files:
        shutil.move(str(f), ckpt / f.name)
    # The tokenizer.json transformers wrote, kept in memory: checkpoints that drop it
    # (spec "drop_files") must still tokenize identically from their vocabulary files.
    saved_tokenizer_json = (ckpt / "tokenizer.json").read_text(encoding="utf-8")
    for f in spec.get("drop_files", []):
        (ckpt / f).unlink()

    # ---- Reload everything from disk: the reference is what the saved files produce.
    if save_dtype == "float16":
        model = model_cls.from_pretrained(ckpt, dtype=torch.float32)
    else:
        model = model_cls.from_pretrained(ckpt)
    model.eval()
    reloaded = model.state_dict()
    assert set(reloaded) == set(perturbed), set(reloaded) ^ set(perturbed)
    for k, v in perturbed.items():
        assert reloaded[k].dtype == torch.float32 or not v.is_floating_point(), (k, reloaded[k].dtype)
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

    # The tokenizer.json (as saved by transformers) run by the `tokenizers` library alone,
    # text by text, must give transformers' ids: that is what a Rust runtime sees.
    raw = tokenizers.Tokenizer.from_str(saved_tokenizer_json)
    raw.no_padding()
    raw.enable_truncation(max_length)
    for r, t in enumerate(texts):
        n_tok = int(text_inputs["attention_mask"][r].sum())
        got = raw.encode(t).ids
        assert got == text_inputs["input_ids"][r, :n_tok].tolist(), (name, t, got)
        assert (text_inputs["input_ids"][r, n_tok:] == tok.pad_token_id).all()
    assert any(int(m.sum()) == max_length for m in text_inputs["attention_mask"]), "no text was truncated"

    causal = ttype in CAUSAL_TEXT
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

        if causal:
            # CLIP text: a causal mask, pooled at the EOS token, so right padding cannot
            # change the output; check the pooling position instead.
            ids_ = text_inputs["input_ids"]
            eos_cfg = model.config.text_config.eos_token_id
            first_eos = (ids_ == tok.eos_token_id).int().argmax(-1)
            arg = ids_.argmax(-1)
            pos = arg if eos_cfg == 2 else (ids_ == eos_cfg).int().argmax(-1)
            h = text_out[0]
            assert torch.equal(text_features, h[torch.arange(len(pos)), pos]), "pooling position"
            differs = int((arg != first_eos).sum())
            mask_effect = float("nan")
            pooling_check = (
                f"pooled at {'argmax(input_ids)' if eos_cfg == 2 else 'the first eos_token_id'}; "
                f"argmax(input_ids) differs from the first EOS in {differs} of {len(pos)} texts"
            )
            if spec.get("expect_argmax_differs"):
                assert differs > 0, "argmax(input_ids) and the first EOS coincide everywhere"
        else:
            # The perturbation must make the mask and positions matter.
            no_mask = model.text_model(
                **{**text_inputs, "attention_mask": torch.ones_like(text_inputs["attention_mask"])}
            )[1]
            mask_effect = (no_mask - text_features).abs().max().item()
            assert mask_effect > 1e-2, f"attention mask barely matters ({mask_effect})"
            pooling_check = f"attention mask effect on text_features {mask_effect:.3f}"

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
    if legacy:
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
    else:
        saved_type = None
        for pf in PROCESSOR_FILE_NAMES:
            if (ckpt / pf).is_file():
                d = json.loads((ckpt / pf).read_text(encoding="utf-8"))
                saved_type = d.get("image_processor", d).get("image_processor_type")
        dtype_note = (
            f"The checkpoint is saved in float16 and sharded (model.safetensors.index.json); the "
            f"reference model is that checkpoint loaded with from_pretrained(dir, dtype=torch.float32), "
            f"i.e. the float16 weights upcast, and run in float32. "
            if save_dtype == "float16"
            else "The checkpoint is saved in float32. "
        )
        notes = (
            f"Generated by tools/make_fixtures.py with transformers {transformers.__version__}, "
            f"torch {torch.__version__}, in float32, eval mode, torch.no_grad(). {dtype_note}"
            f"Model: {arch}.from_pretrained(checkpoint). "
            f"Image processor class: {ip_class} (the PIL/numpy backend; the saved config names "
            f"{saved_type}), loaded back from the checkpoint with "
            f"AutoImageProcessor.from_pretrained(dir, backend='pil'). "
            f"Images were opened with PIL Image.open(path), unconverted, and processed with "
            f"do_convert_rgb=True passed at call time ({convert_note}). "
            f"transformers' convert_to_rgb composites alpha (RGBA) onto white. "
            f"Tokenizer: {type(tok).__name__} (tokenizers backend) loaded by AutoTokenizer from the "
            f"checkpoint's files ({', '.join(f for f in files if f in TOKENIZER_FILE_NAMES)}), called with "
            f"padding='longest', truncation=True, max_length={max_length} ({max_length_rule}); the "
            f"tokenizer.json transformers saved (deleted from this checkpoint when it is not in the file "
            f"list), run by the tokenizers library alone with truncation at max_length, gives the same "
            f"ids text by text. The text inputs are {list(text_inputs)}. "
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
    if not legacy:
        tc = model.config.text_config
        ref.update(
            {
                "architecture": arch,
                "vision_model_type": model.config.vision_config.model_type,
                "text_model_type": tc.model_type,
                "vision_model_class": type(model.vision_model).__name__,
                "text_model_class": type(model.text_model).__name__,
                "checkpoint_dtype": save_dtype,
                "sharded": (ckpt / "model.safetensors.index.json").is_file(),
                "weight_layout": (
                    "transformers 4 (published checkpoints): "
                    + ", ".join(f"{t}.{t}.*" for t in spec["v4_prefix"])
                    if spec.get("v4_prefix")
                    else "as transformers 5.24 save_pretrained writes it"
                ),
                "tokenizer_files": [f for f in files if f in TOKENIZER_FILE_NAMES],
                "image_processor_file": next(f for f in PROCESSOR_FILE_NAMES if (ckpt / f).is_file()),
                "image_processor_type_saved": saved_type,
                "image_size": list(pixel_values.shape[2:]),
                "max_length_rule": max_length_rule,
                "text_inputs": list(text_inputs),
                "pad_token_id": tok.pad_token_id,
                "tokenizer_eos_token_id": tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id,
                "text_config_eos_token_id": tc.eos_token_id,
                "text_config_pad_token_id": tc.pad_token_id,
                **pooling_notes(model, arch, vtype, ttype, tok_ids),
                "pooling_check": pooling_check,
            }
        )
    if jpeg:
        ref["jpeg_images"] = list(JPEG_NAMES)
    (cdir / "reference.json").write_text(json.dumps(ref, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    if legacy:
        print(f"[{name}] max_length (max_position_embeddings) = {max_length}")
    else:
        print(f"[{name}] {arch}: {ref['vision_model_class']} + {ref['text_model_class']}; max_length {max_length} ({max_length_rule})")
    print(f"[{name}] image processor: {ip_class}; tokenizer: {type(tok).__name__}; vocab {vocab_size}")
    print(f"[{name}] checkpoint files: {files}")
    print(f"[{name}] logit_scale {logit_scale:.4f}; {pooling_check}")
    for k, v in tensors.items():
        if v.is_floating_point():
            print(f"  {k:24s} {str(list(v.shape)):18s} std {v.std().item() if v.numel() > 1 else 0:.3f} max|x| {v.abs().max().item():.3f}")
        else:
            print(f"  {k:24s} {str(list(v.shape)):18s} int64")
    return ref


# (architecture, vision, text, tokenizer files, image processor) per config, for the README.
FIXTURE_DOCS = {
    "vit-bert-tiny": (
        "dual encoder",
        "ViT 32 px, patch 8",
        "BERT, 24 positions",
        "tokenizer.json, vocab.txt",
        "ViT: resize 32x32 bilinear, mean/std 0.5 (`processor_config.json`); 10 images + JPEG",
    ),
    "vit-bert-224": (
        "dual encoder",
        "ViT 224 px, patch 32, no qkv bias",
        "BERT, 40 positions",
        "tokenizer.json, vocab.txt",
        "ViT: resize 224x224 bicubic, CLIP mean/std (`preprocessor_config.json`); 5 images",
    ),
    "deit-roberta": (
        "dual encoder",
        "DeiT 32 px, patch 8 (CLS + distillation token)",
        "RoBERTa, 26 positions, max_length 24",
        "tokenizer.json, vocab.json, merges.txt (byte-level BPE)",
        "DeiT: resize 40x40 bicubic, center crop 32x32, ImageNet mean/std (`preprocessor_config.json`)",
    ),
    "beit-xlm-roberta": (
        "dual encoder",
        "BEiT 32 px, patch 8, relative position bias per layer, layer scale, mean pooling",
        "XLM-RoBERTa, 22 positions, max_length 20",
        "tokenizer.json only (Unigram)",
        "BEiT: resize 40x40 bilinear, center crop 32x32, mean/std 0.5 (`processor_config.json`)",
    ),
    "beit-shared-bert": (
        "dual encoder",
        "BEiT 32 px, patch 8, one shared relative position bias, absolute positions, layer scale, CLS pooling",
        "BERT, 24 positions",
        "tokenizer.json, vocab.txt",
        "BEiT: resize 32x32 bicubic, no crop (`crop_size` saved, `do_center_crop` false), mean/std 0.5",
    ),
    "clip-vision-bert": (
        "dual encoder",
        "`clip_vision_model` 32 px, patch 8 (CLIPVisionModel; weights as `vision_model.vision_model.*`)",
        "BERT, 24 positions",
        "vocab.txt only (no tokenizer.json)",
        "CLIP: shortest edge 32 bicubic, center crop 32x32, CLIP mean/std, convert RGB",
    ),
    "vit-clip-text": (
        "dual encoder",
        "ViT 32 px, patch 8",
        "`clip_text_model`, 20 positions, eos_token_id = `<\\|endoftext\\|>` (the highest id)",
        "vocab.json, merges.txt only (no tokenizer.json)",
        "ViT: resize 32x32 bicubic, CLIP mean/std (`preprocessor_config.json`)",
    ),
    "clip-legacy": (
        "CLIPModel",
        "CLIP vision 32 px, patch 8, hidden 40",
        "CLIP text, 16 positions, legacy `eos_token_id: 2` (pools at argmax(input_ids))",
        "tokenizer.json, vocab.json, merges.txt",
        "CLIP: shortest edge 32, crop 32 (`preprocessor_config.json`)",
    ),
    "clip-modern": (
        "CLIPModel",
        "CLIP vision 56 px, patch 14",
        "CLIP text, 24 positions, eos_token_id 513 = `<\\|endoftext\\|>`, not the highest id",
        "tokenizer.json, vocab.json, merges.txt",
        "CLIP: shortest edge 64, crop 56 (`processor_config.json`)",
    ),
    "sharded-fp16": (
        "dual encoder",
        "ViT 32 px, patch 8",
        "BERT, 24 positions",
        "tokenizer.json, vocab.txt",
        "ViT: resize 32x32 bilinear, mean/std 0.5; weights float16 in 3 shards + index",
    ),
}

FIXTURE_FACTS = [
    "Weight names are the transformers 4 names (transformers 5 renames on load and back on "
    "save): ViT/DeiT/BEiT `vision_model.encoder.layer.N.attention.attention.{query,key,value}`, "
    "`...attention.output.dense`, `...intermediate.dense`, `...output.dense`, "
    "`layernorm_before/after`; DeiT `embeddings.distillation_token`, position_embeddings "
    "[1, patches + 2, D]; BEiT `encoder.layer.N.attention.attention.relative_position_bias."
    "relative_position_bias_table` [(2W-1)^2 + 3, heads] per layer or "
    "`encoder.relative_position_bias.relative_position_bias_table` shared, "
    "`encoder.layer.N.lambda_1/lambda_2` [D], no `key.bias`, and (mean pooling) "
    "`pooler.layernorm.*` with no final `layernorm`; no `relative_position_index` buffer is "
    "saved (published BEiT checkpoints may have one: ignore it).",
    "CLIP towers: `embeddings.class_embedding` [D], `embeddings.patch_embedding.weight` (no "
    "bias), `embeddings.position_embedding.weight`, `pre_layrnorm` (sic), "
    "`encoder.layers.N.self_attn.{q,k,v,out}_proj`, `layer_norm1/2`, `mlp.fc1/fc2`, "
    "`post_layernorm`; text `embeddings.token_embedding`, `final_layer_norm`. In a dual "
    "encoder transformers 5 writes `vision_model.embeddings...` / `text_model.embeddings...` "
    "(as in CLIPModel), but transformers 4 wrote `vision_model.vision_model.*` / "
    "`text_model.text_model.*`, which is what published dual encoders hold: `clip-vision-bert` "
    "has that layout, `vit-clip-text` the flat one; transformers 5 loads both.",
    "Pooled outputs: ViT/DeiT/BERT/RoBERTa/XLM-R `tanh(dense(h[:, 0]))` (DeiT ignores the "
    "distillation token at index 1); BEiT with mean pooling `pooler.layernorm(mean(h[:, 1:]))`, "
    "without it `layernorm(h)[:, 0]`; CLIP vision `post_layernorm(h[:, 0])`; CLIP text "
    "`final_layer_norm(h)[i, p]` with p = argmax(input_ids) when the text config's "
    "eos_token_id is 2, else the first position of eos_token_id.",
    "RoBERTa / XLM-R position ids: `cumsum(input_ids != pad) * (input_ids != pad) + pad` "
    "(from the ids, not the mask), so positions start at pad + 1 = 2 and max_length = "
    "max_position_embeddings - pad - 1. Their tokenizers return no token_type_ids, and the "
    "model adds `token_type_embeddings[0]` (type_vocab_size 1) to every token.",
    "CLIP text has a causal mask plus the padding mask; padding is `<|endoftext|>` (the "
    "tokenizer's pad token), so with right padding the pooled output never sees a pad.",
    "BEiT's relative position bias is added to the attention logits of every head (layer "
    "bias, or the shared one, not both here); index (0, 0) is cls-to-cls, row 0 cls-to-token, "
    "column 0 token-to-cls (the last three table rows).",
    "Tokenizers: transformers rebuilds the normalizer and pre-tokenizer from the class "
    "(RobertaTokenizer, XLMRobertaTokenizer, CLIPTokenizer, BertTokenizer) and takes only the "
    "vocabulary, merges and post-processor from tokenizer.json; for these fixtures the saved "
    "tokenizer.json, run by the tokenizers library alone (truncation at max_length), gives "
    "the recorded ids. Without tokenizer.json, transformers builds the same fast tokenizer "
    "from vocab.txt (BertTokenizer) or vocab.json + merges.txt (CLIPTokenizer). The XLM-R "
    "fixture has no Precompiled normalizer (case is kept; unknown characters become <unk>).",
    "sharded-fp16: the reference is the float16 checkpoint loaded with dtype=torch.float32 "
    "(weights upcast), run in float32.",
]


def write_readme(out_root: Path) -> None:
    lines = [
        "# Test fixtures (generated)",
        "",
        "Everything in this directory is written by `tools/make_fixtures.py`; do not edit it",
        "by hand. Regenerate (deletes and rewrites the whole directory) with:",
        "",
        "```",
        '"$(tools/reference-env.sh)/bin/python" tools/make_fixtures.py',
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
        "  or `CLIPModel` (config.json, model.safetensors, or shards with",
        "  model.safetensors.index.json) with its tokenizer files (see the table below) and",
        "  image processor config: in `processor_config.json` under `image_processor` when saved",
        "  through the combined processor (`VisionTextDualEncoderProcessor`, `CLIPProcessor`),",
        "  else in the legacy `preprocessor_config.json`.",
        "- `<config>/reference.safetensors`: transformers' inputs and outputs, float32 (ids and",
        "  masks int64): `pixel_values`, `input_ids`, `attention_mask`, `token_type_ids`,",
        "  `image_features`, `text_features` (pooled tower outputs), `image_embeds`,",
        "  `text_embeds` (projected, not normalized), `image_embeds_normalized`,",
        "  `text_embeds_normalized`, `logits_per_image`, `logits_per_text`, `loss` (shape [1],",
        "  on the first `loss_n` images and texts); `token_type_ids` only where the tokenizer",
        "  returns them (BERT); `vit-bert-tiny` also has `jpeg_pixel_values`,",
        "  `jpeg_image_features`, `jpeg_image_embeds` for `inputs/jpeg/`.",
        "- `<config>/reference.json`: `images` and `texts` in batch order, `max_length`",
        "  (the longest input the text tower takes, special tokens included; the tokenizer is",
        "  called with `padding='longest', truncation=True, max_length=max_length`), `loss_n`,",
        "  `logit_scale` (the checkpoint's weight), `image_processor_class`, `tokenizer_class`,",
        "  `checkpoint_files`, and `notes` on how the reference was made. The pairing fixtures",
        "  (all but `vit-bert-tiny` and `vit-bert-224`) add: `architecture`",
        "  (`VisionTextDualEncoderModel` or `CLIPModel`), `vision_model_type`,",
        "  `text_model_type`, `vision_model_class`, `text_model_class`, `checkpoint_dtype`,",
        "  `sharded`, `weight_layout`, `tokenizer_files`, `image_processor_file`,",
        "  `image_processor_type_saved`, `image_size`, `max_length_rule`, `text_inputs` (the",
        "  keys the tokenizer returns), `pad_token_id`, `tokenizer_eos_token_id`,",
        "  `text_config_eos_token_id`, `text_config_pad_token_id`, `vision_pooling`,",
        "  `text_pooling` (what `pooler_output` is, in words) and `pooling_check`.",
        "",
        "## The configs",
        "",
        "| config | architecture | vision | text | tokenizer files | image processor |",
        "|---|---|---|---|---|---|",
    ]
    for spec in CONFIGS:
        info = FIXTURE_DOCS[spec["name"]]
        lines.append(f"| `{spec['name']}` | {info[0]} | {info[1]} | {info[2]} | {info[3]} | {info[4]} |")
    lines += [
        "",
        "The pairing fixtures record 4 images (`astronaut`, `chelsea`, `noise_37x53`,",
        "`rgba_40x30`) and all 10 texts; `loss` is on the first 4 of each. Every text tower",
        "truncates the long text. What a re-implementation has to match, as transformers",
        "5.24 does it:",
        "",
    ]
    lines += [f"- {b}" for b in FIXTURE_FACTS]
    lines += [
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
