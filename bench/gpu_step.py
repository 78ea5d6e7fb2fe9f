"""Time per denoising step of our sampler on a Dream-7B-sized model, against one bare forward pass.

A random-weight Qwen2 with Dream-v0-7B's exact config (as published: 28 layers, hidden 3584,
GQA 28/4, vocab 152064), bidirectional, bf16 on CUDA; prompt 256 + answer 256 tokens. Rows:
- bare forward, full projection: `module(x).logits` over all 512 positions (what a naive loop runs);
- bare forward, answer rows only: the same pass projecting only the 256 answer rows (logits_to_keep);
- our sampler (Dream maskgit_plus, 64 steps), projecting only the masked positions (the default:
  `DiffusionLM.logits_at` passes `logits_to_keep`);
- our sampler with the full projection forced (the module is wrapped so it cannot take
  `logits_to_keep`, which sends `logits_at` down its project-everything-then-select path).
The sampler rows are the mean over every step of a whole run; the gap to the floor is the
sampler's own work (proposals, scores, commits, History bookkeeping).

With `--cache prefix|dual` (Fast-dLLM, arXiv 2505.22618) the sampler runs in blocks (`--block`,
32 by default, as Fast-dLLM runs Dream) with that KV cache, and two more floors are timed: the
bare forward of one block over a KV cache of everything else (what a dual-cache step computes)
and of block + suffix over the prefix's cache (a prefix-cache step). The full-projection row is
left out then (the wrapper that forces it hides the cache arguments too).

    .venv/bin/python -m bench.gpu_step [--cache dual]          # on a GPU (needs ~18 GiB)
    .venv/bin/python -m bench.gpu_step --smoke [--cache dual]  # tiny config on CPU, checks the script runs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation import DiffusionConfig, diffuse  # noqa: E402
from generation.dream_llada import dream_qwen2_config  # noqa: E402
from generation.models import DiffusionLM, make_bidirectional  # noqa: E402

# Dream-org/Dream-v0-Instruct-7B config.json as published (the Base model has the same shape).
DREAM_7B_CONFIG = {
    "architectures": ["DreamModel"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
    "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 18944,
    "mask_token_id": 151666, "max_position_embeddings": 131072, "max_window_layers": 28, "model_type": "Dream",
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "pad_token_id": 151643,
    "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": False, "use_sliding_window": False,
    "vocab_size": 152064,
}
SMOKE_CONFIG = {**DREAM_7B_CONFIG, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
                "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 1024, "mask_token_id": 1000,
                "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}


class FullProjection(torch.nn.Module):
    """Hides `logits_to_keep` from DiffusionLM.logits_at, forcing the full vocabulary projection."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor):
        return self.inner(input_ids)


def build(raw: dict, device: str, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        module = Qwen2ForCausalLM(dream_qwen2_config(raw)).to(dtype)
    return make_bidirectional(module.eval())


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def time_forward(module, x, device: str, repeats: int, **kwargs) -> float:
    module(x, **kwargs)  # warm-up
    sync(device)
    began = time.perf_counter()
    for _ in range(repeats):
        module(x, **kwargs).logits.float()
    sync(device)
    return (time.perf_counter() - began) / repeats


@torch.no_grad()
def time_cached_forward(module, x, computed: int, device: str, repeats: int) -> float:
    """One forward of the last `computed` positions over a DynamicCache of the others (cut back after each)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=module.config)
    kept = x.shape[1] - computed
    module(x[:, :kept], past_key_values=cache, use_cache=True)
    positions = torch.arange(kept, x.shape[1], device=x.device)[None]
    times = []
    for _ in range(repeats + 1):
        sync(device)
        began = time.perf_counter()
        module(x[:, kept:], position_ids=positions, past_key_values=cache, use_cache=True,
               logits_to_keep=computed).logits.float()
        sync(device)
        times.append(time.perf_counter() - began)
        cache.crop(-computed)
    return sum(times[1:]) / repeats


def time_sampler(lm: DiffusionLM, prompt: list[int], config: DiffusionConfig, device: str) -> float:
    diffuse(lm, prompt, DiffusionConfig(gen_length=config.gen_length, steps=4, algorithm=config.algorithm,
                                        block_length=config.block_length, cache=config.cache))  # warm-up
    sync(device)
    began = time.perf_counter()
    history = diffuse(lm, prompt, config)
    sync(device)
    return (time.perf_counter() - began) / len(history.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny config on CPU (checks the script, times nothing real)")
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--answer", type=int, default=256)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cache", choices=["none", "prefix", "dual"], default="none", help="the sampler's KV cache")
    parser.add_argument("--block", type=int, default=None, help="block length (default: one block; 32 with a cache)")
    args = parser.parse_args()
    if args.block is None and args.cache != "none":
        args.block = 32
    if args.smoke:
        raw, device, dtype = SMOKE_CONFIG, "cpu", torch.float32
        args.prompt, args.answer, args.steps, args.repeats = 32, 32, 8, 3
        args.block = None if args.block is None else 8
    elif not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: run on a GPU machine, or pass --smoke to check the script on CPU")
    else:
        raw, device, dtype = DREAM_7B_CONFIG, "cuda", torch.bfloat16

    module = build(raw, device, dtype)
    mask_id = raw["mask_token_id"]
    lm = DiffusionLM(module, mask_id=mask_id, shift_logits=True, never_propose=(mask_id,), name="dream-7b-random")
    full = DiffusionLM(FullProjection(module), mask_id=mask_id, shift_logits=True, never_propose=(mask_id,),
                       name="dream-7b-random-full-projection")
    prompt = torch.randint(0, mask_id, (args.prompt,), generator=torch.Generator().manual_seed(0)).tolist()
    x = torch.tensor([prompt + [mask_id] * args.answer], device=device)
    config = DiffusionConfig(gen_length=args.answer, steps=args.steps, algorithm="maskgit_plus",
                             block_length=args.block, cache=args.cache)

    answer_rows = torch.arange(args.prompt - 1, args.prompt + args.answer - 1, device=device)  # shifted logits
    rows = [
        ("bare forward, full projection", time_forward(module, x, device, args.repeats)),
        (f"bare forward, {args.answer} answer rows projected",
         time_forward(module, x, device, args.repeats, logits_to_keep=answer_rows)),
        ("sampler step, masked rows projected", time_sampler(lm, prompt, config, device)),
    ]
    if args.cache == "none":
        rows.append(("sampler step, full projection forced", time_sampler(full, prompt, config, device)))
    else:
        suffix = args.answer - args.block  # the prefix step of the first block: block + whole suffix
        rows[2:2] = [
            (f"bare forward, {args.block} over a cache (dual step)",
             time_cached_forward(module, x, args.block, device, args.repeats)),
            (f"bare forward, {args.block + suffix} over a cache (prefix step)",
             time_cached_forward(module, x, args.block + suffix, device, args.repeats)),
        ]
    params = sum(p.numel() for p in module.parameters())
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke: tiny config, numbers mean nothing)"
    print(f"device: {name}; model: Dream-v0-7B config{' (smoke)' if args.smoke else ''}, {params / 1e6:,.2f}M params, "
          f"random weights, {str(dtype).replace('torch.', '')}; prompt {args.prompt} + answer {args.answer}; "
          f"sampler: maskgit_plus, {args.steps} steps, blocks of {args.block or args.answer}, cache {args.cache}")
    floor = rows[0][1]  # one bare forward pass as a naive loop runs it
    print(f"{'what':<46} {'ms/step':>9} {'x bare forward':>15}")
    for what, seconds in rows:
        print(f"{what:<46} {seconds * 1e3:>9.2f} {seconds / floor:>15.2f}")


if __name__ == "__main__":
    main()
