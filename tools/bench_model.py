#!/usr/bin/env python3
"""Python baselines for `vtde bench model`: the same checkpoint's towers in torch eager,
and in onnxruntime on a `torch.onnx.export` of them, with the same thread count.

    "$(../shared/reference-env.sh)/bin/python" tools/bench_model.py --checkpoint DIR \
        --batch-sizes 1,8,32 --seq-lens 16,77 --repeats 5 --threads 2 --json-out OUT.json

Prints progress to stderr and writes one JSON object: throughput (items per second,
median of the timed runs) per engine, tower and shape. Inputs are random, as vtde's side
uses; only speed is measured here.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np


def median_rate(fn, items, repeats):
    fn()  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return items / float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--seq-lens", default="16,77")
    p.add_argument("--text-batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json-out", required=True)
    a = p.parse_args()

    warnings.filterwarnings("ignore")
    import torch
    import onnxruntime as ort
    import transformers
    from transformers import AutoModel

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    model = AutoModel.from_pretrained(a.checkpoint, dtype=torch.float32).eval()
    vcfg, tcfg = model.config.vision_config, model.config.text_config
    size = vcfg.image_size if isinstance(vcfg.image_size, int) else vcfg.image_size[0]
    rng = np.random.default_rng(0)

    class Vision(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m.vision_model(pixel_values=pixel_values).pooler_output

    class Text(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output

    vision, text = Vision(model).eval(), Text(model).eval()
    batches = [int(b) for b in a.batch_sizes.split(",") if b]
    seqs = [int(s) for s in a.seq_lens.split(",") if s]
    pixels = {b: rng.standard_normal((b, 3, size, size), dtype=np.float32) for b in batches}
    ids = {s: rng.integers(3, min(tcfg.vocab_size, 30000), (a.text_batch, s)) for s in seqs}
    mask = {s: np.ones((a.text_batch, s), dtype=np.int64) for s in seqs}
    out = {"threads": a.threads, "text_batch": a.text_batch, "torch": {"vision": {}, "text": {}},
           "onnxruntime": {"vision": {}, "text": {}},
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "onnxruntime": ort.__version__}}

    with torch.inference_mode():
        for b in batches:
            x = torch.from_numpy(pixels[b])
            out["torch"]["vision"][str(b)] = median_rate(lambda: vision(x), b, a.repeats)
            print(f"torch vision b{b}: {out['torch']['vision'][str(b)]:.1f}/s", file=sys.stderr)
        for s in seqs:
            i, m = torch.from_numpy(ids[s]), torch.from_numpy(mask[s])
            out["torch"]["text"][str(s)] = median_rate(lambda: text(i, m), a.text_batch, a.repeats)
            print(f"torch text {a.text_batch}x{s}: {out['torch']['text'][str(s)]:.1f}/s", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        vpath, tpath = os.path.join(tmp, "vision.onnx"), os.path.join(tmp, "text.onnx")
        with torch.no_grad():
            torch.onnx.export(vision, (torch.from_numpy(pixels[batches[0]]),), vpath,
                              input_names=["pixel_values"], output_names=["image_features"],
                              dynamic_axes={"pixel_values": {0: "batch"}}, opset_version=17, dynamo=False)
            s0 = seqs[0]
            torch.onnx.export(text, (torch.from_numpy(ids[s0]), torch.from_numpy(mask[s0])), tpath,
                              input_names=["input_ids", "attention_mask"], output_names=["text_features"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                            "attention_mask": {0: "batch", 1: "sequence"}},
                              opset_version=17, dynamo=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = a.threads
        opts.inter_op_num_threads = 1
        vs = ort.InferenceSession(vpath, opts, providers=["CPUExecutionProvider"])
        ts = ort.InferenceSession(tpath, opts, providers=["CPUExecutionProvider"])
        for b in batches:
            feed = {"pixel_values": pixels[b]}
            out["onnxruntime"]["vision"][str(b)] = median_rate(lambda: vs.run(None, feed), b, a.repeats)
            print(f"ort vision b{b}: {out['onnxruntime']['vision'][str(b)]:.1f}/s", file=sys.stderr)
        for s in seqs:
            feed = {"input_ids": ids[s], "attention_mask": mask[s]}
            out["onnxruntime"]["text"][str(s)] = median_rate(lambda: ts.run(None, feed), a.text_batch, a.repeats)
            print(f"ort text {a.text_batch}x{s}: {out['onnxruntime']['text'][str(s)]:.1f}/s", file=sys.stderr)
    with open(a.json_out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
