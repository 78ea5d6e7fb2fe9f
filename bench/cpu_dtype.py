"""bf16 vs float32 for one SmolLM2-135M forward pass on this CPU: the default dtype is chosen from this.

    python -m bench.cpu_dtype [--tokens 297 64]

Prints a table of median forward times (bidirectional, full sequence: a diffusion step).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from generation.models import load_smollm2, make_bidirectional


def median_forward_seconds(module, tokens: int, repeats: int = 5) -> float:
    x = torch.randint(100, 40000, (1, tokens))
    times = []
    with torch.no_grad():
        module(x)  # warm-up
        for _ in range(repeats):
            began = time.perf_counter()
            module(x, logits_to_keep=tokens // 2)
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, nargs="+", default=[297, 64])
    args = parser.parse_args()
    # GGUF-loaded models refuse .to(dtype): load once per dtype.
    modules = {dtype: make_bidirectional(load_smollm2("cpu", dtype)[1]) for dtype in (torch.float32, torch.bfloat16)}
    print(f"# SmolLM2-135M forward on CPU, {torch.get_num_threads()} threads")
    print("| tokens | float32 ms | bfloat16 ms | bf16 / fp32 |")
    print("|---:|---:|---:|---:|")
    for tokens in args.tokens:
        fp32 = median_forward_seconds(modules[torch.float32], tokens)
        bf16 = median_forward_seconds(modules[torch.bfloat16], tokens)
        print(f"| {tokens} | {fp32 * 1e3:.1f} | {bf16 * 1e3:.1f} | {bf16 / fp32:.2f} |")


if __name__ == "__main__":
    main()
