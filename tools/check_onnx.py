#!/usr/bin/env python3
"""Check a vtde model package with the ONNX tools, and optionally against a fixture.

    "$(tools/reference-env.sh)/bin/python" tools/check_onnx.py PACKAGE_DIR \\
        [--reference tests/fixtures/vit-bert-tiny] [--tol 1e-4] [--logits-tol 1e-3]

For each graph named in the package's vtde.json (graphs.vision / text / projection):
  * the file's sha256 against the manifest;
  * onnx.checker.check_model(path, full_check=True) (with shape inference);
  * the default-domain opset against the manifest;
  * it loads in onnxruntime (CPUExecutionProvider), and its inputs and outputs carry the
    contract's names, with a dynamic batch dimension;
  * a smoke run on dummy inputs (batch 2, and batch 0 for the projection graph) that
    checks the output shapes against the manifest's output_dim.

With --reference (a tests/fixtures/<config> directory written by tools/make_fixtures.py)
it also feeds the recorded inputs and prints the max abs diff (and min cosine) of each
output against the recording:
  * vision:     pixel_values -> image_features
  * text:       input_ids, attention_mask, token_type_ids (only those the graph declares)
                -> text_features; plus each text run alone, unpadded (seq = its own
                length), which must give the same features as in the padded batch
  * projection: recorded image_features, text_features -> image_embeds, text_embeds
and, from the projection outputs and the manifest's logit_scale, the normalized
embeddings and both logits matrices. It also runs the package's tokenizer file (the
`tokenizers` library, truncation at text.max_length) on the fixture's texts against the
recorded ids, and compares the manifest's source, image size and preprocessing,
pad_token_id and text inputs with the fixture's reference.json and the checkpoint's
processor config. It exits 1 if any diff is above --tol (logits: --logits-tol), or any
check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

try:
    import onnx
    import onnxruntime as ort
except ImportError as e:  # pragma: no cover
    sys.exit(f"check_onnx.py needs onnx and onnxruntime ({e}); use the reference env")

GRAPH_KEYS = ("vision", "text", "projection")
EXPECTED_IO = {
    # graph: (required inputs, optional inputs, required outputs)
    "vision": (["pixel_values"], [], ["image_features"]),
    "text": (["input_ids", "attention_mask"], ["token_type_ids"], ["text_features"]),
    "projection": (["image_features", "text_features"], [], ["image_embeds", "text_embeds"]),
}
ORT_TO_NP = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def ok(self, msg: str) -> None:
        print(f"  ok    {msg}")

    def fail(self, msg: str) -> None:
        print(f"  FAIL  {msg}")
        self.failures.append(msg)

    def check(self, cond: bool, msg: str) -> bool:
        (self.ok if cond else self.fail)(msg)
        return cond


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_opset(model: onnx.ModelProto) -> int | None:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return None


def load_reference(ref_dir: Path) -> tuple[dict[str, np.ndarray], dict]:
    from safetensors.numpy import load_file

    tensors = load_file(str(ref_dir / "reference.safetensors"))
    meta = json.loads((ref_dir / "reference.json").read_text(encoding="utf-8"))
    return tensors, meta


def cast_feeds(sess: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for i in sess.get_inputs():
        if i.name in feeds:
            dt = ORT_TO_NP.get(i.type)
            out[i.name] = np.ascontiguousarray(feeds[i.name].astype(dt) if dt is not None else feeds[i.name])
    return out


def run(sess: ort.InferenceSession, outputs: list[str], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    res = sess.run(outputs, cast_feeds(sess, feeds))
    return {name: np.asarray(v, dtype=np.float32) for name, v in zip(outputs, res)}


def compare(rep: Report, label: str, got: np.ndarray, want: np.ndarray, tol: float) -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        rep.fail(f"{label}: shape {list(got.shape)} != reference {list(want.shape)}")
        return
    if got.size == 0:
        rep.ok(f"{label}: empty, shape {list(got.shape)}")
        return
    if not np.isfinite(got).all():
        rep.fail(f"{label}: non-finite values")
        return
    diff = float(np.max(np.abs(got - want)))
    cos = ""
    if got.ndim == 2:
        num = np.sum(got * want, axis=1)
        den = np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(den > 0, num / np.where(den > 0, den, 1), 1.0)
        cos = f", min cosine {float(np.min(c)):.7f}"
    rep.check(diff <= tol, f"{label}: max abs diff {diff:.3e} (tol {tol:g}){cos}")


def dim_repr(d) -> str:
    return str(d) if d is not None else "?"


def check_graph(rep: Report, key: str, pkg: Path, entry: dict) -> ort.InferenceSession | None:
    path = pkg / entry["file"]
    print(f"[{key}] {path}")
    if not rep.check(path.is_file(), "file exists"):
        return None

    want_sha = entry.get("sha256")
    if want_sha is not None:
        got_sha = sha256(path)
        if got_sha == want_sha.lower():
            rep.ok(f"sha256 {got_sha[:16]}... matches the manifest")
        else:
            rep.fail(f"sha256 {got_sha} differs from the manifest's {want_sha}")

    try:
        onnx.checker.check_model(str(path), full_check=True)
        rep.ok("onnx.checker.check_model(full_check=True)")
    except Exception as e:  # noqa: BLE001
        rep.fail(f"onnx.checker: {type(e).__name__}: {e}")

    try:
        model = onnx.load(str(path), load_external_data=False)
        ops = default_opset(model)
        if "opset" in entry:
            rep.check(ops == entry["opset"], f"default-domain opset {ops} (manifest {entry['opset']})")
        n_nodes = len(model.graph.node)
        n_init = len(model.graph.initializer)
        print(f"        ir_version {model.ir_version}, opset {ops}, {n_nodes} nodes, {n_init} initializers")
        del model
    except Exception as e:  # noqa: BLE001
        rep.fail(f"onnx.load: {type(e).__name__}: {e}")

    try:
        so = ort.SessionOptions()
        sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        rep.ok("loads in onnxruntime (CPUExecutionProvider)")
    except Exception as e:  # noqa: BLE001
        rep.fail(f"onnxruntime load: {type(e).__name__}: {e}")
        return None

    req_in, opt_in, req_out = EXPECTED_IO[key]
    ins = {i.name: i for i in sess.get_inputs()}
    outs = {o.name: o for o in sess.get_outputs()}
    for i in sess.get_inputs():
        print(f"        input  {i.name}: {i.type} [{', '.join(dim_repr(d) for d in i.shape)}]")
    for o in sess.get_outputs():
        print(f"        output {o.name}: {o.type} [{', '.join(dim_repr(d) for d in o.shape)}]")
    for name in req_in:
        rep.check(name in ins, f"declares input {name}")
    extra = set(ins) - set(req_in) - set(opt_in)
    rep.check(not extra, f"no unexpected inputs{'' if not extra else ': ' + ', '.join(sorted(extra))}")
    for name in req_out:
        rep.check(name in outs, f"declares output {name}")
    for name, i in ins.items():
        if i.shape:
            rep.check(not isinstance(i.shape[0], int), f"input {name}: batch dimension is dynamic ({i.shape[0]})")
    return sess


def smoke(rep: Report, key: str, sess: ort.InferenceSession, manifest: dict) -> None:
    """Run on dummy inputs; check output shapes against the manifest's output_dims."""
    g = manifest["graphs"]
    try:
        if key == "vision":
            h, w = manifest["image"]["height"], manifest["image"]["width"]
            x = np.random.default_rng(0).uniform(-1, 1, size=(2, 3, h, w)).astype(np.float32)
            out = run(sess, ["image_features"], {"pixel_values": x})
            rep.check(
                out["image_features"].shape == (2, g["vision"]["output_dim"]),
                f"smoke: image_features shape {list(out['image_features'].shape)} for batch 2",
            )
        elif key == "text":
            ids = np.array([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]], dtype=np.int64)
            mask = (np.arange(5)[None, :] < np.array([[5], [3]])).astype(np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out = run(sess, ["text_features"], feeds)
            rep.check(
                out["text_features"].shape == (2, g["text"]["output_dim"]),
                f"smoke: text_features shape {list(out['text_features'].shape)} for batch 2 x 5 tokens",
            )
        elif key == "projection":
            dv, dt, p = g["vision"]["output_dim"], g["text"]["output_dim"], g["projection"]["output_dim"]
            rng = np.random.default_rng(0)
            for n, m in ((2, 3), (0, 3), (2, 0)):
                feeds = {
                    "image_features": rng.standard_normal((n, dv)).astype(np.float32),
                    "text_features": rng.standard_normal((m, dt)).astype(np.float32),
                }
                out = run(sess, ["image_embeds", "text_embeds"], feeds)
                rep.check(
                    out["image_embeds"].shape == (n, p) and out["text_embeds"].shape == (m, p),
                    f"smoke: projection with n={n}, m={m} gives "
                    f"{list(out['image_embeds'].shape)}, {list(out['text_embeds'].shape)}",
                )
    except Exception as e:  # noqa: BLE001
        rep.fail(f"smoke run: {type(e).__name__}: {e}")


def l2n(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def processor_config(ref_dir: Path) -> dict | None:
    """The checkpoint's image processor config: processor_config.json["image_processor"]
    or the legacy preprocessor_config.json."""
    ckpt = ref_dir / "checkpoint"
    p = ckpt / "processor_config.json"
    if p.is_file():
        d = json.loads(p.read_text(encoding="utf-8"))
        if "image_processor" in d:
            return d["image_processor"]
    p = ckpt / "preprocessor_config.json"
    if p.is_file():
        return json.loads(p.read_text(encoding="utf-8"))
    return None


PIL_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def check_manifest_fields(rep: Report, manifest: dict, meta: dict, ref: dict[str, np.ndarray]) -> None:
    """The manifest's source, image and text sections against the fixture (fields of the
    extended reference.json, and the checkpoint's processor config), where both have them."""
    src = manifest.get("source", {})
    for key in ("architecture", "vision_model_type", "text_model_type"):
        if key in meta and key in src:
            rep.check(src[key] == meta[key], f"manifest source.{key} {src[key]!r} == {meta[key]!r}")
    img = manifest.get("image", {})
    if "height" in img and "width" in img:
        hw = list(ref["pixel_values"].shape[2:])
        rep.check([img["height"], img["width"]] == hw, f"manifest image {img['height']}x{img['width']} == pixel_values {hw}")
    txt = manifest.get("text", {})
    if "pad_token_id" in txt and "pad_token_id" in meta:
        rep.check(
            txt["pad_token_id"] == meta["pad_token_id"],
            f"manifest text.pad_token_id {txt['pad_token_id']} == tokenizer's {meta['pad_token_id']}",
        )
    if "inputs" in txt and "text_inputs" in meta:
        extra = sorted(set(txt["inputs"]) - set(meta["text_inputs"]))
        missing = sorted(set(meta["text_inputs"]) - set(txt["inputs"]))
        note = f" (the graph also takes {extra}; the tokenizer gives none)" if extra else ""
        rep.check(not missing, f"manifest text.inputs {txt['inputs']} cover the tokenizer's {meta['text_inputs']}{note}")

    ip = meta.get("_processor_config")
    if ip is None or not img:
        return
    # resize
    if "resize" in img and "size" in ip:  # (a config without `size` uses the class default: not checked)
        want = None
        if ip.get("do_resize", True):
            size = ip["size"]
            rule = (
                {"kind": "exact", "height": size["height"], "width": size["width"]}
                if "height" in size
                else {"kind": "shortest_edge", "shortest_edge": size.get("shortest_edge")}
            )
            want = {"rule": rule}
            if "resample" in ip:
                want["filter"] = PIL_FILTERS.get(ip["resample"])
        got = img["resize"]
        if got is not None and want is not None and "filter" not in want:
            got = {k: v for k, v in got.items() if k != "filter"}
        rep.check(got == want, f"manifest image.resize {img['resize']} == processor's {want}")
    if "center_crop" in img:
        want = None
        if ip.get("do_center_crop") and "crop_size" in ip:
            want = {"height": ip["crop_size"]["height"], "width": ip["crop_size"]["width"]}
        rep.check(
            img["center_crop"] == want,
            f"manifest image.center_crop {img['center_crop']} == processor's {want} "
            f"(do_center_crop={ip.get('do_center_crop')}, crop_size={ip.get('crop_size')})",
        )
    if "rescale_factor" in img:
        want = ip.get("rescale_factor") if ip.get("do_rescale", True) else None
        ok = (img["rescale_factor"] is None) == (want is None) and (
            want is None or abs(img["rescale_factor"] - want) <= 1e-9
        )
        rep.check(ok, f"manifest image.rescale_factor {img['rescale_factor']} == processor's {want}")
    if "normalize" in img:
        want = {"mean": ip.get("image_mean"), "std": ip.get("image_std")} if ip.get("do_normalize", True) else None
        got = img["normalize"]
        ok = (got is None) == (want is None) and (
            want is None
            or np.allclose(got["mean"], want["mean"], atol=1e-6) and np.allclose(got["std"], want["std"], atol=1e-6)
        )
        rep.check(ok, f"manifest image.normalize {got} == processor's {want}")


def check_tokenizer(rep: Report, pkg: Path, manifest: dict, ref: dict[str, np.ndarray], meta: dict) -> None:
    """The package's tokenizer.json, run by the `tokenizers` library on the fixture's
    texts with truncation at text.max_length, against the recorded ids and masks."""
    txt = manifest.get("text", {})
    if "tokenizer" not in txt:
        return
    path = pkg / txt["tokenizer"]
    print(f"[tokenizer] {path}")
    try:
        import tokenizers

        tok = tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001
        rep.fail(f"tokenizer: cannot load {path}: {type(e).__name__}: {e}")
        return
    tok.no_padding()
    tok.enable_truncation(int(txt.get("max_length", meta["max_length"])))
    ids, mask = ref["input_ids"], ref["attention_mask"]
    bad = []
    for r, t in enumerate(meta["texts"]):
        n = int(mask[r].sum())
        enc = tok.encode(t)
        if enc.ids != ids[r, :n].tolist():
            bad.append((r, enc.ids, ids[r, :n].tolist()))
    rep.check(not bad, f"tokenizer: ids of all {len(meta['texts'])} texts equal the recorded ones (truncated at max_length)")
    for r, got, want in bad[:3]:
        print(f"        text {r} {meta['texts'][r][:40]!r}: got {got}, want {want}")
    if "pad_token_id" in txt:
        pads = ids[mask == 0]
        rep.check(
            bool(np.all(pads == txt["pad_token_id"])),
            f"tokenizer: recorded padding is text.pad_token_id ({txt['pad_token_id']})",
        )


def against_reference(
    rep: Report,
    sessions: dict[str, ort.InferenceSession],
    manifest: dict,
    ref: dict[str, np.ndarray],
    meta: dict,
    tol: float,
    logits_tol: float,
) -> None:
    print(f"[reference] {len(meta['images'])} images, {len(meta['texts'])} texts, max_length {meta['max_length']}")
    if "max_length" in manifest.get("text", {}):
        rep.check(
            manifest["text"]["max_length"] == meta["max_length"],
            f"manifest text.max_length {manifest['text']['max_length']} == reference {meta['max_length']}",
        )
    if "logit_scale" in meta:
        rep.check(
            abs(float(manifest["logit_scale"]) - float(meta["logit_scale"])) <= 1e-6,
            f"manifest logit_scale {manifest['logit_scale']} == checkpoint's {meta['logit_scale']:.7f}",
        )
    if "projection_dim" in manifest:
        rep.check(
            manifest["projection_dim"] == ref["image_embeds"].shape[1],
            f"manifest projection_dim {manifest['projection_dim']} == {ref['image_embeds'].shape[1]}",
        )
    check_manifest_fields(rep, manifest, meta, ref)

    if "vision" in sessions:
        try:
            pv = ref["pixel_values"]
            out = run(sessions["vision"], ["image_features"], {"pixel_values": pv})
            compare(rep, "vision: image_features", out["image_features"], ref["image_features"], tol)
            one = run(sessions["vision"], ["image_features"], {"pixel_values": pv[-1:]})
            compare(rep, "vision: last image alone (batch 1)", one["image_features"], ref["image_features"][-1:], tol)
            if "jpeg_pixel_values" in ref:
                j = run(sessions["vision"], ["image_features"], {"pixel_values": ref["jpeg_pixel_values"]})
                compare(rep, "vision: jpeg_image_features", j["image_features"], ref["jpeg_image_features"], tol)
        except Exception as e:  # noqa: BLE001
            rep.fail(f"vision run: {type(e).__name__}: {e}")

    if "text" in sessions:
        try:
            sess = sessions["text"]
            declared = [i.name for i in sess.get_inputs()]
            feeds = {k: ref[k] for k in declared if k in ref}
            if "token_type_ids" in declared and "token_type_ids" not in ref:
                # The tokenizer gives none (RoBERTa, XLM-R): transformers then uses zeros.
                feeds["token_type_ids"] = np.zeros_like(ref["input_ids"])
                print("        (the tokenizer gives no token_type_ids; feeding zeros, as transformers does)")
            missing = [k for k in declared if k not in feeds]
            if missing:
                rep.fail(f"text graph declares inputs the reference lacks: {missing}")
            else:
                manifest_inputs = manifest.get("text", {}).get("inputs")
                if manifest_inputs is not None:
                    rep.check(
                        sorted(manifest_inputs) == sorted(declared),
                        f"manifest text.inputs {manifest_inputs} == graph inputs {declared}",
                    )
                if "token_type_ids" not in declared and "token_type_ids" in ref:
                    nz = int(np.count_nonzero(ref["token_type_ids"]))
                    rep.check(nz == 0, f"graph takes no token_type_ids and the recorded ones are all 0 ({nz} nonzero)")
                out = run(sess, ["text_features"], feeds)
                compare(rep, "text: text_features", out["text_features"], ref["text_features"], tol)
                # Each text alone, at its own length: padding must not matter.
                lengths = ref["attention_mask"].sum(axis=1).astype(int)
                got_rows = []
                for r, n in enumerate(lengths):
                    f1 = {k: v[r : r + 1, :n] for k, v in feeds.items()}
                    got_rows.append(run(sess, ["text_features"], f1)["text_features"][0])
                compare(
                    rep,
                    "text: each text alone, unpadded",
                    np.stack(got_rows),
                    ref["text_features"],
                    tol,
                )
        except Exception as e:  # noqa: BLE001
            rep.fail(f"text run: {type(e).__name__}: {e}")

    if "projection" in sessions:
        try:
            feeds = {"image_features": ref["image_features"], "text_features": ref["text_features"]}
            out = run(sessions["projection"], ["image_embeds", "text_embeds"], feeds)
            compare(rep, "projection: image_embeds", out["image_embeds"], ref["image_embeds"], tol)
            compare(rep, "projection: text_embeds", out["text_embeds"], ref["text_embeds"], tol)
            img_n, txt_n = l2n(out["image_embeds"]), l2n(out["text_embeds"])
            compare(rep, "derived: image_embeds_normalized", img_n, ref["image_embeds_normalized"], tol)
            compare(rep, "derived: text_embeds_normalized", txt_n, ref["text_embeds_normalized"], tol)
            scale = float(np.exp(np.float64(manifest["logit_scale"])))
            lpt = scale * txt_n @ img_n.T
            compare(rep, "derived: logits_per_text", lpt, ref["logits_per_text"], logits_tol)
            compare(rep, "derived: logits_per_image", lpt.T, ref["logits_per_image"], logits_tol)
            if "loss" in ref and "loss_n" in meta:
                n = int(meta["loss_n"])
                sub = lpt[:n, :n]

                def ce(logits: np.ndarray) -> float:
                    m = logits.max(axis=1, keepdims=True)
                    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
                    return float(np.mean(lse - np.diag(logits)))

                loss = np.array([(ce(sub) + ce(sub.T)) / 2.0])
                compare(rep, f"derived: loss (first {n})", loss, ref["loss"], logits_tol)
            # The projection alone, on zero rows of one side.
            z = run(
                sessions["projection"],
                ["image_embeds", "text_embeds"],
                {"image_features": ref["image_features"][:0], "text_features": ref["text_features"]},
            )
            compare(rep, "projection: text_embeds with 0 images", z["text_embeds"], ref["text_embeds"], tol)
        except Exception as e:  # noqa: BLE001
            rep.fail(f"projection run: {type(e).__name__}: {e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", type=Path, help="package directory (holds vtde.json)")
    ap.add_argument("--reference", type=Path, help="a tests/fixtures/<config> directory")
    ap.add_argument("--tol", type=float, default=1e-4, help="max abs diff for features/embeddings (default 1e-4)")
    ap.add_argument("--logits-tol", type=float, default=1e-3, help="max abs diff for logits and loss (default 1e-3)")
    args = ap.parse_args()

    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    manifest_path = args.package / "vtde.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001
        print(f"cannot read {manifest_path}: {e}")
        return 1
    print(f"package {args.package}: format_version {manifest.get('format_version')}, source {manifest.get('source')}")

    rep = Report()
    sessions: dict[str, ort.InferenceSession] = {}
    graphs = manifest.get("graphs", {})
    for key in GRAPH_KEYS:
        if key not in graphs:
            rep.fail(f"vtde.json has no graphs.{key}")
            continue
        sess = check_graph(rep, key, args.package, graphs[key])
        if sess is not None:
            smoke(rep, key, sess, manifest)
            sessions[key] = sess

    if args.reference is not None:
        try:
            ref, meta = load_reference(args.reference)
        except Exception as e:  # noqa: BLE001
            rep.fail(f"cannot read reference {args.reference}: {type(e).__name__}: {e}")
        else:
            meta["_processor_config"] = processor_config(args.reference)
            check_tokenizer(rep, args.package, manifest, ref, meta)
            against_reference(rep, sessions, manifest, ref, meta, args.tol, args.logits_tol)

    if rep.failures:
        print(f"\n{len(rep.failures)} check(s) failed:")
        for f in rep.failures:
            print(f"  - {f}")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
