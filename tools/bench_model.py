#!/usr/bin/env python3
"""Python baselines for `vtde bench model`: a checkpoint's towers and projection head in
torch eager, and in onnxruntime on a `torch.onnx.export` of them, with the same threads.

    "$(tools/reference-env.sh)/bin/python" tools/bench_model.py --serve \
        --checkpoint DIR --batch-sizes 1,8,32 --seq-lens 16,77 --threads 2

`vtde bench model --checkpoint DIR --python PY` starts it, with `--export-dir`: the
torch-exported graphs are written there as vision.onnx, text.onnx (with the text inputs
that `--text-inputs` names, as vtde's package) and projection.onnx, so that vtde can also
run them in its own runtime. After loading and exporting, it prints {"ready": true} on
stdout, then answers each request line on stdin,
{"engine": "torch"|"onnxruntime", "graph": "vision"|"text"|"head", "size": N,
"repeats": R}, with {"rate": items per second}: the median of R timed runs after one
warm-up run. It exits at end of input. Progress goes to stderr. Serving lets vtde
interleave its measurements with these, so that the ratios compare neighbouring
measurements on a machine whose speed drifts. Inputs are random, as vtde's side uses;
only speed is measured.
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np


# Shortest timed sample, as in vtde's bench: faster workloads repeat within a sample.
MIN_SAMPLE_SECONDS = 0.05


def median_rate(fn, items, repeats):
    t = time.perf_counter()
    fn()  # warm-up: allocations, kernel selection
    once = max(time.perf_counter() - t, 1e-7)
    inner = min(max(int(np.ceil(MIN_SAMPLE_SECONDS / once)), 1), 100_000)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append(time.perf_counter() - t)
    return items * inner / float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--serve", action="store_true", required=True,
                   help="answer measurement requests on stdin (the only mode)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--seq-lens", default="16,77")
    p.add_argument("--text-batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--export-dir", required=True, help="where the torch-exported graphs go")
    p.add_argument("--text-inputs", default="input_ids,attention_mask",
                   help="inputs of the exported text graph (token_type_ids where the package has it)")
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

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.m.text_model(input_ids=input_ids, attention_mask=attention_mask, **extra).pooler_output

    class Head(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, image_features, text_features):
            return self.m.visual_projection(image_features), self.m.text_projection(text_features)

    vision, text, head = Vision(model).eval(), Text(model).eval(), Head(model).eval()
    batches = [int(b) for b in a.batch_sizes.split(",") if b]
    seqs = [int(s) for s in a.seq_lens.split(",") if s]
    pixels = {b: rng.standard_normal((b, 3, size, size), dtype=np.float32) for b in batches}
    ids = {s: rng.integers(3, min(tcfg.vocab_size, 30000), (a.text_batch, s)) for s in seqs}
    mask = {s: np.ones((a.text_batch, s), dtype=np.int64) for s in seqs}
    features = {b: (rng.standard_normal((b, vcfg.hidden_size), dtype=np.float32),
                    rng.standard_normal((b, tcfg.hidden_size), dtype=np.float32)) for b in batches}

    text_inputs = [n for n in a.text_inputs.split(",") if n]
    with_types = "token_type_ids" in text_inputs
    os.makedirs(a.export_dir, exist_ok=True)
    paths = {"vision": os.path.join(a.export_dir, "vision.onnx"),
             "text": os.path.join(a.export_dir, "text.onnx"),
             "head": os.path.join(a.export_dir, "projection.onnx")}
    print(f"bench_model.py: exporting {a.checkpoint} with torch.onnx.export", file=sys.stderr)
    with torch.no_grad():
        torch.onnx.export(vision, (torch.from_numpy(pixels[batches[0]]),), paths["vision"],
                          input_names=["pixel_values"], output_names=["image_features"],
                          dynamic_axes={"pixel_values": {0: "batch"}}, opset_version=17, dynamo=False)
        s0 = seqs[0]
        example = (torch.from_numpy(ids[s0]), torch.from_numpy(mask[s0]))
        if with_types:
            example += (torch.zeros_like(example[0]),)
        torch.onnx.export(text, example, paths["text"],
                          input_names=text_inputs, output_names=["text_features"],
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in text_inputs},
                          opset_version=17, dynamo=False)
        torch.onnx.export(head, tuple(torch.from_numpy(x) for x in features[batches[0]]), paths["head"],
                          input_names=["image_features", "text_features"],
                          output_names=["image_embeds", "text_embeds"],
                          dynamic_axes={"image_features": {0: "n"}, "text_features": {0: "m"}},
                          opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    sessions = {g: ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                for g, path in paths.items()}

    def workload(engine, graph, n):
        """The function to time and its items per run."""
        if graph == "vision":
            if engine == "torch":
                x = torch.from_numpy(pixels[n])
                return (lambda: vision(x)), n
            feed = {"pixel_values": pixels[n]}
        elif graph == "text":
            if engine == "torch":
                i, m = torch.from_numpy(ids[n]), torch.from_numpy(mask[n])
                return (lambda: text(i, m)), a.text_batch
            feed = {"input_ids": ids[n], "attention_mask": mask[n]}
            if with_types:
                feed["token_type_ids"] = np.zeros_like(ids[n])
        else:
            if engine == "torch":
                fi, ft = (torch.from_numpy(x) for x in features[n])
                return (lambda: head(fi, ft)), n
            feed = {"image_features": features[n][0], "text_features": features[n][1]}
        session = sessions[graph]
        return (lambda: session.run(None, feed)), (a.text_batch if graph == "text" else n)

    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "onnxruntime": ort.__version__}
    print(json.dumps({"ready": True, "versions": versions}), flush=True)
    with torch.inference_mode():
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                fn, items = workload(req["engine"], req["graph"], int(req["size"]))
                rate = median_rate(fn, items, int(req["repeats"]))
                print(f"bench_model.py: {req['engine']} {req['graph']} {req['size']}: {rate:.1f}/s",
                      file=sys.stderr)
                print(json.dumps({"rate": rate}), flush=True)
            except Exception as e:  # reported to vtde, which stops with the message
                print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
