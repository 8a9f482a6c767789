#!/usr/bin/env python3
"""transformers' side of `vtde compose`: builds source checkpoints in the layouts
transformers saves (base models, task models without a pooler, CLIP, a
sentence-transformers folder), runs `vtde compose` on them, loads each result with
`VisionTextDualEncoderModel.from_pretrained(..., output_loading_info=True)`, fails on any
missing, unexpected or mismatched key, and records transformers' outputs on fixed inputs
as tests/fixtures/compose/<case>/. The Rust test (tests/compose.rs) composes the same
sources again, checks that it writes the very bytes transformers loaded (sha256), exports
them and compares vtde's outputs with the recording.

    cargo build -p vtde-cli
    PY="$(tools/reference-env.sh)/bin/python"
    "$PY" tools/compose_check.py [--vtde target/debug/vtde]

The sources are cut from the fixture checkpoints of tools/make_fixtures.py (tiny random
towers) with transformers itself: e.g. `model.vision_model.save_pretrained(...)` gives a
ViTModel checkpoint, and ViTForImageClassification / BertForMaskedLM checkpoints are built
from those weights (they have no pooler: compose initialises the one the dual encoder
uses, and transformers must then find nothing missing). Per case:
- vision/, text/: the sources (a case with one source for both has only vision/; the
  dual-encoder case takes the towers of two fixture checkpoints where they are);
- compose.json: the compose arguments, the sha256 of the model.safetensors transformers
  loaded, its loading info (all lists empty), what compose printed;
- reference.json + reference.safetensors: inputs (pixel_values from the composed
  checkpoint's image processor, token ids from its tokenizer) and outputs
  (image_embeds_normalized, text_embeds_normalized, logits_per_image), as the other
  fixtures record them.

It also writes tests/fixtures/fit-checkpoint/: the demo's towers composed and fitted by
`vtde fit` on the eight images of models/examples (pairs.csv, captions from the file
names), loaded by transformers (fit.json: the arguments and the loading info, all lists
empty) and its outputs on those images and six labels (reference.*). The Rust test
(crates/vtde-cli/tests/fit.rs) runs the same two commands and compares the fitted
package's outputs with transformers'.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    BertForMaskedLM,
    CLIPVisionModel,
    ViTForImageClassification,
    VisionTextDualEncoderModel,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "compose"
IMAGES = ["astronaut.png", "coffee.png", "chelsea.png", "rgba_40x30.png"]
TEXTS = ["a photo of a cat", "A DOG playing in the snow.", "un café très chaud", "x"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt",
                   "special_tokens_map.json", "sentencepiece.bpe.model"]


def copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)


def copy_processor(src: Path, dst: Path) -> None:
    for name in ["processor_config.json", "preprocessor_config.json"]:
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)


def dual(name: str) -> VisionTextDualEncoderModel:
    return VisionTextDualEncoderModel.from_pretrained(FIXTURES / name / "checkpoint")


def vit_model(dst: Path) -> None:
    model = dual("vit-bert-tiny")
    model.vision_model.save_pretrained(dst)
    copy_processor(FIXTURES / "vit-bert-tiny/checkpoint", dst)


def bert_model(dst: Path) -> None:
    model = dual("vit-bert-tiny")
    model.text_model.save_pretrained(dst)
    copy_tokenizer(FIXTURES / "vit-bert-tiny/checkpoint", dst)


def vit_for_classification(dst: Path) -> None:
    vision = dual("vit-bert-tiny").vision_model
    config = vision.config
    config.num_labels = 3
    model = ViTForImageClassification(config)
    state = {k: v for k, v in vision.state_dict().items() if not k.startswith("pooler.")}
    missing, unexpected = model.vit.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model.save_pretrained(dst)
    copy_processor(FIXTURES / "vit-bert-tiny/checkpoint", dst)


def bert_for_masked_lm(dst: Path) -> None:
    text = dual("vit-bert-tiny").text_model
    model = BertForMaskedLM(text.config)
    state = {k: v for k, v in text.state_dict().items() if not k.startswith("pooler.")}
    missing, unexpected = model.bert.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model.save_pretrained(dst)
    copy_tokenizer(FIXTURES / "vit-bert-tiny/checkpoint", dst)


def clip_vision(dst: Path) -> None:
    model = dual("clip-vision-bert").vision_model
    assert isinstance(model, CLIPVisionModel)
    model.save_pretrained(dst)
    copy_processor(FIXTURES / "clip-vision-bert/checkpoint", dst)


def roberta(dst: Path) -> None:
    dual("deit-roberta").text_model.save_pretrained(dst)
    copy_tokenizer(FIXTURES / "deit-roberta/checkpoint", dst)


def clip_model(dst: Path) -> None:
    shutil.copytree(FIXTURES / "clip-modern/checkpoint", dst, dirs_exist_ok=True)


def beit(dst: Path) -> None:
    dual("beit-xlm-roberta").vision_model.save_pretrained(dst)
    copy_processor(FIXTURES / "beit-xlm-roberta/checkpoint", dst)


def xlmr_sentence_transformers(dst: Path) -> None:
    """A sentence-transformers folder: the Transformer module at the root, a pooling
    module beside it, modules.json listing both."""
    dual("beit-xlm-roberta").text_model.save_pretrained(dst)
    copy_tokenizer(FIXTURES / "beit-xlm-roberta/checkpoint", dst)
    (dst / "1_Pooling").mkdir()
    (dst / "1_Pooling/config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}))
    (dst / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))


# name -> (vision builder, text builder or None for "the vision source", compose args)
CASES = {
    "vit-bert": (vit_model, bert_model, ["--projection-dim", "16", "--seed", "1"]),
    "vit-classifier-bert-mlm": (vit_for_classification, bert_for_masked_lm, ["--projection-dim", "24", "--seed", "2"]),
    "clip-vision-roberta": (clip_vision, roberta, ["--projection-dim", "16", "--seed", "3", "--logit-scale", "3.0"]),
    "clip-clip": (clip_model, None, ["--projection-dim", "8", "--seed", "4"]),
    "beit-xlmr-sentence-transformers": (beit, xlmr_sentence_transformers, ["--projection-dim", "16", "--seed", "5"]),
    # The towers of two dual encoders (a transformers 4 layout with a CLIP vision tower,
    # vision_model.vision_model.*), taken from the fixture checkpoints where they are.
    "dual-encoder-towers": ("clip-vision-bert/checkpoint", "vit-bert-tiny/checkpoint", ["--projection-dim", "16", "--seed", "6"]),
}


def record(case: str, composed: Path, dst: Path) -> None:
    model, info = VisionTextDualEncoderModel.from_pretrained(composed, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"{case}: transformers reports {problems}")
    model.eval()
    processor = AutoImageProcessor.from_pretrained(composed, backend="pil")
    tokenizer = AutoTokenizer.from_pretrained(composed)
    images = [Image.open(FIXTURES / "inputs/images" / name) for name in IMAGES]
    # As tools/make_fixtures.py: transformers' own convert_to_rgb (alpha onto white) at
    # call time, since ViT's processor config has no do_convert_rgb.
    pixel_values = processor(images=images, return_tensors="pt", do_convert_rgb=True)["pixel_values"]
    max_length = model.config.text_config.max_position_embeddings
    if model.config.text_config.model_type in ("roberta", "xlm-roberta"):
        max_length -= 2
    tokens = tokenizer(TEXTS, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values=pixel_values, input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                    token_type_ids=tokens.get("token_type_ids"), return_loss=True)
    tensors = {
        "pixel_values": pixel_values.numpy().astype("<f4"),
        "input_ids": tokens["input_ids"].numpy().astype("<i8"),
        "attention_mask": tokens["attention_mask"].numpy().astype("<i8"),
        "image_embeds_normalized": out.image_embeds.numpy().astype("<f4"),
        "text_embeds_normalized": out.text_embeds.numpy().astype("<f4"),
        "logits_per_image": out.logits_per_image.numpy().astype("<f4"),
        "loss": out.loss.reshape(1).numpy().astype("<f4"),
    }
    if "token_type_ids" in tokens:
        tensors["token_type_ids"] = tokens["token_type_ids"].numpy().astype("<i8")
    # C order: logits_per_image is a transposed view, and save_file writes memory as it is.
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, dst / "reference.safetensors")
    (dst / "reference.json").write_text(json.dumps(
        {"images": IMAGES, "texts": TEXTS, "max_length": max_length, "loss_n": len(IMAGES)}, indent=2) + "\n")
    return {k: list(v) for k, v in info.items()}


FIT_OUT = FIXTURES / "fit-checkpoint"
EXAMPLES = ROOT / "models" / "examples"
FIT_LABELS = ["a red circle", "a blue square", "a green triangle", "a yellow star", "a purple cross", "a blue triangle"]
FIT_COMPOSE_ARGS = ["--projection-dim", "32", "--seed", "0"]
FIT_ARGS = ["--epochs", "20", "--batch-size", "8", "--lr", "0.01", "--val", "0", "--seed", "0"]


def fitted_case(vtde: str) -> None:
    """`vtde fit`'s output is a checkpoint transformers loads too: the demo's towers
    composed, fitted on the eight example images (captions from their names), loaded
    with output_loading_info, and its outputs recorded on those images and six labels."""
    if FIT_OUT.exists():
        shutil.rmtree(FIT_OUT)
    FIT_OUT.mkdir(parents=True)
    rows = ["image,caption"]
    for path in sorted(EXAMPLES.glob("*.png")):
        words = path.stem.split("_on_")[0].split("_")
        rows.append(f"../../../models/examples/{path.name},a {' '.join(words)}")
    (FIT_OUT / "pairs.csv").write_text("\n".join(rows) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        composed, fitted = Path(tmp) / "composed", Path(tmp) / "fitted"
        demo = ROOT / "models" / "demo-checkpoint"
        for cmd in (
            [vtde, "compose", "--vision", str(demo), "--text", str(demo), "-o", str(composed), *FIT_COMPOSE_ARGS],
            [vtde, "fit", str(composed), "--pairs", str(FIT_OUT / "pairs.csv"), "-o", str(fitted), "--cache", str(Path(tmp) / "cache"), *FIT_ARGS],
        ):
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"fit-checkpoint: {cmd[1]} failed: {run.stderr}")
        model, info = VisionTextDualEncoderModel.from_pretrained(fitted, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v}
        if problems:
            raise SystemExit(f"fit-checkpoint: transformers reports {problems}")
        processor = AutoImageProcessor.from_pretrained(fitted, backend="pil")
        tokenizer = AutoTokenizer.from_pretrained(fitted)
        names = [p.name for p in sorted(EXAMPLES.glob("*.png"))]
        pixel_values = processor(images=[Image.open(EXAMPLES / n) for n in names], return_tensors="pt",
                                 do_convert_rgb=True)["pixel_values"]
        max_length = model.config.text_config.max_position_embeddings
        tokens = tokenizer(FIT_LABELS, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            out = model(pixel_values=pixel_values, **tokens)
        tensors = {
            "pixel_values": pixel_values.numpy().astype("<f4"),
            "input_ids": tokens["input_ids"].numpy().astype("<i8"),
            "attention_mask": tokens["attention_mask"].numpy().astype("<i8"),
            "token_type_ids": tokens["token_type_ids"].numpy().astype("<i8"),
            "image_embeds_normalized": out.image_embeds.numpy().astype("<f4"),
            "text_embeds_normalized": out.text_embeds.numpy().astype("<f4"),
            "logits_per_image": out.logits_per_image.numpy().astype("<f4"),
        }
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, FIT_OUT / "reference.safetensors")
        (FIT_OUT / "reference.json").write_text(json.dumps(
            {"images": names, "texts": FIT_LABELS, "max_length": max_length, "loss_n": len(names)}, indent=2) + "\n")
        (FIT_OUT / "fit.json").write_text(json.dumps({
            "compose_args": FIT_COMPOSE_ARGS,
            "fit_args": FIT_ARGS,
            "transformers_loading_info": {k: list(v) for k, v in info.items()},
            "logit_scale": float(model.logit_scale.detach()),
        }, indent=2) + "\n")
    print("fit-checkpoint: the fitted checkpoint loads with no missing/unexpected/mismatched keys")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vtde", default=str(ROOT / "target/debug/vtde"))
    args = parser.parse_args()
    torch.manual_seed(0)
    if OUT.exists():
        shutil.rmtree(OUT)
    for case, (vision_builder, text_builder, compose_args) in CASES.items():
        dst = OUT / case
        dst.mkdir(parents=True)
        if isinstance(vision_builder, str):
            vision_dir, text_dir = FIXTURES / vision_builder, FIXTURES / text_builder
        else:
            vision_dir = dst / "vision"
            vision_dir.mkdir()
            vision_builder(vision_dir)
            text_dir = vision_dir
            if text_builder is not None:
                text_dir = dst / "text"
                text_dir.mkdir()
                text_builder(text_dir)
        with tempfile.TemporaryDirectory() as tmp:
            composed = Path(tmp) / "composed"
            cmd = [args.vtde, "compose", "--vision", str(vision_dir), "--text", str(text_dir), "-o", str(composed), *compose_args]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"{case}: vtde compose failed: {run.stderr}")
            digest = hashlib.sha256((composed / "model.safetensors").read_bytes()).hexdigest()
            info = record(case, composed, dst)
        (dst / "compose.json").write_text(json.dumps({
            "args": compose_args,
            "vision": str(vision_dir.relative_to(FIXTURES)),
            "text": str(text_dir.relative_to(FIXTURES)),
            "model_safetensors_sha256": digest,
            "transformers_loading_info": info,
            "compose_stderr": [line.replace(str(FIXTURES), "tests/fixtures").replace(tmp, "<tmp>") for line in run.stderr.splitlines()],
        }, indent=2) + "\n")
        print(f"{case}: loads with no missing/unexpected/mismatched keys; {run.stderr.count('initialised')} initialised line(s)")
    fitted_case(args.vtde)


if __name__ == "__main__":
    main()
