"""bf16 vs float32 for one SmolLM2-135M forward pass on this CPU: the default dtype is chosen from this.

    python -m bench.cpu_dtype [--tokens 297 64]

Prints a table of the fastest of several forward passes per dtype (bidirectional, the whole
sequence: one diffusion step), the two dtypes interleaved so that other load on the machine
hits both alike; the minimum is the figure least disturbed by it.
"""

from __future__ import annotations

import argparse
import time

import torch

from generation.models import make_bidirectional
from generation.smollm2 import load_smollm2


def fastest_forward_seconds(modules: dict, tokens: int, repeats: int = 7) -> dict:
    x = torch.randint(100, 40000, (1, tokens))
    times = {dtype: [] for dtype in modules}
    with torch.no_grad():
        for module in modules.values():
            module(x)  # warm-up
        for _ in range(repeats):
            for dtype, module in modules.items():
                began = time.perf_counter()
                module(x, logits_to_keep=max(1, tokens // 2))
                times[dtype].append(time.perf_counter() - began)
    return {dtype: min(seconds) for dtype, seconds in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, nargs="+", default=[297, 64])
    args = parser.parse_args()
    # GGUF-loaded models refuse .to(dtype): load once per dtype.
    modules = {dtype: make_bidirectional(load_smollm2("cpu", dtype)[1]) for dtype in (torch.float32, torch.bfloat16)}
    print(f"# SmolLM2-135M forward on CPU, {torch.get_num_threads()} threads")
    print("| tokens | float32 ms (fastest) | bfloat16 ms (fastest) | bf16 / fp32 |")
    print("|---:|---:|---:|---:|")
    for tokens in args.tokens:
        fastest = fastest_forward_seconds(modules, tokens)
        fp32, bf16 = fastest[torch.float32], fastest[torch.bfloat16]
        print(f"| {tokens} | {fp32 * 1e3:.1f} | {bf16 * 1e3:.1f} | {bf16 / fp32:.2f} |")


if __name__ == "__main__":
    main()
