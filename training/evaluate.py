"""Stage 4: quality vs steps of the adapted model on held-out prompts (the project's protocol).

For each held-out prompt (a fixed, shuffled subset) and each setting, sample a `gen_length`-token
answer with the core sampler (`generation.diffuse`) from the model loaded exactly as the registry
loads it (`load_embedded_diffusion`), and the AR teacher's own answer (`generate_autoregressive`)
as the reference row. Every answer (cut at its first stop token) is scored the same way:
- generative perplexity under the AR teacher, conditioned on the same chat prompt, pooled over
  tokens: exp(sum NLL / sum tokens);
- unigram entropy of the answer's token ids, in nats, averaged over answers (with their mean length,
  since entropy grows with length);
- repeated 4-grams (seq-rep-4), in percent, averaged over answers: how much of an answer loops;
- leaks: answers holding a mask or another special token (ids 0-16 other than the stop that ends
  them);
- tokens committed per model forward pass (1 for the AR model), and wall seconds per answer.
Seeds: `seeds` answers per prompt, answer j of prompt k with seed k * seeds + j. The settings take turns
answer by answer (every setting answers a prompt and seed before the next one is asked), so a shared CPU
whose speed drifts over the run (seen here: 10-20% within minutes) slows every row alike.

Objective "masked" (the any-order model) sweeps steps x algorithms; objective "block" (the block
model) runs the rows `block_settings` lists: its page default (`recommended_config`), its other decoders,
and the any-order model's page default beside that model's exact loop.

Left out: other judges (none offline), MAUVE and task accuracies.

    python -m training.evaluate --adapter assets/smollm2-diffusion-adapter --prompts 6 --out runs/eval.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import torch

from generation import ARConfig, DiffusionConfig, diffuse, generate_autoregressive, recommended_config
from generation.config import PENALTIES
from generation.decoders import decoder
from generation.metrics import perplexity, repeated_ngrams, teacher_nll, unigram_entropy
from generation.models import CausalLM
from generation.dtypes import cpu_step_ms, device_dtype
from generation.registry import load_model
from generation.presets import AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_SMOLLM2
from generation.sweep import THRESHOLD
from generation.smollm2 import (
    BLOCK_SIZE, EMBEDDED_ADAPTER_DIR, SMOLLM2_SPECIAL_IDS, SMOLLM2_STOP_IDS, load_block_diffusion,
    load_embedded_diffusion, load_smollm2,
)

from .prompts import messages, split_prompts


@dataclass(frozen=True)
class EvalConfig:
    prompts: int = 6  # held-out prompts (one seed each: seed = index); CPU-sized
    objective: str = "masked"  # "masked": the steps x algorithms grid; "block": the block model's rows (block_settings)
    seeds: int = 1  # answers per prompt (seeds index * seeds + j): more samples per prompt
    compare_prompts: int = 8  # block: prompts for the any-order model's comparison row (its steps are slow)
    gen_length: int = 128  # answer canvas, as in the issue
    block_length: int = 32  # semi-AR blocks for the diffusion sampler
    steps: tuple[int, ...] = (128, 64, 32, 16, 8)  # gen_length x {1, 1/2, 1/4, 1/8, 1/16}
    algorithms: tuple[str, ...] = ("low_confidence", "entropy")
    temperature: float = 0.7  # the same for the AR reference and the diffusion samples (float64 draws)
    repetition_penalty: float = 1.0  # likewise the same for all (sampling.Penalties); 1 = off
    dry_multiplier: float = 0.0  # likewise; 0 = off
    samples_shown: int = 3  # answers per setting kept as text for the model card


def leaked(answer_ids: list[int]) -> bool:
    """A special id (a mask included) inside the answer. Canvas positions after the answer's stop token
    are not the answer: a block-causal run stops there and leaves them masked by design."""
    specials = set(SMOLLM2_SPECIAL_IDS)
    return any(t in specials for t in answer_ids)


def settings(config: EvalConfig) -> list[dict]:
    """The rows of the table: the AR reference, then the student's settings (for the block model, `block_settings`)."""
    rows = [{"name": f"AR model (T={config.temperature})", "kind": "ar"}]
    if config.objective == "block":
        return rows + block_settings(config)
    for algorithm in config.algorithms:
        for steps in config.steps:
            rows.append({"name": f"{algorithm}, {steps} steps", "kind": "diffusion", "model": "student",
                         "diffusion": dict(steps=steps, block_length=config.block_length, algorithm=algorithm)})
    return rows


# The rows the model card checks targets against (training/card.py): written here, looked up there by these names.
PAGE_DEFAULT_ROW = "block, page default"
ANY_ORDER_ROW = "any-order model, page default"
ANY_ORDER_EXACT_ROW = "any-order model, exact loop"


def per_step_row(per: int) -> str:
    """The name of the row committing `per` tokens a step in the trained block: 'block, 2 tokens/step'."""
    return f"block, {per} token{'s' if per > 1 else ''}/step"


def block_settings(config: EvalConfig) -> list[dict]:
    """The block model at the page's default, speculative decoding (its fastest mode), 1, 2 and 4 tokens per step and
    Fast-dLLM's threshold in its trained block size, 2 tokens per step in blocks of 32 (exact cache), and the
    any-order model's page default beside the same setting without a cache (its exact loop: the cache's cost in
    quality)."""
    n = config.gen_length
    fixed = dict(block_length=BLOCK_SIZE, cache="prefix", algorithm="low_confidence")
    rows = [{"name": PAGE_DEFAULT_ROW, "diffusion": _page_default(BLOCK_DIFFUSION_SMOLLM2, n)},
            {"name": "block, speculative", "diffusion": dict(block_length=2, cache="prefix", algorithm="speculative",
                                                             steps=n)}]
    rows += [{"name": per_step_row(per), "diffusion": dict(fixed, steps=n // per)}
             for per in (1, 2, 4)]
    rows.append({"name": "block, threshold", "diffusion": dict(fixed, steps=n, threshold=THRESHOLD)})
    rows.append({"name": "block of 32, 2 tokens/step", "diffusion": dict(fixed, block_length=min(32, n), steps=n // 2)})
    rows = [dict(row, kind="diffusion", model="student") for row in rows]
    any_order = _page_default(DIFFUSION_SMOLLM2, n)
    rows.append({"name": ANY_ORDER_ROW, "kind": "diffusion", "model": "any-order",
                 "diffusion": any_order, "prompts": config.compare_prompts})
    rows.append({"name": ANY_ORDER_EXACT_ROW, "kind": "diffusion", "model": "any-order",
                 "diffusion": dict(any_order, cache="none"), "prompts": config.compare_prompts})
    return rows


def _page_default(name: str, gen_length: int) -> dict:
    """What `recommended_config` starts the page with, less what the evaluation sets itself."""
    chosen = recommended_config(name, gen_length).to_dict()
    return {k: v for k, v in chosen.items() if k not in ("gen_length", "temperature", *PENALTIES, "seed")}


def sampling_words(config: dict) -> str:
    """How every row sampled, from an evaluation's config: 'temperature 0.7', or with penalties
    'temperature 0.7, repetition penalty 1.1, DRY loop penalty 0.8'."""
    penalty, dry = config.get("repetition_penalty", 1.0), config.get("dry_multiplier", 0.0)
    return (f"temperature {config['temperature']}" + (f", repetition penalty {penalty}" if penalty != 1 else "")
            + (f", DRY loop penalty {dry}" if dry else ""))


def calibration_words(evaluation: dict) -> str:
    """How the block model's verifying decoders sampled its causal path, from an evaluation: '' when uncalibrated."""
    temperature = evaluation.get("causal_temperature", 1.0)
    return ("" if temperature == 1 else f"verified and speculative decoding divide the block model's causal logits by "
            f"{temperature} first (its causal temperature, fitted to the teacher: training/calibrate.py)")


def describe(diffusion: dict) -> str:
    """One line for the card: {'steps': 128, 'block_length': 8, 'cache': 'prefix', ...} -> '128 steps, blocks of 8, ...'."""
    algorithm = diffusion.get("algorithm", "low_confidence")
    if not decoder(algorithm).takes_steps:  # it commits what it accepts: its block length is a draft length
        parts = [f"drafts of {diffusion['block_length']}", algorithm]
    else:
        parts = [f"{diffusion['steps']} steps" if diffusion.get("threshold") is None else f"threshold {diffusion['threshold']}",
                 f"blocks of {diffusion['block_length']}", algorithm]
    if diffusion.get("cache", "none") != "none":
        parts.append(f"{diffusion['cache']} cache")
    return ", ".join(parts)


def sample(setting: dict, models: dict, prompt_ids: list[int], seed: int, config: EvalConfig):
    """The History of one answer under one setting."""
    if setting["kind"] == "ar":
        return generate_autoregressive(models["ar"](), prompt_ids, ARConfig(
            max_new_tokens=config.gen_length, temperature=config.temperature,
            repetition_penalty=config.repetition_penalty, dry_multiplier=config.dry_multiplier, seed=seed))
    return diffuse(models[setting["model"]](), prompt_ids, DiffusionConfig(
        gen_length=config.gen_length, temperature=config.temperature, repetition_penalty=config.repetition_penalty,
        dry_multiplier=config.dry_multiplier, seed=seed, **setting["diffusion"]))


class Tally:
    """One setting's answers so far, scored as the module docstring says."""

    def __init__(self) -> None:
        self.nll = self.tokens = self.seconds = 0.0
        self.entropies, self.repeats, self.lengths, self.per_forward, self.shown = [], [], [], [], []
        self.out_of_order, self.revisions = [], []
        self.leaks = 0

    def add(self, history, seconds: float, teacher: CausalLM, prompt_ids: list[int], tokenizer, prompt: str,
            show: bool) -> None:
        answer = history.answer_ids()
        self.seconds += seconds
        self.nll += teacher_nll(teacher, prompt_ids, answer)
        self.tokens += len(answer)
        self.entropies.append(unigram_entropy(answer))
        self.repeats.append(repeated_ngrams(answer))
        self.lengths.append(len(answer))
        self.per_forward.append(history.tokens_per_forward() or 0.0)
        self.out_of_order.append(history.out_of_order())
        self.revisions.append(history.revisions())
        self.leaks += leaked(answer)
        if show:
            self.shown.append({"prompt": prompt, "answer": tokenizer.decode(answer)})

    def row(self, setting: dict) -> dict:
        answers = len(self.lengths)
        return {"setting": setting["name"], **{k: v for k, v in setting.items() if k != "name"},
                "gen_ppl": perplexity(self.nll, self.tokens),
                "unigram_entropy_nats": sum(self.entropies) / answers, "repeated_4grams": sum(self.repeats) / answers,
                "mean_length": sum(self.lengths) / answers, "tokens_per_forward": sum(self.per_forward) / answers,
                "out_of_order": sum(self.out_of_order) / answers, "revisions": sum(self.revisions) / answers,
                "leaks": self.leaks, "answers": answers, "seconds_per_answer": self.seconds / answers,
                "samples": self.shown}


def evaluate(adapter_dir: Path, config: EvalConfig, device: str = "cpu", log=print, teacher_base=None,
             out: Path | None = None, command: str | None = None) -> dict:
    """Rows of the table; with `out`, the JSON so far is rewritten after every prompt (a cut run keeps its rows).

    The diffusion models answer in the dtype the page loads them in (`generation.dtypes.device_dtype`), so
    the seconds are what a visitor waits; the AR model, the baseline, too: in its faster dtype here
    (`generation.dtypes`, timed at its first load); the judge is the AR teacher in float32."""
    tokenizer, base = teacher_base if teacher_base is not None else load_smollm2(device, torch.float32)
    teacher = CausalLM(base, tokenizer, stop_ids=SMOLLM2_STOP_IDS, context_length=base.config.max_position_embeddings,
                       name="teacher")
    load_student = load_block_diffusion if config.objective == "block" else load_embedded_diffusion
    student_name = BLOCK_DIFFUSION_SMOLLM2 if config.objective == "block" else DIFFUSION_SMOLLM2
    ar = load_model(AR_SMOLLM2, device)
    dtypes = {name: device_dtype(name, device)[1] for name in (student_name, DIFFUSION_SMOLLM2)}
    dtypes[AR_SMOLLM2] = next(ar.module.parameters()).dtype
    models = {"ar": lambda: ar,
              "student": lru_cache(None)(lambda: load_student(device, dtypes[student_name], adapter_dir)),
              "any-order": lru_cache(None)(lambda: load_embedded_diffusion(device, dtypes[DIFFUSION_SMOLLM2]))}
    held_out = split_prompts()["held_out"]
    prompts = random.Random(0).sample(held_out, min(config.prompts, len(held_out)))
    rows = []
    result = {"config": asdict(config), "device": device, "dtypes": {k: str(v).removeprefix("torch.") for k, v in dtypes.items()},
              "ar_step_ms": {str(k).removeprefix("torch."): v for k, v in (cpu_step_ms(AR_SMOLLM2) or {}).items()},
              "judge": "SmolLM2-135M-Instruct (the AR teacher, float32)", "prompts": prompts, "rows": rows,
              "date": time.strftime("%Y-%m-%d"), "hardware": _hardware(device)}
    if command is not None:
        result["command"] = command  # the results page names it
    tallies = [(setting, Tally()) for setting in settings(config)]
    for setting, _ in tallies:  # loaded before the clock runs
        models[setting.get("model", "ar")]()
    if config.objective == "block":
        result["causal_temperature"] = models["student"]().causal_temperature
    for k, prompt in enumerate(prompts):
        prompt_ids = teacher.prompt_ids(messages(prompt))
        for seed in range(k * config.seeds, (k + 1) * config.seeds):
            for setting, tally in tallies:
                if k < setting.get("prompts", len(prompts)):
                    began = time.perf_counter()
                    history = sample(setting, models, prompt_ids, seed, config)
                    tally.add(history, time.perf_counter() - began, teacher, prompt_ids, tokenizer, prompt,
                              show=len(tally.shown) < config.samples_shown and seed % config.seeds == 0)
        rows[:] = [tally.row(setting) for setting, tally in tallies]
        log(f"prompt {k + 1}/{len(prompts)}: " + ", ".join(f"{row['setting']} {row['seconds_per_answer']:.1f} s"
                                                           for row in rows))
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=1))
    for row in rows:
        log(format_row(row))
    return result


def _hardware(device: str) -> str:
    """What ran the evaluation, e.g. 'AMD EPYC 7B13, 2 cores' (the CPU's model name from /proc/cpuinfo where it has one)."""
    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    return f"{names[0] if names else platform.processor() or 'CPU'}, {os.cpu_count()} cores"


def format_row(row: dict) -> str:
    setting = row["setting"] + (f" ({describe(row['diffusion'])})" if "diffusion" in row else "")
    return (f"| {setting} | {row['gen_ppl']:.1f} | {row['unigram_entropy_nats']:.2f} | {100 * row['repeated_4grams']:.0f}% | "
            f"{row['mean_length']:.0f} | {row.get('tokens_per_forward', 1.0):.2f} | {100 * row.get('out_of_order', 0):.0f}% | "
            f"{row.get('revisions', 0):.1f} | {row['leaks']}/{row['answers']} | {row['seconds_per_answer']:.1f} |")


def table(result: dict) -> str:
    """The markdown table for the model card."""
    head = ("| setting | gen. perplexity (teacher) | unigram entropy (nats) | repeated 4-grams | mean length (tokens) | "
            "tokens / forward | out of order | revisions | leaks | s / answer |\n|---|---|---|---|---|---|---|---|---|---|")
    return "\n".join([head] + [format_row(r) for r in result["rows"]])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, default=EMBEDDED_ADAPTER_DIR)
    parser.add_argument("--prompts", type=int, default=EvalConfig.prompts)
    parser.add_argument("--gen-length", type=int, default=EvalConfig.gen_length)
    parser.add_argument("--steps", type=int, nargs="+", default=list(EvalConfig.steps))
    parser.add_argument("--temperature", type=float, default=EvalConfig.temperature)
    parser.add_argument("--repetition-penalty", type=float, default=EvalConfig.repetition_penalty,
                        help="for the AR reference and every diffusion row alike")
    parser.add_argument("--dry-multiplier", type=float, default=EvalConfig.dry_multiplier,
                        help="the loop penalty (DRY), for every row alike")
    parser.add_argument("--objective", default=EvalConfig.objective, choices=("masked", "block"),
                        help="block: the block model's rows (pass its adapter with --adapter)")
    parser.add_argument("--seeds", type=int, default=EvalConfig.seeds, help="answers per prompt")
    parser.add_argument("--compare-prompts", type=int, default=EvalConfig.compare_prompts,
                        help="block: prompts for the any-order model's row")
    parser.add_argument("--out", type=Path, default=Path("runs/eval.json"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    config = EvalConfig(prompts=args.prompts, gen_length=args.gen_length, steps=tuple(args.steps),
                        temperature=args.temperature, repetition_penalty=args.repetition_penalty,
                        dry_multiplier=args.dry_multiplier, block_length=min(EvalConfig.block_length, args.gen_length),
                        objective=args.objective, seeds=args.seeds, compare_prompts=args.compare_prompts)
    flags = sys.argv[1:] if argv is None else argv
    result = evaluate(args.adapter, config, args.device, out=args.out,
                      command=" ".join(["python -m training.evaluate", *flags]))
    print(table(result))


if __name__ == "__main__":
    main()
