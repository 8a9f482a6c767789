#!/usr/bin/env python3
"""The PyTorch side of vtde-fit's exactness test: trains the two projection heads and
logit_scale of a VisionTextDualEncoderModel on fixed tower features, with
torch.optim.AdamW, transformers' cosine schedule with warm-up and transformers' own
contrastive loss, and records the run as tests/fixtures/fit-exactness/. The Rust test
(crates/vtde-fit/tests/torch_exactness.rs) replays the same features, initial
parameters and batch order with vtde_fit::Trainer and compares step by step.

    PY="$(tools/reference-env.sh)/bin/python"
    "$PY" tools/fit_torch_reference.py            # rewrites tests/fixtures/fit-exactness/

What is recorded (float32, little-endian .npy):
- image_features.npy [N, Dv], text_features.npy [N, Dt]: seeded features with a class
  structure (so the loss falls as it would on real pairs), not tower outputs;
- initial.npy [1, K]: the flattened initial parameters, K = P*Dv + P*Dt + 1, in the
  order visual_projection.weight (row-major [P, Dv]), text_projection.weight ([P, Dt]),
  logit_scale;
- params.npy [RECORDED_STEPS, K]: the parameters after each of the first steps;
- final.npy [1, K]: after the last step;
- run.json: the hyper-parameters, the batch order (pair indices per step) and the loss
  of every step (before its update), as float32 values.

The recipe is the one vtde fit runs: AdamW (betas 0.9/0.999, eps 1e-8) with two
parameter groups (weight decay on the projections, none on logit_scale),
get_cosine_schedule_with_warmup (one scheduler step after each optimizer step), and
logit_scale clamped to at most ln(100) after each step. The forward pass is the lines of
VisionTextDualEncoderModel.forward after the towers (projection, L2 normalisation,
exp(logit_scale) * text @ image.T) and its image_text_contrastive_loss.
Deterministic: a re-run rewrites identical bytes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import get_cosine_schedule_with_warmup
from transformers.models.vision_text_dual_encoder.modeling_vision_text_dual_encoder import (
    image_text_contrastive_loss,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fit-exactness"
N, DV, DT, P, CLASSES = 96, 16, 12, 8, 6
BATCH, STEPS, RECORDED_STEPS = 16, 200, 50
LR, WARMUP, WEIGHT_DECAY, LOGIT_SCALE = 5e-3, 20, 0.1, 2.6592
MAX_LOGIT_SCALE = math.log(100.0)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261201)
    classes = rng.integers(0, CLASSES, size=N)
    latent = rng.normal(size=(CLASSES, 5))
    image = latent[classes] @ rng.normal(size=(5, DV)) + 0.5 * rng.normal(size=(N, DV))
    text = latent[classes] @ rng.normal(size=(5, DT)) + 0.2 * rng.normal(size=(N, DT))
    image = image.astype("<f4")
    text = text.astype("<f4")
    visual0 = (0.02 * rng.normal(size=(P, DV))).astype("<f4")
    text0 = (0.02 * rng.normal(size=(P, DT))).astype("<f4")
    order: list[list[int]] = []
    while len(order) < STEPS:
        perm = rng.permutation(N)
        order += [perm[i : i + BATCH].tolist() for i in range(0, N - BATCH + 1, BATCH)]
    order = [[int(i) for i in b] for b in order[:STEPS]]

    visual_projection = nn.Linear(DV, P, bias=False)
    text_projection = nn.Linear(DT, P, bias=False)
    with torch.no_grad():
        visual_projection.weight.copy_(torch.from_numpy(visual0))
        text_projection.weight.copy_(torch.from_numpy(text0))
    logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE))
    optimizer = torch.optim.AdamW(
        [
            {"params": [visual_projection.weight, text_projection.weight], "weight_decay": WEIGHT_DECAY},
            {"params": [logit_scale], "weight_decay": 0.0},
        ],
        lr=LR,
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    scheduler = get_cosine_schedule_with_warmup(optimizer, WARMUP, STEPS)
    image_t, text_t = torch.from_numpy(image), torch.from_numpy(text)

    def flat() -> np.ndarray:
        return np.concatenate(
            [
                visual_projection.weight.detach().numpy().ravel(),
                text_projection.weight.detach().numpy().ravel(),
                logit_scale.detach().numpy().reshape(1),
            ]
        ).astype("<f4")

    initial = flat()
    losses, params = [], []
    for batch in order:
        idx = torch.tensor(batch)
        # VisionTextDualEncoderModel.forward after the towers.
        image_embeds = visual_projection(image_t[idx])
        text_embeds = text_projection(text_t[idx])
        image_embeds = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
        text_embeds = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
        logits_per_text = torch.matmul(text_embeds, image_embeds.t()) * logit_scale.exp()
        loss = image_text_contrastive_loss(logits_per_text)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            logit_scale.clamp_(max=MAX_LOGIT_SCALE)
        losses.append(float(np.float32(loss.item())))
        if len(params) < RECORDED_STEPS:
            params.append(flat())

    OUT.mkdir(parents=True, exist_ok=True)
    np.save(OUT / "image_features.npy", image)
    np.save(OUT / "text_features.npy", text)
    np.save(OUT / "initial.npy", initial.reshape(1, -1))
    np.save(OUT / "params.npy", np.stack(params))
    np.save(OUT / "final.npy", flat().reshape(1, -1))
    run = {
        "generator": "tools/fit_torch_reference.py",
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "pairs": N,
        "vision_dim": DV,
        "text_dim": DT,
        "projection_dim": P,
        "batch_size": BATCH,
        "steps": STEPS,
        "recorded_steps": RECORDED_STEPS,
        "learning_rate": LR,
        "warmup_steps": WARMUP,
        "weight_decay": WEIGHT_DECAY,
        "logit_scale_init": LOGIT_SCALE,
        "max_logit_scale": MAX_LOGIT_SCALE,
        "batches": order,
        "losses": losses,
    }
    (OUT / "run.json").write_text(json.dumps(run) + "\n")
    print(f"wrote {OUT}: loss {losses[0]:.4f} -> {losses[-1]:.4f}, logit_scale {float(logit_scale.detach()):.4f}")


if __name__ == "__main__":
    main()
