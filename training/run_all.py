"""The whole pipeline in one command: prompts -> distill -> (measure) -> compare -> train -> (calibrate) -> eval
-> card (calibrate: the block objective only).

    python -m training.run_all --budget smoke   # minutes on CPU; what tests/test_training.py runs
    python -m training.run_all --budget cpu     # the shipped adapter's CPU recipe (about two hours)
    python -m training.run_all --budget gpu     # the full recipe: >= 10M distilled, >= 100M trained tokens

A budget is a preset of numbers (`BUDGETS`); every number can be overridden by a flag, and
`--stages` runs a subset (each stage reads what the earlier ones left in `--workdir`, and records
what it measured in `<workdir>/run.json`). Distillation is resumable: finished shards are kept.
The cpu and gpu budgets write the adapter and its model card to assets/smollm2-diffusion-adapter;
smoke writes them under its workdir only.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from generation.bigrams import FILE as BIGRAMS_FILE
from generation.bigrams import Bigrams
from generation.smollm2 import BLOCK_ADAPTER_DIR, CALIBRATION_FILE, EMBEDDED_ADAPTER_DIR, load_smollm2

from . import adapt, calibrate, card, distill, evaluate, prompts, throughput

STAGES = ("prompts", "distill", "measure", "compare", "train", "calibrate", "eval", "card")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
HISTORY = "history.json"  # next to an adapter: every training run behind it, oldest first


@dataclass(frozen=True)
class Budget:
    name: str
    note: str  # one line for the model card
    max_prompts: int | None  # training prompts distilled (None = the whole grid)
    answers_per_prompt: int
    max_answers: int | None  # stop distilling after this many answers (None = every prompt x answers_per_prompt)
    max_answer_tokens: int  # = canvas: answers are cut where the student's canvas ends
    distill_batch: int
    val_prompts: int  # held-out prompts with teacher answers, only for the validation loss
    canvas: int
    batch_size: int
    train_steps: int
    train_seconds: float | None  # wall-clock safety stop for the main run
    compare_steps: int  # steps per variant in the equal-budget comparison (0 = skip it)
    rank: int
    lr: float
    eval_prompts: int
    eval_gen_length: int
    eval_steps: tuple[int, ...]
    measure: bool  # time fp32 vs bf16 first
    bf16: bool = True  # bf16 autocast in distillation (CPU) and training
    variant: str | None = None  # None = the comparison's winner
    pack_answers: bool = False  # keep the distilled answers in the repository (training/data/<budget>-distill.json.xz)
    objective: str = "masked"  # "masked": the any-order model; "block": the block-causal model (training/block.py)
    block_sizes: tuple[int, ...] = (8,)  # block objective: block size of each batch, cycled
    eval_seeds: int = 1  # answers per evaluation prompt, each with its own seed
    ar_weight: float = 0.0  # block objective: weight of the clean stream's AR loss (training/block.py)
    ar_target: str = "answers"  # block objective: the AR loss against the sampled answers or the teacher (adapt.AR_TARGETS)
    calibration_answers: int = calibrate.ANSWERS  # block objective: teacher answers its causal temperature is fitted on
    distill_seconds: float | None = None  # wall-clock stop for distillation (the plan's prefix; a later run goes on)


# The Budget fields whose flags take one of a few names (adapt.AdaptConfig checks the same lists).
CHOICES = {"objective": adapt.OBJECTIVES, "variant": adapt.VARIANTS, "ar_target": adapt.AR_TARGETS}

BUDGETS = {
    "smoke": Budget("smoke", "a plumbing check, not a model.", max_prompts=4, answers_per_prompt=1, max_answers=None,
                    max_answer_tokens=16, distill_batch=4, val_prompts=2, canvas=16, batch_size=2, train_steps=2,
                    train_seconds=None, compare_steps=1, rank=4, lr=5e-4, eval_prompts=1, eval_gen_length=16,
                    eval_steps=(4, 2), measure=False),
    "cpu": Budget("cpu", "trained on a 2-core CPU in about two hours end to end, so its token budgets are "
                  "about 45x (data) and 125x (training) below the GPU recipe's (see Budget).", max_prompts=None,
                  answers_per_prompt=1, max_answers=2048, max_answer_tokens=128, distill_batch=64, val_prompts=8,
                  canvas=128, batch_size=8, train_steps=600, train_seconds=3600, compare_steps=40, rank=16, lr=5e-4,
                  eval_prompts=4, eval_gen_length=128, eval_steps=(128, 64, 32, 16, 8), measure=True),
    "block-cpu": Budget("block-cpu", "trained on a shared 2-core CPU within one working session, so its token "
                        "budgets are far below the GPU recipe's (see Budget).", max_prompts=None, answers_per_prompt=2,
                        max_answers=None, max_answer_tokens=128, distill_batch=32, val_prompts=16, canvas=128,
                        batch_size=4, train_steps=2000, train_seconds=3600, compare_steps=0, rank=16, lr=5e-4,
                        eval_prompts=40, eval_gen_length=128, eval_steps=(128,), measure=False,
                        variant="lora+", pack_answers=True, objective="block", block_sizes=(8, 4, 8, 16, 8, 32),
                        eval_seeds=2, ar_weight=1.0, ar_target="teacher"),
    "block-gpu": Budget("block-gpu", "the full budget: >= 10M distilled answer tokens, >= 100M training tokens.",
                        max_prompts=None, answers_per_prompt=48, max_answers=None, max_answer_tokens=128,
                        distill_batch=1024, val_prompts=64, canvas=128, batch_size=32, train_steps=10_000,
                        train_seconds=None, compare_steps=0, rank=16, lr=3e-4, eval_prompts=123, eval_gen_length=128,
                        eval_steps=(128,), measure=False, variant="lora+", objective="block",
                        block_sizes=(8, 4, 8, 16, 8, 32), ar_weight=1.0, ar_target="teacher"),
    "gpu": Budget("gpu", "the full budget: >= 10M distilled answer tokens, >= 100M training tokens.",
                  max_prompts=None, answers_per_prompt=48, max_answers=None, max_answer_tokens=128, distill_batch=256,
                  val_prompts=64, canvas=128, batch_size=64, train_steps=10_000, train_seconds=None,
                  compare_steps=500, rank=16, lr=3e-4, eval_prompts=123, eval_gen_length=128,
                  eval_steps=(128, 64, 32, 16, 8), measure=False),
}


def hardware(device: str) -> str:
    """One line naming the machine, e.g. "AMD EPYC CPU, 2 cores, torch 2.13.0 with 2 threads"."""
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} GPU, torch {torch.__version__}"
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    name = names[0] if names else platform.processor() or platform.machine()
    return f"{name} CPU, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"


class Run:
    """The working directory of one pipeline run and its JSON record."""

    def __init__(self, workdir: Path, budget: Budget, device: str, adapter_out: Path, resume: bool = False,
                 init_adapter: Path | None = None):
        self.workdir, self.budget, self.device, self.adapter_out = workdir, budget, device, adapter_out
        self.resume, self.init_adapter = resume, init_adapter  # how the train stage starts
        workdir.mkdir(parents=True, exist_ok=True)
        self.record_path = workdir / "run.json"
        self.record = json.loads(self.record_path.read_text()) if self.record_path.exists() else {}
        self.record.update(budget=dataclasses.asdict(budget), device=device, hardware=hardware(device))
        self._base = None

    def base(self):
        """(tokenizer, module) of the teacher, loaded once per process."""
        if self._base is None:
            self._base = load_smollm2(self.device, torch.float32)
        return self._base

    def save(self, **entries) -> None:
        self.record.update(entries)
        self.record_path.write_text(json.dumps(self.record, indent=1))

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def stage_prompts(run: Run) -> None:
    split = prompts.write_prompts(run.workdir / "prompts.json")
    run.save(prompts={k: len(v) for k, v in split.items()})


def stage_distill(run: Run) -> None:
    b = run.budget
    split = json.loads((run.workdir / "prompts.json").read_text())
    tokenizer, module = run.base()
    config = distill.DistillConfig(answers_per_prompt=b.answers_per_prompt, max_answer_tokens=b.max_answer_tokens,
                                   batch_size=b.distill_batch, max_prompts=b.max_prompts, max_answers=b.max_answers,
                                   bf16=b.bf16 and run.device == "cpu", max_seconds=b.distill_seconds)
    packed = distill.packed_answers(b.name)
    if packed.exists():
        run.log(f"distill: {distill.unpack(packed, run.workdir / 'distill')} shards from {packed}")
    distill.distill(split["train"], run.workdir / "distill", config, run.device, module, tokenizer)
    if b.pack_answers:
        distill.pack(run.workdir / "distill", packed)
    val = dataclasses.replace(config, answers_per_prompt=1, max_prompts=b.val_prompts, max_seconds=None)
    distill.distill(split["held_out"], run.workdir / "val", val, run.device, module, tokenizer)
    run.save(distill={**distill.read_stats(run.workdir / "distill"), **dataclasses.asdict(config)})


def stage_measure(run: Run) -> None:
    tokenizer, module = run.base()
    run.save(throughput=throughput.measure(base=module, tokenizer=tokenizer, log=run.log))


def _adapt_config(run: Run, variant: str, steps: int, seconds: float | None) -> adapt.AdaptConfig:
    b = run.budget
    return adapt.AdaptConfig(variant=variant, rank=b.rank, alpha=b.rank, canvas=b.canvas, batch_size=b.batch_size,
                             lr=b.lr, max_steps=steps, max_seconds=seconds, bf16=b.bf16,
                             warmup_steps=min(20, max(1, steps // 10)), log_every=max(1, min(10, steps // 5)),
                             objective=b.objective, block_sizes=b.block_sizes, ar_weight=b.ar_weight,
                             ar_target=b.ar_target)


def stage_compare(run: Run) -> None:
    if run.budget.compare_steps == 0:
        return
    pairs, val = distill.load_shards(run.workdir / "distill"), distill.load_shards(run.workdir / "val")
    _, module = run.base()
    results = {}
    for variant in adapt.VARIANTS:
        run.log(f"compare: {variant}, {run.budget.compare_steps} steps")
        config = _adapt_config(run, variant, run.budget.compare_steps, None)
        results[variant] = adapt.train(pairs, config, run.workdir / "compare" / variant, base=copy.deepcopy(module),
                                       val_pairs=val, device=run.device, log=run.log)
    run.save(compare={k: {key: v[key] for key in ("trainable_parameters", "steps", "train_tokens", "seconds",
                                                  "final_loss", "val_loss")} for k, v in results.items()})


def stage_train(run: Run) -> None:
    variant = run.budget.variant
    if variant is None:
        compare = run.record.get("compare")
        variant = min(compare, key=lambda k: compare[k]["val_loss"]) if compare else "lora"
    pairs, val = distill.load_shards(run.workdir / "distill"), distill.load_shards(run.workdir / "val")
    _, module = run.base()
    config = _adapt_config(run, variant, run.budget.train_steps, run.budget.train_seconds)
    run.log(f"train: {variant}, {config.max_steps} steps at most, {len(pairs)} answers")
    result = adapt.train(pairs, config, run.workdir / "adapter", base=copy.deepcopy(module), val_pairs=val,
                         device=run.device, log=run.log, resume=run.resume, init_adapter=run.init_adapter)
    run.adapter_out.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        shutil.copy(run.workdir / "adapter" / name, run.adapter_out / name)
    (run.adapter_out / CALIBRATION_FILE).unlink(missing_ok=True)  # fitted to the adapter replaced: calibrate again
    history = training_history(run.init_adapter, result)
    (run.adapter_out / HISTORY).write_text(json.dumps(history, indent=1))
    if config.objective == "block":
        count_bigrams(pairs, module.config.vocab_size).save(run.adapter_out / BIGRAMS_FILE)
    run.save(train=result)


def count_bigrams(pairs: list[tuple[list[int], list[int]]], vocab_size: int) -> Bigrams:
    """The pair counts the block model's speculative drafts are rescored with (generation/bigrams.py): every answer
    the adapter trained on, after its prompt's last token."""
    return Bigrams.counted(([prompt[-1]] + answer for prompt, answer in pairs), vocab_size)


def training_history(init_adapter: Path | None, train: dict) -> list[dict]:
    """The runs behind an adapter: those behind the adapter this run continued from, then this one."""
    earlier = read_history(init_adapter) if init_adapter else []
    return earlier + [{k: v for k, v in train.items() if k != "config"}]


def read_history(adapter_dir: Path) -> list[dict]:
    """The training runs behind the adapter in `adapter_dir` (its history.json); [] when it has none."""
    path = adapter_dir / HISTORY
    return json.loads(path.read_text()) if path.exists() else []


def stage_calibrate(run: Run) -> None:
    """The block model's causal temperature (training/calibrate.py), beside its adapter; the any-order model has no
    causal path."""
    if run.budget.objective != "block":
        return
    pairs = distill.load_shards(run.workdir / "distill")
    run.save(calibrate=calibrate.calibrate(run.adapter_out, pairs, run.budget.calibration_answers, run.device,
                                           teacher=run.base()[1]))
    run.log(f"calibrate: {run.record['calibrate']}")


def stage_eval(run: Run) -> None:
    b = run.budget
    config = evaluate.EvalConfig(prompts=b.eval_prompts, gen_length=b.eval_gen_length, steps=b.eval_steps,
                                 block_length=min(32, b.eval_gen_length), objective=b.objective, seeds=b.eval_seeds)
    result = evaluate.evaluate(run.adapter_out, config, run.device, log=run.log, teacher_base=run.base(),
                               out=run.workdir / "eval.json")
    run.log("\n" + evaluate.table(result))


def stage_card(run: Run) -> None:
    """The card, and beside it the evaluation it was written from: `python -m bench.results` makes
    docs/results.md from every adapter's eval.json."""
    evaluation = json.loads((run.workdir / "eval.json").read_text())
    evaluation["command"] = f"python -m training.run_all --budget {run.budget.name} --stages eval card"
    text = card.model_card(run.record, evaluation, read_history(run.adapter_out))
    (run.adapter_out / "README.md").write_text(text)
    card.keep_evaluation(run.adapter_out, evaluation)
    run.log(f"model card -> {run.adapter_out / 'README.md'}")


def main(argv: list[str] | None = None) -> Run:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=tuple(BUDGETS), default="smoke")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--workdir", type=Path, default=None, help="default data/<budget>")
    parser.add_argument("--adapter-out", type=Path, default=None,
                        help="default assets/smollm2-diffusion-adapter (cpu, gpu) or <workdir>/adapter_out (smoke)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resume", action="store_true",
                        help="train: continue an interrupted run from <workdir>/adapter/checkpoint")
    parser.add_argument("--init-adapter", type=Path, default=None,
                        help="train: start from this adapter (e.g. the shipped one) instead of fresh weights")
    # Every Budget field is a flag too (--train-steps 200 ...); 0 for --max-prompts / --max-answers = no limit.
    for field in dataclasses.fields(Budget):
        if field.name not in ("name", "note"):
            flag = "--" + field.name.replace("_", "-")
            if field.name in ("eval_steps", "block_sizes"):
                parser.add_argument(flag, type=int, nargs="+", default=None)
            elif field.name in CHOICES:
                parser.add_argument(flag, choices=CHOICES[field.name], default=None)
            elif field.name in ("measure", "bf16"):
                parser.add_argument(flag, type=lambda v: v.lower() in ("1", "true", "yes"), default=None)
            else:
                parser.add_argument(flag, type=float if field.name in ("lr", "train_seconds", "distill_seconds") else int, default=None)
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Budget)
                 if f.name not in ("name", "note") and getattr(args, f.name) is not None}
    for name in ("max_prompts", "max_answers"):
        if overrides.get(name) == 0:
            overrides[name] = None
    for name in ("eval_steps", "block_sizes"):
        if name in overrides:
            overrides[name] = tuple(overrides[name])
    budget = dataclasses.replace(BUDGETS[args.budget], **overrides)
    workdir = args.workdir or Path("data") / budget.name
    shipped = BLOCK_ADAPTER_DIR if budget.objective == "block" else EMBEDDED_ADAPTER_DIR
    adapter_out = args.adapter_out or (workdir / "adapter_out" if budget.name == "smoke" else shipped)
    run = Run(workdir, budget, args.device, adapter_out, resume=args.resume, init_adapter=args.init_adapter)
    for stage in STAGES:
        if stage in args.stages and (stage != "measure" or budget.measure):
            began = time.perf_counter()
            run.log(f"stage {stage} ...")
            globals()[f"stage_{stage}"](run)
            run.save(**{f"seconds_{stage}": time.perf_counter() - began})
            run.log(f"stage {stage} done in {time.perf_counter() - began:.0f}s")
    return run


if __name__ == "__main__":
    main()
