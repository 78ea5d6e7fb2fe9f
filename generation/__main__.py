"""Headless generation: `python -m generation "prompt"`.

Runs one diffusion generation (and with --ar one autoregressive generation) on a prompt, prints
each answer and a one-line summary, and writes the histories as JSON when asked. With --sweep, runs
the diffusion model at several step counts instead and prints quality against steps (generation.sweep),
judged by the --ar model. With --infill "text with ___ blanks" (or --constraints "0:Once, 5:upon") the
diffusion model fills only the blanks (generation/infill.py); the AR model continues the given text before
the first blank. For teachers' scripts and benchmarks; the page is app.py.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from .autoregressive import generate_autoregressive
from .config import ALGORITHMS, CACHE_MODES, ARConfig, ConfigError, DiffusionConfig
from .infill import DEFAULT_BLANK, encoder, parse_constraints, parse_template
from .models import ModelUnavailable
from .presets import AR_SMOLLM2, DIFFUSION_SMOLLM2
from .registry import load_model
from .sampler import diffuse
from .sweep import default_settings, stream_sweep

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m generation", description=__doc__.split("\n\n")[0])
    p.add_argument("prompt")
    p.add_argument("--model", default=DIFFUSION_SMOLLM2, help="diffusion model name or path")
    p.add_argument("--ar", nargs="?", const=AR_SMOLLM2, default=None, metavar="MODEL",
                   help=f"also run an autoregressive model (default {AR_SMOLLM2})")
    p.add_argument("--no-diffusion", action="store_true", help="run only the --ar model")
    d = DiffusionConfig()
    p.add_argument("--gen-length", type=int, default=d.gen_length)
    p.add_argument("--steps", type=int, default=None, help="default: gen-length (one token per step)")
    p.add_argument("--block-length", type=int, default=None)
    p.add_argument("--algorithm", choices=ALGORITHMS, default=d.algorithm)
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--top-p", type=float, default=d.top_p)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty,
                   help="above 1: tokens already in the prompt or the answer less likely (both models); 1 = off")
    p.add_argument("--dry-multiplier", type=float, default=d.dry_multiplier,
                   help="loop penalty (DRY): above 0, a token that would repeat a stretch of the text less likely; 0 = off")
    p.add_argument("--alg-temp", type=float, default=d.alg_temp)
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--cache", choices=CACHE_MODES, default=d.cache,
                   help="KV cache: none (the published loop), prefix or dual (Fast-dLLM; exact block cache: prefix)")
    p.add_argument("--cfg-scale", type=float, default=d.cfg_scale)
    p.add_argument("--seed", type=int, default=d.seed)
    given = p.add_mutually_exclusive_group()
    given.add_argument("--infill", metavar="TEMPLATE",
                       help="fill only the blanks of this text: ___ = --blank-length tokens, ___8 = 8 tokens")
    given.add_argument("--constraints", metavar="PAIRS", help="pin words at answer token positions: '0:Once, 5:upon'")
    p.add_argument("--blank-length", type=int, default=DEFAULT_BLANK, help="tokens in a ___ blank")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--dtype", choices=DTYPES, default=None)
    p.add_argument("--history-json", metavar="PATH", help="write {diffusion, autoregressive} histories here")
    p.add_argument("--sweep", nargs="*", type=int, metavar="STEPS",
                   help="quality vs steps: run these step counts (none given: gen-length x 1, 1/2, 1/4, 1/8, and a "
                        "0.9 threshold row where the algorithm takes one), judged by the --ar model")
    p.add_argument("--sweep-json", metavar="PATH", help="with --sweep: write the rows (histories included) here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    messages = [{"role": "user", "content": args.prompt}]
    histories = {}
    try:
        diffusion_config = DiffusionConfig(
            gen_length=args.gen_length, steps=args.steps or args.gen_length, block_length=args.block_length,
            algorithm=args.algorithm, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
            repetition_penalty=args.repetition_penalty, dry_multiplier=args.dry_multiplier, alg_temp=args.alg_temp,
            threshold=args.threshold, cfg_scale=args.cfg_scale, seed=args.seed, cache=args.cache)
        ar_config = ARConfig(max_new_tokens=args.gen_length, temperature=args.temperature,
                             top_p=args.top_p, top_k=args.top_k, repetition_penalty=args.repetition_penalty,
                             dry_multiplier=args.dry_multiplier, seed=args.seed)
        dtype = DTYPES[args.dtype] if args.dtype else None
        if args.sweep is not None:
            return run_sweep_cli(args, messages, diffusion_config, ar_config, dtype)
        spec = (parse_template(args.infill, args.blank_length) if args.infill is not None
                else parse_constraints(args.constraints) if args.constraints is not None else None)
        if not args.no_diffusion:
            model = load_model(args.model, args.device, dtype)
            infill = None if spec is None else spec.canvas(encoder(model.tokenizer), model.mask_id, model.stop_ids,
                                                           diffusion_config.gen_length)
            history = diffuse(model, model.prompt_ids(messages), diffusion_config, infill=infill)
            histories["diffusion"] = history
            report("diffusion", model, history)
        if args.ar:
            model = load_model(args.ar, args.device, dtype)
            prefix = [] if spec is None else spec.prefix(encoder(model.tokenizer))
            history = generate_autoregressive(model, model.prompt_ids(messages), ar_config, prefix=prefix)
            histories["autoregressive"] = history
            report("autoregressive", model, history)
    except (ConfigError, ModelUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.history_json:
        with open(args.history_json, "w") as f:
            json.dump({kind: json.loads(h.to_json()) for kind, h in histories.items()}, f)
    return 0


def run_sweep_cli(args, messages, config: DiffusionConfig, ar_config: ARConfig, dtype) -> int:
    """Print one table row per finished setting (AR reference first); write the rows when asked."""
    model = load_model(args.model, args.device, dtype)
    judge = load_model(args.ar or AR_SMOLLM2, args.device, dtype)
    settings = [{"steps": steps} for steps in args.sweep] or default_settings(config, model)
    print(f"judge: {judge.name}\n| setting | steps | gen. perplexity | unigram entropy (nats) | tokens | seconds |"
          "\n|---|---|---|---|---|---|")
    rows = []
    for row in stream_sweep(model, judge, messages, config, settings, ar_config):
        rows.append(row.to_dict())
        print(f"| {row.label} | {row.steps} | {row.perplexity:.1f} | {row.entropy:.2f} | {row.answer_tokens} | "
              f"{row.seconds:.2f} |", flush=True)
    if args.sweep_json:
        with open(args.sweep_json, "w") as f:
            json.dump({"model": model.name, "judge": judge.name, "prompt": args.prompt, "rows": rows}, f)
    return 0


def report(kind: str, model, history) -> None:
    answer = model.tokenizer.decode(history.answer_ids(), skip_special_tokens=True)
    first = history.seconds_to_first_token()
    print(f"--- {kind} ({model.name})\n{answer.strip()}")
    print(f"[{kind}] {len(history.steps)} steps, {history.forward_passes} forward passes, "
          f"{len(history.answer_ids())} answer tokens, {history.seconds:.2f} s "
          f"(first token {first:.2f} s)" if first is not None else f"[{kind}] no tokens")


if __name__ == "__main__":
    sys.exit(main())
