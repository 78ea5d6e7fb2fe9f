"""How good a block-causal model's drafts are for self-speculative decoding (generation/speculative.py).

    python -m bench.drafts [--prompts 6] [--adapter DIR] [--draft 2] [--candidates K]
    python -m bench.drafts --smoke    # a tiny random model, seconds: checks the script, measures nothing real

Speculative decoding drafts d1 (the token two after the last committed one) blind to r, the token between,
which the causal path draws in the same forward: it tries the drafter's K likeliest values for d1 side by side
(a tree), and the one equal to the causal path's next draw, y ~ p_T(. | prefix, r) at temperature T, if any, is
kept. So a set S of drafts is kept with probability m(S), the blind marginal m(y) = sum_r p_T(r) p_T(y | r), and the
best single draft is the argmax of m. This prints, over answers the model samples itself (speculative, T, training
prompts: never the held-out ones), at every `stride`-th anchor:
- drafter (argmax): m(argmax q), the acceptance of the drafter's likeliest draft alone;
- drafter (top K): m(top K of q), the acceptance of the tree's K drafts (generation/speculative.py CANDIDATES);
- with bigrams (top K): the same with the drafts rescored by the model's bigram counts given r (generation/bigrams.py):
  sum_r p_T(r) p_T(S_r | r), S_r the K best scores after r (the drafts speculative decoding makes; "-" without counts);
- ceiling (argmax of m): max_y m(y), the best single blind draft;
- ceiling (top K of m): the best K blind drafts;
- seeing r: E max_y p_T(y | r), the acceptance a single draft made after r could reach;
- KL(m || drafter): how far the drafter's distribution is from the marginal it should learn, in nats.
m is summed over the `top` likeliest r (their probabilities renormalised), exact when that covers the vocabulary.

Left out: later drafts (they also depend on the first ones' acceptance).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation import DiffusionConfig, DiffusionLM, diffuse  # noqa: E402
from generation.decoders import SPECULATIVE  # noqa: E402
from generation.models import crop_cache, new_cache  # noqa: E402
from generation.speculative import CANDIDATES, Layout  # noqa: E402


@torch.no_grad()
def draft_quality(model: DiffusionLM, prompt_ids: list[int], answer: list[int], temperature: float, draft: int = 2,
                  candidates: int = CANDIDATES, stride: int = 3, top: int = 24) -> list[dict]:
    """One dict per anchor a (the last known position; r = position a + 1, the draft's target a + 2):
    drafter, drafter_top, bigrams_top, ceiling, ceiling_top, seeing_r, kl, as in the module docstring."""
    module, seq = model.module, list(prompt_ids) + list(answer)
    temperature = temperature * model.causal_temperature  # what the verifier samples (speculative.commit)
    full = new_cache(model)
    logits = module(torch.tensor([seq], device=model.device), past_key_values=full, use_cache=True).logits[0]
    p = torch.softmax(model.suppress(logits.float()) / temperature, dim=-1)  # p[i]: the causal path's token after i
    rows = []
    for a in range(len(prompt_ids) - 1, len(seq) - 2, stride):
        likely = torch.topk(p[a], min(top, p.shape[-1]))
        cache = _cache_through(full, a + 1, repeat=len(likely.indices))
        after_r = module(likely.indices[:, None], past_key_values=cache, use_cache=True,
                         position_ids=torch.full((len(likely.indices), 1), a + 1, device=model.device)).logits[:, -1]
        weights = likely.values / likely.values.sum()
        p_after_r = torch.softmax(model.suppress(after_r.float()) / temperature, dim=-1)  # (top, V)
        marginal = (weights[:, None] * p_after_r).sum(0)
        drafter = _first_draft_distribution(model, full, seq, a, draft)
        bigrams_top = float("nan")
        if model.bigrams is not None:
            drafts = [model.bigrams.rescore(drafter.log(), int(r)).topk(candidates).indices for r in likely.indices]
            bigrams_top = float(sum(w * row[s].sum() for w, row, s in zip(weights, p_after_r, drafts)))
        rows.append({"drafter": float(marginal[int(drafter.argmax())]),
                     "drafter_top": float(marginal[drafter.topk(candidates).indices].sum()),
                     "bigrams_top": bigrams_top,
                     "ceiling": float(marginal.max()),
                     "ceiling_top": float(marginal.topk(candidates).values.sum()),
                     "seeing_r": float(p[a + 1].max()),
                     "kl": float((marginal * (marginal.clamp_min(1e-12).log() - drafter.clamp_min(1e-12).log())).sum())})
    return rows


def _cache_through(full, length: int, repeat: int = 1):
    """A copy of the cache cut to its first `length` positions, repeated `repeat` times along the batch."""
    cache = copy.deepcopy(full)
    crop_cache(cache, length)
    if repeat > 1:
        cache.batch_repeat_interleave(repeat)
    return cache


def _first_draft_distribution(model: DiffusionLM, full, seq: list[int], anchor: int, draft: int) -> torch.Tensor:
    """The diffusion head's distribution for position anchor + 2, from the block of `draft` - 1 masks after the anchor,
    laid out as speculative decoding lays it out."""
    layout = Layout(anchor, 1, [], draft, len(seq) + draft)
    ids = torch.tensor([[seq[anchor]] + [model.mask_id] * (len(layout.positions) - 1)], device=model.device)
    hidden = model.hidden_states(ids, layout.positions, _cache_through(full, anchor), layout.mask)
    return torch.softmax(model.project(hidden, layout.block_rows[0][:1])[0], dim=-1)


def summary(rows: list[dict]) -> dict:
    return {key: statistics.mean(row[key] for row in rows)
            for key in ("drafter", "drafter_top", "bigrams_top", "ceiling", "ceiling_top", "seeing_r", "kl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--adapter", type=Path, nargs="+", default=None, help="block adapters to compare (default: the shipped one)")
    parser.add_argument("--draft", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=CANDIDATES, help="K, the first draft's alternatives")
    parser.add_argument("--gen-length", type=int, default=96)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--smoke", action="store_true", help="a tiny random block-causal model (seconds)")
    args = parser.parse_args()
    if args.smoke:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from fakes import tiny_block_causal_lm

        models, prompts, args.gen_length = {"tiny": tiny_block_causal_lm(seed=0)}, [[5, 6, 7, 8]], 16
    else:
        from generation.smollm2 import BLOCK_ADAPTER_DIR, load_block_diffusion
        from training.prompts import messages, split_prompts

        adapters = args.adapter or [BLOCK_ADAPTER_DIR]
        models = {str(a): load_block_diffusion("cpu", torch.bfloat16, a) for a in adapters}
        chosen = split_prompts()["train"][5::131][:args.prompts]
        prompts = [next(iter(models.values())).prompt_ids(messages(p)) for p in chosen]
    k = args.candidates
    print(f"# first-draft acceptance, drafts of {args.draft}, T={args.temperature}, {len(prompts)} training prompts, "
          f"answers of {args.gen_length} tokens sampled by each model itself")
    print(f"| model | anchors | drafter (argmax) | drafter (top {k}) | with bigrams (top {k}) | ceiling (argmax of m) "
          f"| ceiling (top {k} of m) | seeing r | KL(m || drafter) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, model in models.items():
        rows = []
        for seed, prompt_ids in enumerate(prompts):
            config = DiffusionConfig(gen_length=args.gen_length, algorithm=SPECULATIVE.name, block_length=args.draft,
                                     cache="prefix", temperature=args.temperature, seed=seed)
            answer = diffuse(model, prompt_ids, config).answer_ids()
            rows += draft_quality(model, prompt_ids, answer, args.temperature, args.draft, k)
        s = summary(rows)
        with_bigrams = "-" if model.bigrams is None else f"{s['bigrams_top']:.3f}"
        print(f"| {name} | {len(rows)} | {s['drafter']:.3f} | {s['drafter_top']:.3f} | {with_bigrams} "
              f"| {s['ceiling']:.3f} | {s['ceiling_top']:.3f} | {s['seeing_r']:.3f} | {s['kl']:.2f} |")


if __name__ == "__main__":
    main()
