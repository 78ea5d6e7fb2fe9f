"""Stage 4: quality vs steps of the adapted model on held-out prompts (the project's protocol).

For each held-out prompt (a fixed, shuffled subset) and each setting, sample a `gen_length`-token
answer with the core sampler (`generation.diffuse`) from the model loaded exactly as the registry
loads it (`load_embedded_diffusion`), and the AR teacher's own answer (`generate_autoregressive`)
as the reference row. Every answer (cut at its first stop token) is scored the same way:
- generative perplexity under the AR teacher, conditioned on the same chat prompt, pooled over
  tokens: exp(sum NLL / sum tokens);
- unigram entropy of the answer's token ids, in nats, averaged over answers (with their mean length,
  since entropy grows with length);
- leaks: answers holding a mask or another special token (ids 0-16 other than the stop that ends
  them), and canvases with a mask left anywhere.
Seeds: answer k uses seed k (one seed per prompt, so seeds vary across prompts).

Left out: other judges (none offline), MAUVE and task accuracies.

    python -m training.evaluate --adapter assets/smollm2-diffusion-adapter --prompts 6 --out runs/eval.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from generation import ARConfig, DiffusionConfig, diffuse, generate_autoregressive
from generation.metrics import perplexity, teacher_nll, unigram_entropy
from generation.models import CausalLM
from generation.smollm2 import (
    EMBEDDED_ADAPTER_DIR, SMOLLM2_MASK_ID, SMOLLM2_SPECIAL_IDS, SMOLLM2_STOP_IDS, load_embedded_diffusion, load_smollm2,
)

from .prompts import messages, split_prompts


@dataclass(frozen=True)
class EvalConfig:
    prompts: int = 6  # held-out prompts (one seed each: seed = index); CPU-sized
    gen_length: int = 128  # answer canvas, as in the issue
    block_length: int = 32  # semi-AR blocks for the diffusion sampler
    steps: tuple[int, ...] = (128, 64, 32, 16, 8)  # gen_length x {1, 1/2, 1/4, 1/8, 1/16}
    algorithms: tuple[str, ...] = ("low_confidence", "entropy")
    temperature: float = 0.7  # the same for the AR reference and the diffusion samples (float64 draws)
    samples_shown: int = 3  # answers per setting kept as text for the model card


def leaked(answer_ids: list[int], canvas: list[int]) -> bool:
    """A special id inside the answer, or a mask anywhere on the final canvas."""
    specials = set(SMOLLM2_SPECIAL_IDS)
    return any(t in specials for t in answer_ids) or SMOLLM2_MASK_ID in canvas


def settings(config: EvalConfig) -> list[dict]:
    rows = [{"name": f"AR teacher (T={config.temperature})", "kind": "ar"}]
    for algorithm in config.algorithms:
        for steps in config.steps:
            rows.append({"name": f"{algorithm}, {steps} steps", "kind": "diffusion", "algorithm": algorithm,
                         "steps": steps})
    return rows


def sample(setting: dict, student, teacher: CausalLM, prompt_ids: list[int], seed: int, config: EvalConfig):
    """(answer ids, final canvas) for one setting."""
    if setting["kind"] == "ar":
        history = generate_autoregressive(teacher, prompt_ids, ARConfig(
            max_new_tokens=config.gen_length, temperature=config.temperature, seed=seed))
    else:
        history = diffuse(student, prompt_ids, DiffusionConfig(
            gen_length=config.gen_length, steps=setting["steps"], block_length=config.block_length,
            algorithm=setting["algorithm"], temperature=config.temperature, seed=seed))
    return history.answer_ids(), history.canvas


def evaluate(adapter_dir: Path, config: EvalConfig, device: str = "cpu", log=print, teacher_base=None,
             bf16_autocast: bool = False, out: Path | None = None) -> dict:
    """Rows of the table; with `out`, the JSON so far is rewritten after every row (a cut run keeps its rows)."""
    tokenizer, base = teacher_base if teacher_base is not None else load_smollm2(device, torch.float32)
    teacher = CausalLM(base, tokenizer, stop_ids=SMOLLM2_STOP_IDS, context_length=base.config.max_position_embeddings,
                       name="teacher")
    student = load_embedded_diffusion(device, torch.float32, adapter_dir)
    held_out = split_prompts()["held_out"]
    prompts = random.Random(0).sample(held_out, min(config.prompts, len(held_out)))
    rows = []
    result = {"config": asdict(config), "device": device, "student_matmuls": "bf16 autocast" if bf16_autocast else "float32",
              "judge": "SmolLM2-135M-Instruct (the AR teacher, float32)", "prompts": prompts, "rows": rows}
    for setting in settings(config):
        nll = tokens = 0.0
        entropies, lengths, leaks, shown, began = [], [], 0, [], time.perf_counter()
        for k, prompt in enumerate(prompts):
            prompt_ids = teacher.prompt_ids(messages(prompt))
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                                enabled=bf16_autocast and setting["kind"] == "diffusion"):
                answer, canvas = sample(setting, student, teacher, prompt_ids, seed=k, config=config)
            nll += teacher_nll(teacher, prompt_ids, answer)
            tokens += len(answer)
            entropies.append(unigram_entropy(answer))
            lengths.append(len(answer))
            leaks += leaked(answer, canvas)
            if k < config.samples_shown:
                shown.append({"prompt": prompt, "answer": tokenizer.decode(answer)})
        row = {"setting": setting["name"], **{k: v for k, v in setting.items() if k != "name"},
               "gen_ppl": perplexity(nll, tokens),
               "unigram_entropy_nats": sum(entropies) / len(entropies), "mean_length": sum(lengths) / len(lengths),
               "leaks": leaks, "answers": len(prompts), "seconds_per_answer": (time.perf_counter() - began) / len(prompts),
               "samples": shown}
        rows.append(row)
        log(format_row(row))
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=1))
    return result


def format_row(row: dict) -> str:
    return (f"| {row['setting']} | {row['gen_ppl']:.1f} | {row['unigram_entropy_nats']:.2f} | "
            f"{row['mean_length']:.0f} | {row['leaks']}/{row['answers']} | {row['seconds_per_answer']:.1f} |")


def table(result: dict) -> str:
    """The markdown table for the model card."""
    head = ("| setting | gen. perplexity (teacher) | unigram entropy (nats) | mean length (tokens) | "
            "leaks | s / answer |\n|---|---|---|---|---|---|")
    return "\n".join([head] + [format_row(r) for r in result["rows"]])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, default=EMBEDDED_ADAPTER_DIR)
    parser.add_argument("--prompts", type=int, default=EvalConfig.prompts)
    parser.add_argument("--gen-length", type=int, default=EvalConfig.gen_length)
    parser.add_argument("--steps", type=int, nargs="+", default=list(EvalConfig.steps))
    parser.add_argument("--temperature", type=float, default=EvalConfig.temperature)
    parser.add_argument("--out", type=Path, default=Path("runs/eval.json"))
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for the student (teacher, judge float32)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    config = EvalConfig(prompts=args.prompts, gen_length=args.gen_length, steps=tuple(args.steps),
                        temperature=args.temperature, block_length=min(EvalConfig.block_length, args.gen_length))
    result = evaluate(args.adapter, config, args.device, bf16_autocast=args.bf16, out=args.out)
    print(table(result))


if __name__ == "__main__":
    main()
