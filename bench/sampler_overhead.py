"""Sampler overhead and the vocabulary-projection saving, on the embedded SmolLM2 diffusion model.

    python -m bench.sampler_overhead [--gen-length 256] [--steps 32] [--dtype float32|bfloat16]

For each setting it runs the real sampler and splits every step's wall time into the model
forward (timed around `DiffusionLM.logits_at`) and the rest (proposals, scores, commit, history,
and with a KV cache cutting it back after the step: the sampler's overhead). It then reruns with
the full vocabulary projection to show what projecting only the masked positions of the active
block saves (not for the cache rows: a cached step always projects only the rows it needs). Prints a table; the target is
overhead under 3% of a step at gen_length 256 on CPU. The embedded adapter does not change the
cost of a step, so without it the bare bidirectional base is timed (and the table says so).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time

import torch

from generation import DiffusionConfig, ModelUnavailable, diffuse, load_model
from generation.smollm2 import DIFFUSION_SMOLLM2, load_smollm2, smollm2_diffusion_lm

PROMPT = "Explain why the sky is blue in a few sentences."


class TimedForward:
    """Wraps DiffusionLM.logits_at to accumulate the seconds spent in the model."""

    def __init__(self, lm):
        self.lm, self.seconds = lm, []
        self.inner = lm.logits_at

    def __call__(self, x, positions, *cached_step):
        began = time.perf_counter()
        out = self.inner(x, positions, *cached_step)
        self.seconds.append(time.perf_counter() - began)
        return out


def measure(lm, prompt_ids, config):
    timer = TimedForward(lm)
    object.__setattr__(lm, "logits_at", timer)
    try:
        history = diffuse(lm, prompt_ids, config)
    finally:
        del lm.logits_at
    step = statistics.median(s.seconds for s in history.steps)
    forward = statistics.median(timer.seconds)
    overhead = statistics.median(s.seconds - f for s, f in zip(history.steps, timer.seconds))
    return step, forward, overhead


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gen-length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16",
                        help="bfloat16 is what load_model picks for diffusion models on CPU")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    try:
        lm, source = load_model(DIFFUSION_SMOLLM2, "cpu", dtype), "embedded diffusion model"
    except ModelUnavailable:
        tokenizer, base = load_smollm2("cpu", dtype)
        lm, source = smollm2_diffusion_lm(base, tokenizer), "bidirectional SmolLM2 base (no adapter yet)"
    prompt_ids = lm.prompt_ids([{"role": "user", "content": PROMPT}])
    n = args.gen_length
    settings = [
        ("low_confidence, blocks of 32", DiffusionConfig(gen_length=n, steps=args.steps, block_length=32)),
        ("low_confidence, one block", DiffusionConfig(gen_length=n, steps=args.steps)),
        ("entropy, one block", DiffusionConfig(gen_length=n, steps=args.steps, algorithm="entropy")),
        ("low_confidence T=1, one block", DiffusionConfig(gen_length=n, steps=args.steps, temperature=1.0)),
        ("low_confidence, blocks of 32, prefix cache",
         DiffusionConfig(gen_length=n, steps=args.steps, block_length=32, cache="prefix")),
        ("low_confidence, blocks of 32, dual cache",
         DiffusionConfig(gen_length=n, steps=args.steps, block_length=32, cache="dual")),
        ("low_confidence, blocks of 32, dual cache, threshold 0.9",
         DiffusionConfig(gen_length=n, steps=args.steps, block_length=32, cache="dual", threshold=0.9)),
    ]
    print(f"# {source}, {args.dtype}, CPU {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, prompt {len(prompt_ids)} + answer {n} tokens, {args.steps} steps")
    print("| setting | step ms | forward ms | overhead ms | overhead % | full-projection forward ms | saving % |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, config in settings:
        step, forward, overhead = measure(lm, prompt_ids, config)
        saving = "| - | - |"
        if config.cache == "none":
            _, full_forward, _ = measure(dataclasses.replace(lm, full_projection=True), prompt_ids, config)
            saving = f"| {full_forward * 1e3:.1f} | {100 * (1 - forward / full_forward):.1f} |"
        print(f"| {name} | {step * 1e3:.1f} | {forward * 1e3:.1f} | {overhead * 1e3:.2f} | "
              f"{100 * overhead / step:.2f} {saving}")


if __name__ == "__main__":
    main()
