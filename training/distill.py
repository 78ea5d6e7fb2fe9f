"""Stage 2: self-distillation data, the AR teacher's own sampled answers to the training prompts.

For every training prompt the teacher (SmolLM2-135M-Instruct, causal) samples several answers
through its chat template, at a mix of temperatures, each at most `max_answer_tokens` long. Batches
are left-padded (so every row's answer starts at the same column) and generation stops at the
end-of-turn token. Kept per answer: its token ids up to and including the end-of-turn (or cut at
the bound), the prompt it answers, the temperature. Stored compactly as int32 tensors in shards
under data/ (never committed):

    data/distill/shard_00000.pt = {"prompt": [...], "prompt_ids": int32 flat, "prompt_offsets",
                                   "answer_ids": int32 flat, "answer_offsets", "temperature"}

Left out: filtering answers by quality (the student should imitate the teacher, flaws included).

    python -m training.distill --prompts data/prompts.json --out data/distill --answers-per-prompt 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import lzma
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from generation.models import chat_prompt_ids
from generation.smollm2 import SMOLLM2_END_OF_TURN_ID, SMOLLM2_ENDOFTEXT_ID, load_smollm2

from .prompts import messages


@dataclass(frozen=True)
class DistillConfig:
    answers_per_prompt: int = 2  # several samples per prompt: the student sees the teacher's spread
    temperatures: tuple[float, ...] = (0.7, 1.0)  # cycled over answers; 1.0 keeps the full distribution
    top_p: float = 0.95  # trims the far tail that makes temperature-1 samples derail
    max_answer_tokens: int = 128  # the student's canvas; an answer cut here simply fills the canvas
    batch_size: int = 32  # prompts generated together (left-padded)
    max_prompts: int | None = None  # budget: use only the first N training prompts (None = all)
    max_answers: int | None = None  # budget: stop after the first N answers of the batch order (None = all)
    shard_batches: int = 2  # batches per shard file, so a long run loses little if stopped (and the plan's
    # prefix is stable: a larger max_answers keeps the earlier shards, so packed answers are reused)
    bf16: bool = False  # bf16 autocast for the teacher's matmuls (measure: faster on AVX512-BF16 CPUs)
    max_seconds: float | None = None  # budget: stop after the shard that ran past this (the plan's prefix is kept,
    # so a later run with the same plan goes on from there)
    seed: int = 0


def answer_until_stop(row: list[int]) -> list[int]:
    """Cut a generated row after its first end-of-turn: [5, 6, 2, 0, 0] -> [5, 6, 2]."""
    if SMOLLM2_END_OF_TURN_ID in row:
        return row[: row.index(SMOLLM2_END_OF_TURN_ID) + 1]
    return row


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask), both (B, T), rows right-aligned: [[1, 2], [3]] -> [[1, 2], [pad, 3]]."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        attention[i, width - len(row):] = 1
    return ids, attention


@torch.no_grad()
def sample_answers(module, prompt_rows: list[list[int]], temperature: float, config: DistillConfig,
                   seed: int) -> list[list[int]]:
    """One sampled answer per prompt row, cut after end-of-turn."""
    ids, attention = left_pad(prompt_rows, SMOLLM2_ENDOFTEXT_ID)
    torch.manual_seed(seed)  # transformers samples from the global generator
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16 and ids.device.type == "cpu"):
        out = module.generate(
            input_ids=ids.to(module.device), attention_mask=attention.to(module.device),
            max_new_tokens=config.max_answer_tokens, do_sample=True, temperature=temperature,
            top_p=config.top_p, top_k=0, eos_token_id=[SMOLLM2_END_OF_TURN_ID],
            pad_token_id=SMOLLM2_ENDOFTEXT_ID,
        )
    return [answer_until_stop(row) for row in out[:, ids.shape[1]:].tolist()]


def batches(prompt_lengths: list[int], config: DistillConfig) -> list[list[tuple[int, float]]]:
    """Batches of (prompt index, temperature), in the order they are generated.

    Prompts come in a seeded random order and temperatures alternate along it, so any prefix, such as
    the cut at `max_answers`, samples every task type, topic and temperature evenly. Several answers per
    prompt are made in passes over that order, so raising `answers_per_prompt` or `max_answers` only
    adds batches at the plan's end (when each temperature's jobs filled whole shards before: a partly
    filled last shard is sorted anew, and `distill` then refuses its stale copy). A batch has one
    temperature (generate takes one); within a shard's worth of one temperature's jobs, prompts of
    similar length share a batch, to pad little; the temperatures' batches take turns."""
    order = torch.randperm(len(prompt_lengths), generator=torch.Generator().manual_seed(config.seed)).tolist()
    temperatures = config.temperatures  # pass p shifts them by p: a prompt's answers differ in temperature
    todo = [(i, temperatures[(k + p) % len(temperatures)])
            for p in range(config.answers_per_prompt) for k, i in enumerate(order)]
    todo = todo[: config.max_answers] if config.max_answers else todo
    window = config.batch_size * config.shard_batches
    per_temperature = []
    for temperature in config.temperatures:
        jobs = [job for job in todo if job[1] == temperature]
        runs = []
        for w in range(0, len(jobs), window):
            chunk = sorted(jobs[w:w + window], key=lambda job: prompt_lengths[job[0]])
            runs += [chunk[b:b + config.batch_size] for b in range(0, len(chunk), config.batch_size)]
        per_temperature.append(runs)
    return [batch for turn in itertools.zip_longest(*per_temperature) for batch in turn if batch]


def save_shard(path: Path, records: list[tuple[str, list[int], list[int], float]]) -> None:
    prompt_rows = [r[1] for r in records]
    answer_rows = [r[2] for r in records]
    torch.save({
        "prompt": [r[0] for r in records],
        "prompt_ids": torch.tensor(list(itertools.chain(*prompt_rows)), dtype=torch.int32),
        "prompt_offsets": _offsets(prompt_rows),
        "answer_ids": torch.tensor(list(itertools.chain(*answer_rows)), dtype=torch.int32),
        "answer_offsets": _offsets(answer_rows),
        "temperature": torch.tensor([r[3] for r in records], dtype=torch.float32),
    }, path)


def _offsets(rows: list[list[int]]) -> torch.Tensor:
    """_offsets([[1, 2], [3]]) -> tensor([0, 2, 3])"""
    return torch.tensor([0] + list(itertools.accumulate(map(len, rows))), dtype=torch.int64)


def _add_stats(out: Path, **counts) -> None:
    """Running totals over every shard ever written to `out` (a resumed run adds to them)."""
    path = out / "stats.json"
    stats = json.loads(path.read_text()) if path.exists() else {}
    for key, value in counts.items():
        stats[key] = stats.get(key, 0) + value
    path.write_text(json.dumps(stats))


def read_stats(out: Path) -> dict:
    """Totals of `out`: answers, answer_tokens, seconds, answer_tokens_per_s."""
    stats = json.loads((out / "stats.json").read_text())
    temperatures, prompts, finished = Counter(), set(), 0
    for path in sorted(out.glob("shard_*.pt")):
        shard = torch.load(path)
        temperatures.update(round(float(t), 3) for t in shard["temperature"])
        prompts.update(shard["prompt"])
        ends = shard["answer_ids"][shard["answer_offsets"][1:] - 1]
        finished += int((ends == SMOLLM2_END_OF_TURN_ID).sum())
    return {**stats, "answer_tokens_per_s": stats["answer_tokens"] / max(stats["seconds"], 1e-9),
            "answers_by_temperature": {str(k): v for k, v in sorted(temperatures.items())},
            "distinct_prompts": len(prompts), "finished_answers": finished}


SHARD_DTYPES = {"prompt_ids": torch.int32, "prompt_offsets": torch.int64, "answer_ids": torch.int32,
                "answer_offsets": torch.int64, "temperature": torch.float32}


def packed_answers(budget: str) -> Path:
    """Where a budget keeps its distilled answers in the repository: packed_answers("block-cpu") ->
    training/data/block-cpu-distill.json.xz."""
    return Path(__file__).resolve().parent / "data" / f"{budget}-distill.json.xz"


def pack(directory: Path, path: Path) -> None:
    """Every shard under `directory` and its running stats as one xz-compressed JSON file of token ids:
    the distilled answers the repository keeps, so the same answers are never distilled twice."""
    shards = {}
    for shard_path in sorted(directory.glob("shard_*.pt")):
        shard = torch.load(shard_path)
        shards[shard_path.name] = {k: v.tolist() if torch.is_tensor(v) else v for k, v in shard.items()}
    stats = json.loads((directory / "stats.json").read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(path, "wt") as file:
        json.dump({"stats": stats, "shards": shards}, file)


def unpack(path: Path, directory: Path) -> int:
    """Write the packed shards that `directory` lacks (a distillation with the same plan then skips
    them, since shard k always holds the plan's batches 2k and 2k+1); returns how many were written."""
    with lzma.open(path, "rt") as file:
        packed = json.load(file)
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, shard in packed["shards"].items():
        if not (directory / name).exists():
            torch.save({k: torch.tensor(v, dtype=SHARD_DTYPES[k]) if k in SHARD_DTYPES else v
                        for k, v in shard.items()}, directory / name)
            written += 1
    if not (directory / "stats.json").exists():
        (directory / "stats.json").write_text(json.dumps(packed["stats"]))
    return written


def load_shards(directory: Path) -> list[tuple[list[int], list[int]]]:
    """All (prompt ids, answer ids) pairs stored under `directory`, in shard order."""
    pairs = []
    for path in sorted(directory.glob("shard_*.pt")):
        shard = torch.load(path)
        p, po, a, ao = shard["prompt_ids"], shard["prompt_offsets"], shard["answer_ids"], shard["answer_offsets"]
        for i in range(len(shard["prompt"])):
            pairs.append((p[po[i]:po[i + 1]].tolist(), a[ao[i]:ao[i + 1]].tolist()))
    return pairs


def _check_shard_plan(path: Path, planned_prompts: list[str]) -> None:
    """A shard is skipped only if it holds the prompts this plan puts in it: one made with another batch
    size (shard size) or seed would otherwise count as done while the plan's answers never get made."""
    if torch.load(path)["prompt"] != planned_prompts:
        raise ValueError(f"{path} holds other prompts than this plan's shard (distilled with another batch size "
                         f"or seed?): distil into an empty directory, or with the settings that shard was made with")


def distill(prompts: list[str], out: Path, config: DistillConfig, device: str = "cpu", module=None,
            tokenizer=None) -> dict:
    """Write the shards; returns counts and throughput. Skips shards already written (resumable)."""
    if module is None:
        tokenizer, module = load_smollm2(device, torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    prompts = prompts[: config.max_prompts] if config.max_prompts else prompts
    prompt_ids = [chat_prompt_ids(tokenizer, messages(p)) for p in prompts]
    planned = batches([len(ids) for ids in prompt_ids], config)
    shard_size = config.shard_batches
    answer_tokens, began = 0, time.perf_counter()
    for s, start in enumerate(range(0, len(planned), shard_size)):
        path, shard_batches = out / f"shard_{s:05d}.pt", planned[start:start + shard_size]
        if path.exists():
            _check_shard_plan(path, [prompts[i] for batch in shard_batches for i, _ in batch])
            continue
        records, shard_began = [], time.perf_counter()
        for b, batch in enumerate(shard_batches, start=start):
            rows = [prompt_ids[i] for i, _ in batch]
            answers = sample_answers(module, rows, batch[0][1], config, seed=config.seed * 100_003 + b)
            records += [(prompts[i], prompt_ids[i], a, t) for (i, t), a in zip(batch, answers)]
            answer_tokens += sum(map(len, answers))
        save_shard(path, records)
        _add_stats(out, answers=len(records), answer_tokens=sum(len(r[2]) for r in records),
                   seconds=time.perf_counter() - shard_began)
        seconds = time.perf_counter() - began
        print(f"shard {s}: {len(records)} answers, {answer_tokens} answer tokens so far, "
              f"{answer_tokens / seconds:.0f} answer tokens/s", flush=True)
        if config.max_seconds is not None and seconds >= config.max_seconds:
            print(f"stopped after shard {s}: {seconds:.0f} s of distillation (max_seconds)", flush=True)
            break
    seconds = time.perf_counter() - began
    return {"answers": sum(map(len, planned)), "answer_tokens_this_run": answer_tokens, "seconds": seconds,
            "answer_tokens_per_s": answer_tokens / max(seconds, 1e-9)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=Path, default=Path("data/prompts.json"))
    parser.add_argument("--out", type=Path, default=Path("data/distill"))
    parser.add_argument("--answers-per-prompt", type=int, default=DistillConfig.answers_per_prompt)
    parser.add_argument("--max-prompts", type=int, default=None)
    parser.add_argument("--max-answers", type=int, default=None,
                        help="stop after N answers (an even sample of prompts and temperatures)")
    parser.add_argument("--max-answer-tokens", type=int, default=DistillConfig.max_answer_tokens)
    parser.add_argument("--batch-size", type=int, default=DistillConfig.batch_size)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--split", default="train", choices=("train", "held_out"),
                        help="held_out only for validation answers (never trained on)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    config = DistillConfig(answers_per_prompt=args.answers_per_prompt, max_prompts=args.max_prompts,
                           max_answers=args.max_answers,
                           max_answer_tokens=args.max_answer_tokens, batch_size=args.batch_size, bf16=args.bf16)
    prompts = json.loads(args.prompts.read_text())[args.split]
    print(json.dumps(distill(prompts, args.out, config, args.device)))


if __name__ == "__main__":
    main()
