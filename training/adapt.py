"""Stage 3: adaptation, SmolLM2 (causal) -> masked diffusion LM, the Dream / DiffuLLaMA recipe.

One training step, for a batch of (prompt, teacher answer) pairs:
1. lay out `prompt + canvas` per row, the canvas being the answer (with its end-of-turn) padded with
   <|endoftext|> to `canvas` tokens, exactly what the sampler fills in; rows are right-padded to a
   common length and those columns are switched off by the attention mask;
2. draw one noise level t per row, low-discrepancy across the batch (t_b = eps + (1 - eps) *
   ((u + b / B) mod 1), one uniform u), and mask each canvas token with probability t; the prompt is
   never masked;
3. run the bidirectional transformer body (`model.model`) once, gather the hidden states one to the
   left of every masked position (Dream's shift: the state at i-1 predicts token i), project only
   those rows through `lm_head`, and take loss = sum over masked tokens of CE / t, divided by the
   number of canvas tokens (the ELBO of masked diffusion, MDLM / LLaDA).

Parameters: LoRA (peft) on every linear layer of the body; variant "lora+" also trains the RMS
norms and the embedding rows of the mask, end-of-turn and padding tokens (peft `modules_to_save`
and `trainable_token_indices`). The result is saved as a peft adapter that
`generation.smollm2.load_embedded_diffusion` merges into the bidirectional base.

Left out: a time embedding (Dream and DiffuLLaMA have none), attention-mask annealing, gradient
accumulation (batches are small enough for CPU RAM), multi-device training.

    python -m training.adapt --data data/distill --out runs/adapter --max-seconds 3600
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from generation.models import make_bidirectional
from generation.smollm2 import SMOLLM2_END_OF_TURN_ID, SMOLLM2_ENDOFTEXT_ID, SMOLLM2_MASK_ID, load_smollm2

from . import block
from .distill import load_shards

VARIANTS = ("lora", "lora+")
OBJECTIVES = ("masked", "block")  # any-order masked diffusion (bidirectional) | block diffusion (block-causal)
AR_TARGETS = ("answers", "teacher")  # the block objective's AR loss against: the sampled answers | the teacher


@dataclass(frozen=True)
class AdaptConfig:
    variant: str = "lora"  # "lora": adapters only; "lora+": also norms and the special-token embeddings
    rank: int = 32  # LoRA rank; 32 on all linear layers is ~9.8M parameters (~20 MB in bf16)
    alpha: int = 32  # LoRA scale alpha/rank = 1
    canvas: int = 128  # answer canvas length, as the sampler's gen_length in the evaluation
    batch_size: int = 8  # rows per step
    lr: float = 5e-4  # peak learning rate (LoRA tolerates high rates; the CPU budget is short)
    warmup_steps: int = 20  # linear warm-up, then cosine decay to 10% by the end of the budget
    max_steps: int = 1000  # budget in optimizer steps ...
    max_seconds: float | None = None  # ... or in wall-clock seconds, whichever ends first
    eps: float = 1e-3  # smallest noise level t (as Dream)
    bf16: bool = True  # bf16 autocast for the body's matmuls (faster on AVX512-BF16 CPUs and GPUs)
    seed: int = 0
    log_every: int = 10  # steps between log lines
    save_every: int = 100  # steps between adapter checkpoints (the last one is kept if time runs out)
    checkpoint_seconds: float = 300.0  # wall-clock between resumable checkpoints (adapter + optimizer + data order)
    objective: str = "masked"  # OBJECTIVES: "block" trains the block-causal model (training/block.py)
    block_sizes: tuple[int, ...] = (8,)  # block objective: one size per batch, cycled (a mix serves several)
    ar_weight: float = 0.0  # block objective: + this x the clean stream's next-token loss (training/block.py)
    ar_target: str = "answers"  # AR_TARGETS: cross-entropy on the teacher's sampled answers, or KL from the teacher

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; valid: {', '.join(VARIANTS)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if self.ar_target not in AR_TARGETS:
            raise ValueError(f"unknown AR target {self.ar_target!r}; valid: {', '.join(AR_TARGETS)}")


# ---- the objective (pure functions, tested on a tiny random model)


def low_discrepancy_t(batch: int, eps: float, generator: torch.Generator) -> torch.Tensor:
    """One noise level per row, evenly spread over (eps, 1]: B=4, u=0.1 -> eps + (1-eps)*[.1, .35, .6, .85]."""
    u = torch.rand(1, generator=generator)
    return eps + (1 - eps) * ((u + torch.arange(batch) / batch) % 1)


def layout(pairs: list[tuple[list[int], list[int]]], canvas: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids (B, T), attention (B, T), canvas_start (B,)): prompt + answer padded to `canvas`, right-padded rows."""
    rows, starts = [], []
    for prompt, answer in pairs:
        answer = list(answer[:canvas])
        rows.append(list(prompt) + answer + [SMOLLM2_ENDOFTEXT_ID] * (canvas - len(answer)))
        starts.append(len(prompt))
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), SMOLLM2_ENDOFTEXT_ID, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        attention[i, :len(row)] = 1
    return ids, attention, torch.tensor(starts)


def noise(ids: torch.Tensor, canvas_start: torch.Tensor, canvas: int, t: torch.Tensor,
          generator: torch.Generator) -> torch.Tensor:
    """Boolean (B, T): canvas positions masked with probability t of their row; prompt and tail never."""
    column = torch.arange(ids.shape[1])[None, :]  # (1, T)
    in_canvas = (column >= canvas_start[:, None]) & (column < canvas_start[:, None] + canvas)
    return in_canvas & (torch.rand(ids.shape, generator=generator) < t[:, None])


def diffusion_loss(causal_lm, ids: torch.Tensor, attention: torch.Tensor, masked: torch.Tensor,
                   t: torch.Tensor, canvas: int, mask_id: int, shift: bool = True) -> torch.Tensor:
    """(1/t)-weighted CE over masked positions / canvas tokens; only masked rows reach the vocabulary."""
    noisy = ids.masked_fill(masked, mask_id)
    hidden = causal_lm.model(input_ids=noisy, attention_mask=attention).last_hidden_state  # (B, T, C)
    rows, cols = masked.nonzero(as_tuple=True)  # (N,), (N,)
    logits = causal_lm.lm_head(hidden[rows, cols - 1 if shift else cols]).float()  # (N, V)
    ce = F.cross_entropy(logits, ids[rows, cols], reduction="none")  # (N,)
    return (ce / t.to(ce.device)[rows]).sum() / (ids.shape[0] * canvas)


# ---- the model


def peft_config(config: AdaptConfig):
    from peft import LoraConfig

    extra = {}
    if config.variant == "lora+":
        extra = dict(modules_to_save=["input_layernorm", "post_attention_layernorm", "norm"],
                     trainable_token_indices={"embed_tokens": [SMOLLM2_ENDOFTEXT_ID, SMOLLM2_END_OF_TURN_ID,
                                                               SMOLLM2_MASK_ID]})
    return LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0, target_modules="all-linear",
                      **extra)


def student(base: torch.nn.Module, config: AdaptConfig, init_adapter: Path | None = None):
    """The base with trainable adapters (a PeftModel): fresh, or continuing from `init_adapter`.

    The masked objective makes the base bidirectional; the block objective keeps it causal, since its
    4D attention mask (training/block.py) carries the block structure."""
    from peft import PeftModel, get_peft_model

    torch.manual_seed(config.seed)
    if config.objective == "masked":
        base = make_bidirectional(base)
    if init_adapter is not None:
        return PeftModel.from_pretrained(base, str(init_adapter), is_trainable=True)
    return get_peft_model(base, peft_config(config))


def frozen_teacher(model):
    """The AR teacher inside a student (a PeftModel): its base with the adapter switched off, called as
    teacher(input_ids) -> output with .logits."""
    def teacher(input_ids: torch.Tensor):
        with model.disable_adapter():
            return model.get_base_model()(input_ids=input_ids)
    return teacher


def batch_loss(causal_lm, batch, config: AdaptConfig, generator: torch.Generator, step: int = 0,
               t: torch.Tensor | None = None, validation: bool = False, teacher=None) -> tuple[torch.Tensor, int, int]:
    """(loss, tokens processed, masked tokens) of one batch under the config's objective.

    `t` fixes the masked objective's noise levels (validation); the block objective cycles
    `block_sizes` by step and adds `ar_weight` x its AR loss, except in `validation` (the diffusion
    loss alone, comparable across runs)."""
    device = next(causal_lm.parameters()).device
    if config.objective == "block":
        size = config.block_sizes[step % len(config.block_sizes)]
        streams = block.layout(batch, size, config.canvas)
        masked = block.complementary_noise(streams, config.eps, generator)
        with_ar = config.ar_weight > 0 and not validation
        loss, ar = block.block_diffusion_loss(causal_lm, streams, masked, SMOLLM2_MASK_ID, ar=with_ar, teacher=teacher)
        return loss + config.ar_weight * ar if with_ar else loss, int(streams["valid"].sum()), int(masked.sum())
    ids, attention, starts = layout(batch, config.canvas)
    t = low_discrepancy_t(len(batch), config.eps, generator) if t is None else t
    masked = noise(ids, starts, config.canvas, t, generator)
    loss = diffusion_loss(causal_lm, ids.to(device), attention.to(device), masked.to(device), t, config.canvas,
                          SMOLLM2_MASK_ID)
    return loss, int(attention.sum()), int(masked.sum())


def learning_rate(step: int, config: AdaptConfig, seconds: float = 0.0) -> float:
    """Warm-up, then cosine decay driven by whichever budget (steps or seconds) is further spent, so a
    run stopped by the clock still ends at the low rate."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    if config.max_seconds:
        progress = max(progress, seconds / config.max_seconds)
    progress = min(1.0, progress)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def validation_loss(model, pairs, config: AdaptConfig, levels: int = 4) -> float:
    """The objective on held-out answers with a fixed seed, comparable across runs: the masked objective
    at fixed noise levels t in {1/8, 3/8, 5/8, 7/8}; the block objective at every block size it trains."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    device_type = next(causal_lm.parameters()).device.type
    generator = torch.Generator().manual_seed(1234)
    rounds = [dict(step=s) for s in range(len(config.block_sizes))] if config.objective == "block" else [
        dict(t=(level + 0.5) / levels) for level in range(levels)]
    total, count = 0.0, 0
    for start in range(0, len(pairs), config.batch_size):
        batch = pairs[start:start + config.batch_size]
        for spec in rounds:
            t = torch.full((len(batch),), spec["t"]) if "t" in spec else None
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=config.bf16):
                loss, _, _ = batch_loss(causal_lm, batch, config, generator, spec.get("step", 0), t, validation=True)
            total, count = total + float(loss) * len(batch), count + len(batch)
    return total / max(count, 1)


CHECKPOINT = "checkpoint"  # <out>/checkpoint/: the adapter plus trainer.pt, written every checkpoint_seconds


def save_checkpoint(model, optimizer, out: Path, state: dict) -> None:
    """Adapter, optimizer, counters, random states and the data queue, written atomically enough that a
    kill mid-write leaves the previous checkpoint usable (write to a temp dir, then rename)."""
    final, temp = out / CHECKPOINT, out / (CHECKPOINT + ".tmp")
    shutil.rmtree(temp, ignore_errors=True)
    model.save_pretrained(temp)
    torch.save({**state, "optimizer": optimizer.state_dict()}, temp / "trainer.pt")
    shutil.rmtree(final, ignore_errors=True)
    temp.rename(final)


def train(pairs, config: AdaptConfig, out: Path, base=None, val_pairs=None, device: str = "cpu",
          log=print, resume: bool = False, init_adapter: Path | None = None) -> dict:
    """Train and save the adapter to `out`; returns the run's measured numbers.

    With `resume`, continue from `out/checkpoint` (same config): the step, the optimizer, the data
    order and the clock carry on, so an interrupted run ends where an uninterrupted one would. With
    `init_adapter`, start from those adapter weights (e.g. the shipped adapter) with a fresh optimizer."""
    if base is None:
        _, base = load_smollm2(device, torch.float32)
    checkpoint = out / CHECKPOINT
    resuming = resume and (checkpoint / "trainer.pt").exists()
    model = student(base, config, checkpoint if resuming else init_adapter)
    model.train()
    causal_lm = model.get_base_model()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0, betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(config.seed)
    order = random.Random(config.seed)
    state = dict(step=0, tokens=0, masked_tokens=0, seconds=0.0, losses=[], queue=[])
    if resuming:
        saved = torch.load(checkpoint / "trainer.pt", weights_only=False)
        optimizer.load_state_dict(saved.pop("optimizer"))
        generator.set_state(saved.pop("generator"))
        order.setstate(saved.pop("order"))
        state.update(saved)
        log(f"resumed from {checkpoint} at step {state['step']} ({state['seconds']:.0f}s trained)")
    began = time.perf_counter() - state["seconds"]
    last_checkpoint = time.perf_counter()
    device_type = torch.device(device).type
    teacher = frozen_teacher(model) if config.ar_weight > 0 and config.ar_target == "teacher" else None
    while state["step"] < config.max_steps:
        elapsed = time.perf_counter() - began
        if config.max_seconds is not None and elapsed > config.max_seconds:
            break
        if len(state["queue"]) < config.batch_size:  # epochs of shuffled pairs (indices, so checkpoints stay small)
            state["queue"] += order.sample(range(len(pairs)), len(pairs))
        batch = [pairs[i] for i in state["queue"][:config.batch_size]]
        state["queue"] = state["queue"][config.batch_size:]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(state["step"], config, elapsed)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=config.bf16):
            loss, tokens, masked = batch_loss(causal_lm, batch, config, generator, state["step"], teacher=teacher)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["tokens"] += tokens
        state["masked_tokens"] += masked
        state["losses"].append(float(loss.detach()))
        step = state["step"]
        if step % config.log_every == 0:
            seconds = time.perf_counter() - began
            log(f"step {step} loss {sum(state['losses'][-config.log_every:]) / config.log_every:.3f} "
                f"lr {optimizer.param_groups[0]['lr']:.2e} tokens {state['tokens']} "
                f"({state['tokens'] / seconds:.0f} tok/s) {seconds:.0f}s")
        if step % config.save_every == 0:
            model.save_pretrained(out)
        if time.perf_counter() - last_checkpoint > config.checkpoint_seconds:
            state["seconds"] = time.perf_counter() - began
            save_checkpoint(model, optimizer, out, {**state, "generator": generator.get_state(),
                                                    "order": order.getstate()})
            last_checkpoint = time.perf_counter()
    seconds = time.perf_counter() - began
    model.save_pretrained(out)
    losses = state["losses"]
    result = {"config": asdict(config), "steps": state["step"], "train_tokens": state["tokens"],
              "masked_tokens": state["masked_tokens"], "seconds": seconds,
              "tokens_per_s": state["tokens"] / max(seconds, 1e-9),
              "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])),
              "trainable_parameters": sum(p.numel() for p in params),
              "init_adapter": str(init_adapter) if init_adapter else None}
    if val_pairs:
        model.eval()
        result["val_loss"] = validation_loss(model, val_pairs, config)
    (out / "train_result.json").write_text(json.dumps(result, indent=1))
    log(json.dumps({k: v for k, v in result.items() if k != "config"}))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/distill"))
    parser.add_argument("--val-data", type=Path, default=None, help="held-out answers for a validation loss")
    parser.add_argument("--out", type=Path, default=Path("runs/adapter"))
    parser.add_argument("--variant", default=AdaptConfig.variant, choices=VARIANTS)
    parser.add_argument("--rank", type=int, default=AdaptConfig.rank)
    parser.add_argument("--batch-size", type=int, default=AdaptConfig.batch_size)
    parser.add_argument("--lr", type=float, default=AdaptConfig.lr)
    parser.add_argument("--max-steps", type=int, default=AdaptConfig.max_steps)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--objective", default=AdaptConfig.objective, choices=OBJECTIVES)
    parser.add_argument("--block-sizes", type=int, nargs="+", default=list(AdaptConfig.block_sizes))
    parser.add_argument("--ar-weight", type=float, default=AdaptConfig.ar_weight,
                        help="block objective: weight of the clean stream's AR loss")
    parser.add_argument("--ar-target", default=AdaptConfig.ar_target, choices=AR_TARGETS)
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint if there is one")
    parser.add_argument("--init-adapter", type=Path, default=None, help="start from this adapter (e.g. the shipped one)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    config = AdaptConfig(variant=args.variant, rank=args.rank, alpha=args.rank, batch_size=args.batch_size,
                         lr=args.lr, max_steps=args.max_steps, max_seconds=args.max_seconds, bf16=not args.fp32,
                         objective=args.objective, block_sizes=tuple(args.block_sizes), ar_weight=args.ar_weight,
                         ar_target=args.ar_target)
    val = load_shards(args.val_data) if args.val_data else None
    train(load_shards(args.data), config, args.out, val_pairs=val, device=args.device, resume=args.resume,
          init_adapter=args.init_adapter)


if __name__ == "__main__":
    main()
