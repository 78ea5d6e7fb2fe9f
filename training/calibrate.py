"""Stage: the block model's causal path calibrated to its teacher by one temperature (temperature scaling, Guo et
al., arXiv 1706.04599, fitted by KL divergence to the teacher instead of by labels).

The block model's causal path (the clean stream, what speculative and verified decoding sample), where it learnt the
next token from the teacher's answers sampled at T=0.7 and T=1.0 (training/block.py's AR loss against the answers):
sharpened answers, so the student's own distribution is sharper than the teacher's, and sampling it at the page's
temperature sharpens it again (fewer distinct words, more loops than the AR model beside it at the same
temperature). One number undoes most of it: the temperature s that makes softmax(student logits / s) closest to the
teacher's next-token distribution, mean KL(teacher || student / s) over the tokens of the teacher's own answers to
training prompts (the contexts the student meets when it writes like its teacher). An AR loss against the teacher's
distribution leaves little to undo (s near 1), but the stage measures it either way. The samplers divide the causal
path's logits by s before the page's temperature (`DiffusionLM.causal_temperature`, generation/speculative.py
`commit`); the drafts are unchanged (they are chosen by their argmax and confidence, which a temperature hardly
moves).

Written beside the adapter as FILE (generation/smollm2.py reads it at load):

    python -m training.calibrate --adapter assets/smollm2-135m-block-diffusion   # on the committed answers
    python -m training.run_all --budget block-cpu --stages calibrate   # the pipeline's stage, on its workdir's

Left out: a temperature per position or per token (one scalar is what temperature scaling is), calibrating the
masked block's predictions (they have no teacher distribution to match: the teacher never sees a mask).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import torch

from generation.smollm2 import CALIBRATION_FILE, load_block_diffusion, load_smollm2

from . import distill

ANSWERS = 40  # teacher answers fitted on (about 4,200 answer tokens: one temperature needs few)
GRID = tuple(round(0.5 + 0.01 * i, 2) for i in range(151))  # the temperatures tried: 0.50, 0.51, ..., 2.00


def kl_by_temperature(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                      grid: tuple[float, ...] = GRID) -> torch.Tensor:
    """Summed KL(softmax(teacher) || softmax(student / s)) over the rows (N, V), for every s of `grid`, in nats."""
    teacher = torch.log_softmax(teacher_logits.double(), dim=-1)
    p = teacher.exp()
    student = student_logits.double()
    return torch.stack([(p * (teacher - torch.log_softmax(student / s, dim=-1))).sum() for s in grid])


def fit(teacher, student, pairs: list[tuple[list[int], list[int]]], grid: tuple[float, ...] = GRID,
        device: str = "cpu") -> dict:
    """The temperature of `grid` with the least mean KL from the teacher, over the answer tokens of `pairs` (prompt
    ids, answer ids): {"causal_temperature", "kl_fitted", "kl_at_1", "answers", "tokens"}. `teacher` and `student`:
    causal modules on `device` returning `.logits` (the student called without a mask is its causal path)."""
    total, tokens = torch.zeros(len(grid), dtype=torch.float64), 0
    with torch.no_grad():
        for prompt, answer in pairs:
            ids = torch.tensor([prompt + answer], device=device)
            rows = slice(len(prompt) - 1, len(prompt) + len(answer) - 1)  # row i predicts token i + 1
            total += kl_by_temperature(teacher(ids).logits[0, rows], student(ids).logits[0, rows], grid).cpu()
            tokens += len(answer)
    mean = total / max(tokens, 1)
    best = int(mean.argmin())
    return {"causal_temperature": grid[best], "kl_fitted": float(mean[best]), "kl_at_1": float(mean[grid.index(1.0)]),
            "answers": len(pairs), "tokens": tokens}


def calibrate(adapter_dir: Path, pairs: list[tuple[list[int], list[int]]], answers: int, device: str = "cpu",
              teacher=None, seed: int = 0) -> dict:
    """Fit on `answers` of `pairs` (a seeded random sample, float32 models) and write FILE beside the adapter."""
    pairs = random.Random(seed).sample(pairs, min(answers, len(pairs)))
    teacher = teacher if teacher is not None else load_smollm2(device, torch.float32)[1]
    student = load_block_diffusion(device, torch.float32, adapter_dir).module
    result = fit(teacher, student, pairs, device=device)
    (adapter_dir / CALIBRATION_FILE).write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit the block model's causal temperature to its teacher.")
    parser.add_argument("--adapter", type=Path, required=True, help="the block adapter's directory")
    parser.add_argument("--packed", type=Path, default=distill.packed_answers("block-cpu"),
                        help="the teacher's answers to training prompts, packed (training.distill.pack)")
    parser.add_argument("--answers", type=int, default=ANSWERS, help="how many of them to fit on")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as shards:
        distill.unpack(args.packed, Path(shards))
        pairs = distill.load_shards(Path(shards))
    print(json.dumps(calibrate(args.adapter, pairs, args.answers), indent=1))


if __name__ == "__main__":
    main()
