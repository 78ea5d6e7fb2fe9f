"""Measured throughput of the two heavy stages, float32 vs bf16 autocast, on this machine.

Distillation: answer tokens/s of batched sampling (KV cache). Training: tokens/s (prompt + canvas,
forward + backward + AdamW on the LoRA student). A few timed repetitions after one warm-up; the
numbers go into the model card, and the budget of a CPU run is sized from them.

    python -m training.throughput
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from generation.models import chat_prompt_ids
from generation.smollm2 import load_smollm2

from .adapt import AdaptConfig, diffusion_loss, layout, low_discrepancy_t, noise, student
from .distill import DistillConfig, sample_answers
from .prompts import messages, split_prompts


def distill_tokens_per_s(module, tokenizer, bf16: bool, batch: int, new_tokens: int, repeats: int) -> float:
    prompts = split_prompts()["train"][:batch]
    rows = [chat_prompt_ids(tokenizer, messages(p)) for p in prompts]
    config = DistillConfig(max_answer_tokens=new_tokens, bf16=bf16)
    sample_answers(module, rows, 1.0, config, seed=0)  # warm-up (oneDNN kernels)
    began, tokens = time.perf_counter(), 0
    for r in range(repeats):
        tokens += sum(map(len, sample_answers(module, rows, 1.0, config, seed=r + 1)))
    return tokens / (time.perf_counter() - began)


def train_tokens_per_s(base, tokenizer, bf16: bool, batch: int, canvas: int, repeats: int) -> float:
    config = AdaptConfig(batch_size=batch, canvas=canvas, bf16=bf16, rank=16, alpha=16)
    model = student(copy.deepcopy(base), config)
    causal_lm = model.get_base_model()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    prompts = split_prompts()["train"][:batch]
    pairs = [(chat_prompt_ids(tokenizer, messages(p)), list(range(100, 100 + canvas))) for p in prompts]
    ids, attention, starts = layout(pairs, canvas)
    generator = torch.Generator().manual_seed(0)
    began = None
    for r in range(repeats + 1):
        if r == 1:
            began = time.perf_counter()
        t = low_discrepancy_t(batch, config.eps, generator)
        masked = noise(ids, starts, canvas, t, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = diffusion_loss(causal_lm, ids, attention, masked, t, canvas, 16)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return int(attention.sum()) * repeats / (time.perf_counter() - began)


def measure(batch: int = 4, canvas: int = 128, new_tokens: int = 32, repeats: int = 1, base=None,
            tokenizer=None, log=print) -> dict:
    if base is None:
        tokenizer, base = load_smollm2("cpu", torch.float32)
    result = {"threads": torch.get_num_threads()}
    for bf16 in (False, True):
        name = "bf16" if bf16 else "fp32"
        result[f"distill_answer_tokens_per_s_{name}"] = distill_tokens_per_s(base, tokenizer, bf16, batch,
                                                                              new_tokens, repeats)
        result[f"train_tokens_per_s_{name}"] = train_tokens_per_s(base, tokenizer, bf16, batch, canvas, repeats)
        log(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    measure(batch=args.batch, repeats=args.repeats)


if __name__ == "__main__":
    main()
