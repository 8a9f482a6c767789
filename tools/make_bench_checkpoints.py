#!/usr/bin/env python3
"""Random-init checkpoints of real sizes for `vtde bench model` (issue: graph speed).

    "$(tools/reference-env.sh)/bin/python" tools/make_bench_checkpoints.py OUT_DIR

Writes OUT_DIR/clip-b32 (transformers' `CLIPConfig()`: ViT-B/32 + CLIP text) and
OUT_DIR/vit-b16-bert-base (`VisionTextDualEncoderModel` of `ViTConfig()` and
`BertConfig()`, projection 512), each with a synthetic tokenizer of the real vocabulary
size and the model's preprocessor config. Speed does not depend on the weights, so
random ones serve; nothing is downloaded.
"""
import json
import os
import sys
import warnings


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    warnings.filterwarnings("ignore")
    import torch
    import transformers
    from transformers import (BertConfig, CLIPConfig, CLIPModel, ViTConfig,
                              VisionTextDualEncoderConfig, VisionTextDualEncoderModel)

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)

    clip = os.path.join(out, "clip-b32")
    CLIPModel(CLIPConfig()).eval().save_pretrained(clip)
    with open(os.path.join(clip, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "CLIPImageProcessor"}, f)
    # A byte-level BPE vocabulary of CLIP's size with its two special tokens at the end.
    vocab = {f"tok{i}</w>": i for i in range(49406)}
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = 49406, 49407
    with open(os.path.join(clip, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(clip, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    print(f"wrote {clip}", file=sys.stderr)

    vit_bert = os.path.join(out, "vit-b16-bert-base")
    config = VisionTextDualEncoderConfig.from_vision_text_configs(ViTConfig(), BertConfig(), projection_dim=512)
    VisionTextDualEncoderModel(config).eval().save_pretrained(vit_bert)
    with open(os.path.join(vit_bert, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "ViTImageProcessor"}, f)
    # A WordPiece vocabulary of BERT-base's size with its special tokens.
    special = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [f"w{i}" for i in range(30522 - len(special))]
    with open(os.path.join(vit_bert, "vocab.txt"), "w") as f:
        f.write("\n".join(special + words) + "\n")
    print(f"wrote {vit_bert}", file=sys.stderr)


if __name__ == "__main__":
    main()
