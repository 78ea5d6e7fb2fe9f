"""Speed and quality of a diffusion answer with each KV cache mode, beside the AR partner.

    python -m bench.speed [--prompts 4] [--gen-length 128] [--block 32]
    python -m bench.speed --model smollm2-135m-block-diffusion --block 8 --split train   # choose its threshold
    python -m bench.speed --smoke     # tiny random models, seconds: checks the script, times nothing real

One run, one table, the same held-out prompts (training/prompts.py's held-out split, never trained
on) for every row, greedy. Rows: the AR partner (SmolLM2-135M-Instruct through its KV-cached
decoding loop, in whichever of bf16 / float32 makes its one-token step faster here: measured first
and printed), then the embedded diffusion model with cache none / prefix / dual, one token per
step, and with Fast-dLLM's threshold (0.5 ... 0.95); a block-causal model also by self-speculative
decoding (drafts of 2, 4, 8; greedy, so its answers are its causal path's greedy decode). Prompts are
the outer loop and settings the inner one, so load from other jobs on the machine falls on every row alike.

Columns: seconds per answer; forward passes and sequence positions computed per answer (AR: the
prompt prefill plus one position per new token); tokens per forward (canvas positions committed,
AR: tokens generated); tokens per second; speed-up over plain diffusion (cache none, no
threshold); time relative to AR; generative perplexity of the answers (cut at their first stop)
under the AR model in float32, pooled over tokens (`generation.metrics`: teacher_nll, perplexity).

Left out: sampling (temperature > 0), other judges, GPU timings (bench/gpu_step.py).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation import ARConfig, CausalLM, DiffusionConfig, DiffusionLM, diffuse, generate_autoregressive  # noqa: E402
from generation.decoders import SPECULATIVE  # noqa: E402
from generation.metrics import perplexity, teacher_nll  # noqa: E402
from generation.models import make_bidirectional  # noqa: E402
from generation.dtypes import cpu_step_ms  # noqa: E402
from generation.presets import AR_SMOLLM2, DIFFUSION_SMOLLM2  # noqa: E402
from generation.registry import load_model  # noqa: E402
from training.prompts import messages, split_prompts  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)


@dataclass
class Row:
    name: str
    run: object  # prompt ids -> History
    seconds: list[float] = field(default_factory=list)
    forwards: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # canvas positions committed (AR: tokens generated)
    nll: float = 0.0
    answer_tokens: int = 0


def diffusion_rows(lm: DiffusionLM, gen_length: int, block: int) -> list[Row]:
    """Each cache mode the model takes at one token per step, then the thresholds with its best cache
    (dual for a bidirectional model; a block-causal one takes none and prefix, its exact block cache), and
    for a block-causal model self-speculative decoding with drafts of 2, 4 and 8."""
    def row(name: str, **settings) -> Row:
        config = DiffusionConfig(**{"gen_length": gen_length, "steps": gen_length, "block_length": block, **settings})
        return Row(name, lambda ids: diffuse(lm, ids, config))

    caches = ("none", "prefix") if lm.block_size is not None else ("none", "prefix", "dual")
    rows = [row(f"diffusion, cache {cache}", cache=cache) for cache in caches]
    rows += [row("diffusion, cache none, threshold 0.9", threshold=0.9)]
    if lm.block_size is None:
        rows += [row("diffusion, cache prefix, threshold 0.9", cache="prefix", threshold=0.9)]
    rows += [row(f"diffusion, cache {caches[-1]}, threshold {t}", cache=caches[-1], threshold=t) for t in THRESHOLDS]
    if lm.block_size is not None:
        rows += [row(f"diffusion, speculative, drafts of {k}", algorithm=SPECULATIVE.name, cache="prefix", block_length=k)
                 for k in (2, 4, 8)]
    return rows


def ar_row(ar: CausalLM, gen_length: int, dtype: torch.dtype) -> Row:
    config = ARConfig(max_new_tokens=gen_length)
    return Row(f"AR {ar.name} ({str(dtype).replace('torch.', '')})", lambda ids: generate_autoregressive(ar, ids, config))


def run_all(rows: list[Row], prompts: list[list[int]], judge: CausalLM, log=print) -> None:
    """Every row on every prompt; the table so far is printed after each prompt (a cut run keeps it)."""
    for k, prompt_ids in enumerate(prompts):
        for row in rows:
            began = time.perf_counter()
            history = row.run(prompt_ids)
            row.seconds.append(time.perf_counter() - began)
            ar = history.kind == "autoregressive"
            row.forwards.append(history.forward_passes)
            row.positions.append(len(prompt_ids) + history.length - 1 if ar else history.computed_positions)
            row.tokens.append(history.length if ar else sum(len(s.positions) for s in history.steps))
            answer = history.answer_ids()
            row.nll += teacher_nll(judge, prompt_ids, answer)
            row.answer_tokens += len(answer)
        log(f"# after prompt {k + 1}/{len(prompts)}:")
        log(table(rows, plain=rows[1], ar=rows[0]))


def table(rows: list[Row], plain: Row, ar: Row) -> str:
    lines = ["| case | s / answer | forwards | positions | tokens / forward | tokens / s | speed-up vs plain "
             "| time / AR | gen. ppl | answer len |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        seconds = statistics.mean(row.seconds)
        ppl = perplexity(row.nll, row.answer_tokens)
        lines.append(
            f"| {row.name} | {seconds:.2f} | {statistics.mean(row.forwards):.1f} | {statistics.mean(row.positions):,.0f} | "
            f"{sum(row.tokens) / sum(row.forwards):.2f} | {sum(row.tokens) / sum(row.seconds):.1f} | "
            f"{statistics.mean(plain.seconds) / seconds:.2f}x | {seconds / statistics.mean(ar.seconds):.2f} | "
            f"{ppl:.2f} | {row.answer_tokens / len(row.seconds):.0f} |")
    return "\n".join(lines)


def real_models(prompt_count: int, diffusion: str = DIFFUSION_SMOLLM2, split: str = "held_out"):
    """(AR partner in its fastest dtype, the dtype line, diffusion model, float32 judge, prompt ids).

    `split`: "held_out" to report, "train" to choose settings without looking at the held-out prompts."""
    ar = load_model(AR_SMOLLM2, "cpu")  # in the dtype that steps faster here (generation/dtypes.py)
    fastest = next(ar.module.parameters()).dtype
    dtype_line = ("AR one-token step over a 200-token cache (median of 8): " +
                  ", ".join(f"{str(d).replace('torch.', '')} {ms:.1f} ms" for d, ms in cpu_step_ms(AR_SMOLLM2).items()) +
                  f" -> AR runs in {str(fastest).replace('torch.', '')}")
    judge = load_model(AR_SMOLLM2, "cpu", torch.float32)
    lm = load_model(diffusion, "cpu")
    pool = split_prompts()[split]
    chosen = random.Random(0).sample(pool, min(prompt_count, len(pool)))
    prompts = [judge.prompt_ids(messages(p)) for p in chosen]
    return ar, fastest, dtype_line, lm, judge, prompts


def tiny_models():
    """Random tiny Llamas (AR, bidirectional diffusion, judge = the AR) and two random prompts."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(0)
    ar = CausalLM(LlamaForCausalLM(config).eval(), tokenizer=None, stop_ids=(0,), name="tiny-ar")
    lm = DiffusionLM(make_bidirectional(LlamaForCausalLM(config).eval()), mask_id=127, shift_logits=True,
                     never_propose=(127,), stop_ids=(0,), name="tiny-diffusion")
    prompts = [list(range(5, 25)), list(range(30, 42))]
    return ar, torch.float32, "smoke: tiny random models, numbers mean nothing", lm, ar, prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--gen-length", type=int, default=128)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--model", default=DIFFUSION_SMOLLM2, help="the diffusion model (a registered name)")
    parser.add_argument("--split", default="held_out", choices=("held_out", "train"),
                        help="prompts: held_out to report, train to choose settings (thresholds) without the held-out ones")
    parser.add_argument("--smoke", action="store_true", help="tiny random models, 16 tokens (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.gen_length, args.block = 16, 8
        ar, dtype, dtype_line, lm, judge, prompts = tiny_models()
    else:
        ar, dtype, dtype_line, lm, judge, prompts = real_models(args.prompts, args.model, args.split)
    rows = [ar_row(ar, args.gen_length, dtype)] + diffusion_rows(lm, args.gen_length, args.block)
    diffuse(lm, prompts[0], DiffusionConfig(gen_length=args.block, steps=4, cache="prefix"))  # warm-up
    print(f"# CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (shared with other "
          f"jobs: one run, not a controlled measurement); {len(prompts)} {args.split} prompts, answers of "
          f"{args.gen_length} tokens, blocks of {args.block}, greedy; diffusion {lm.name} in "
          f"{str(next(lm.module.parameters()).dtype).replace('torch.', '')}, judge {judge.name} float32")
    print(f"# {dtype_line}")
    run_all(rows, prompts, judge)


if __name__ == "__main__":
    main()
