"""Which sampling settings make the page's default answers read well: repeated 4-grams and perplexity of both panels.

For each (temperature, top-p) the embedded pair answers the page's first example prompts and a few training
prompts at the page's answer length and fixed seed (the diffusion model with its recommended decoder); the AR
model judges every answer (generative perplexity, pooled per panel). A looping answer shows as a high share of
repeated 4-grams. The page's default (page/settings.py) is the row where both panels stay close to the AR
model's own sampled answers.

    python -m bench.defaults [--prompts 3] [--train 3]

Left out: other answer lengths and decoders (the page's recommended one only), other seeds than the page's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from generation import ARConfig, diffuse, generate_autoregressive, load_model, recommended_config
from generation.metrics import perplexity, repeated_ngrams, teacher_nll
from generation.presets import AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2
from page.settings import DEFAULTS
from training.prompts import split_prompts

SETTINGS = [(0.0, 1.0), (0.5, 0.9), (0.7, 0.9), (0.8, 0.95), (1.0, 0.9)]  # (temperature, top-p) tried
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples.json"


def answer_stats(model, judge, prompt: str, run) -> tuple[float, float, int]:
    """(repeated 4-grams, teacher NLL, tokens) of one panel's answer to `prompt`."""
    messages = [{"role": "user", "content": prompt}]
    history = run(model, model.prompt_ids(messages))
    answer = history.answer_ids()
    return repeated_ngrams(answer), teacher_nll(judge, judge.prompt_ids(messages), answer), len(answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=3, help="the page's first N example prompts")
    parser.add_argument("--train", type=int, default=3, help="and N training prompts (training/prompts.py)")
    args = parser.parse_args()
    prompts = json.loads(EXAMPLES.read_text())["prompts"][: args.prompts] + split_prompts()["train"][: args.train]
    diffusion, ar = load_model(BLOCK_DIFFUSION_SMOLLM2, device="cpu"), load_model(AR_SMOLLM2, device="cpu")
    length, seed = int(DEFAULTS.gen_length), int(DEFAULTS.seed)
    base = recommended_config(BLOCK_DIFFUSION_SMOLLM2, length)
    print(f"{len(prompts)} prompts, {length} tokens, seed {seed}, diffusion decoder {base.algorithm}")
    print("temperature top_p | diffusion rep4 (mean, max) ppl | AR rep4 (mean, max) ppl")
    for temperature, top_p in SETTINGS:
        d_config = dataclasses.replace(base, temperature=temperature, top_p=top_p, seed=seed)
        a_config = ARConfig(max_new_tokens=length, temperature=temperature, top_p=top_p, seed=seed)
        cells = []
        for model, run in ((diffusion, lambda m, ids: diffuse(m, ids, d_config)),
                           (ar, lambda m, ids: generate_autoregressive(m, ids, a_config))):
            rows = [answer_stats(model, ar, prompt, run) for prompt in prompts]
            reps = [r for r, _, _ in rows]
            ppl = perplexity(sum(n for _, n, _ in rows), sum(t for _, _, t in rows))
            cells.append(f"{statistics.mean(reps):.3f} {max(reps):.3f} {ppl:6.2f}")
        print(f"{temperature:11.2f} {top_p:5.2f} | {cells[0]} | {cells[1]}", flush=True)


if __name__ == "__main__":
    main()
