"""Which sampling settings make the page's default answers read well: repeated 4-grams and perplexity of both
panels, prompt by prompt.

For each setting (temperature, top-p, and the penalties: sampling.Penalties) the embedded pair answers the page's
first example prompts and a few training prompts at the page's answer length, at the page's seed and a few more (the
diffusion model with its recommended decoder, verified diffusion, whose answers are its causal path's own samples);
the AR model judges every answer (generative perplexity). A looping answer shows as a high share of repeated
4-grams. An example loops when the diffusion panel repeats more than 1.5x the AR model's sampled answers (plus one
repeated 4-gram's share of the answer, so that one repeated 4-gram against none is no loop), at the page's seed or
in the mean over seeds. Each row shows every seed's repeats (one seed is noisy), their mean and the perplexity
pooled over seeds; each setting ends with the seeds at which no example loops. The page's default (page/settings.py)
is chosen from this table.

    python -m bench.defaults [--prompts 3] [--train 3] [--seeds 5] [--settings 0.5/0.9,0.7/0.9/1.1]

A setting is temperature/top-p, optionally /repetition penalty and /DRY multiplier (both panels alike).

Left out: other answer lengths and decoders (the page's recommended one only).
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

SETTINGS = "0/1,0.5/0.9,0.7/0.9,0.8/0.95,1/0.9"  # (temperature/top-p) tried, by default
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples.json"
LOOP_RATIO = 1.5  # the target: the diffusion panel's repeats within 1.5x of the AR model's


@dataclasses.dataclass(frozen=True)
class Answer:
    """One panel's answer to one prompt at one seed, as the judge sees it."""

    rep4: float  # share of repeated 4-grams (generation.metrics.repeated_ngrams)
    nll: float  # the AR judge's summed negative log-likelihood, nats
    tokens: int


def answer(model, judge, prompt: str, run) -> Answer:
    messages = [{"role": "user", "content": prompt}]
    ids = run(model, model.prompt_ids(messages)).answer_ids()
    return Answer(repeated_ngrams(ids), teacher_nll(judge, judge.prompt_ids(messages), ids), len(ids))


def mean_rep4(answers: list[Answer]) -> float:
    return statistics.mean(a.rep4 for a in answers)


def pooled_ppl(answers: list[Answer]) -> float:
    return perplexity(sum(a.nll for a in answers), sum(a.tokens for a in answers))


def pool(answers: list[Answer]) -> Answer:
    """Several prompts' answers at one seed as one row: their mean repeats, their summed NLL and tokens."""
    return Answer(mean_rep4(answers), sum(a.nll for a in answers), sum(a.tokens for a in answers))


def one_repeat(answer: Answer) -> float:
    """The share one repeated 4-gram has in this answer: one_repeat(Answer(.., tokens=35)) -> 1/32 (and a hair more:
    repeated_ngrams's 1 - 31/32 is a float above 1/32)."""
    return 1 / max(answer.tokens - 3, 1) + 1e-12


def loops(diffusion: list[Answer], ar: list[Answer]) -> bool:
    """Whether the diffusion answers repeat more than 1.5x the AR answers plus one repeated 4-gram each:
    loops([Answer(0.10, .., 64)], [Answer(0.02, ..)]) -> True: 0.10 > 1.5 * 0.02 + 1/61."""
    return mean_rep4(diffusion) > LOOP_RATIO * mean_rep4(ar) + statistics.mean(map(one_repeat, diffusion))


def cell(answers: list[Answer]) -> str:
    """Repeated 4-grams at each seed (the page's first), their mean, and the perplexity pooled over seeds."""
    return f"{' '.join(f'{a.rep4:.2f}' for a in answers)} | {mean_rep4(answers):5.3f} {pooled_ppl(answers):6.2f}"


def verdict(diffusion: list[Answer], ar: list[Answer]) -> str:
    """'ok' or which of the page's seed and the mean over seeds loops."""
    failed = [name for name, d, a in (("seed", diffusion[:1], ar[:1]), ("mean", diffusion, ar)) if loops(d, a)]
    return "LOOPS " + "+".join(failed) if failed else "ok"


def print_setting(label, prompts, examples, rows, seeds) -> list[str]:
    """One setting's table (`rows`: prompt -> answers of both panels at each of `seeds`); returns the example
    prompts that loop (at the page's seed or in the mean)."""
    print(f"\n{label}\n{'prompt':38} | diffusion: rep4 at each seed | mean, ppl || AR: the same || example")
    looping = []
    for i, prompt in enumerate(prompts):
        diffusion, ar = rows[prompt]
        note = verdict(diffusion, ar) if i < examples else "(training)"
        looping += [prompt] if note.startswith("LOOPS") else []
        print(f"{prompt[:38]:38} | {cell(diffusion)} || {cell(ar)} || {note}")
    for name, group in (("examples", prompts[:examples]), ("training", prompts[examples:])):
        if group:
            pooled = [[pool([rows[p][panel][k] for p in group]) for k in range(len(seeds))] for panel in (0, 1)]
            print(f"{'  all ' + name:38} | {cell(pooled[0])} || {cell(pooled[1])} ||")
    clean = [seed for k, seed in enumerate(seeds)
             if not any(loops(rows[p][0][k:k + 1], rows[p][1][k:k + 1]) for p in prompts[:examples])]
    print(f"  seeds at which no example loops: {clean}")
    return looping


def parse_settings(text: str) -> list[tuple[float, float, float, float]]:
    """Temperature/top-p[/repetition penalty[/DRY multiplier]], left out: 1 and 0 (off):
    parse_settings("0.5/0.9,1/1/1.2,1/1/1/0.8") -> [(0.5, 0.9, 1.0, 0.0), (1.0, 1.0, 1.2, 0.0), (1.0, 1.0, 1.0, 0.8)]"""
    settings = [[float(x) for x in setting.split("/")] for setting in text.split(",")]
    return [tuple(values + [1.0, 0.0][len(values) - 2:]) for values in settings]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=3, help="the page's first N example prompts")
    parser.add_argument("--train", type=int, default=3, help="and N training prompts, spread over the topics")
    parser.add_argument("--seeds", type=int, default=5, help="the page's seed and the N-1 after it")
    parser.add_argument("--settings", default=SETTINGS,
                        help="temperature/top-p[/repetition penalty[/DRY]] settings, separated by commas")
    args = parser.parse_args()
    examples = json.loads(EXAMPLES.read_text())["prompts"][: args.prompts]
    train = split_prompts()["train"]
    prompts = examples + train[:: max(len(train) // max(args.train, 1), 1)][: args.train]  # spread over the topics
    diffusion, ar = load_model(BLOCK_DIFFUSION_SMOLLM2, device="cpu"), load_model(AR_SMOLLM2, device="cpu")
    length = int(DEFAULTS.gen_length)
    seeds = [int(DEFAULTS.seed) + k for k in range(args.seeds)]
    base = recommended_config(BLOCK_DIFFUSION_SMOLLM2, length)
    print(f"{len(prompts)} prompts, {length} tokens, seeds {seeds} (the page shows seed {seeds[0]}), "
          f"diffusion decoder {base.algorithm}; the page's default: temperature {DEFAULTS.temperature}, "
          f"top-p {DEFAULTS.top_p}")
    for temperature, top_p, penalty, dry in parse_settings(args.settings):
        runs = seeds if temperature > 0 else seeds[:1]  # greedy decoding draws nothing: one seed says it all
        rows = {}
        for prompt in prompts:
            sampling = dict(temperature=temperature, top_p=top_p, repetition_penalty=penalty, dry_multiplier=dry)
            d_runs = [dataclasses.replace(base, **sampling, seed=s) for s in runs]
            a_runs = [ARConfig(max_new_tokens=length, **sampling, seed=s) for s in runs]
            rows[prompt] = ([answer(diffusion, ar, prompt, lambda m, ids, c=c: diffuse(m, ids, c)) for c in d_runs],
                            [answer(ar, ar, prompt, lambda m, ids, c=c: generate_autoregressive(m, ids, c))
                             for c in a_runs])
        label = f"temperature {temperature}, top-p {top_p}, repetition penalty {penalty}, DRY {dry}"
        looping = print_setting(label, prompts, len(examples), rows, runs)
        print(f"  -> {'no example loops' if not looping else f'{len(looping)} example(s) loop'}", flush=True)


if __name__ == "__main__":
    main()
