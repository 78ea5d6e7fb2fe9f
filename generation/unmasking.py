"""The unmasking loop: LLaDA, Dream and Fast-dLLM's threshold decoding, as published.

`stream` is one generator that reads top to bottom: lay out the canvas, then for each semi-autoregressive
block and each step, ask the model for proposals at the masked positions of the block, score them, commit
some (the algorithm's `Scheme`, schemes.py), record the step in the `History` (with each committed position's 5
likeliest proposals), and yield. The published
loops it follows:

- LLaDA (Nie et al., "Large Language Diffusion Models", arXiv 2502.09992; github.com/ML-GSAI/LLaDA
  generate.py): Gumbel-max proposals in float64, `low_confidence` or `random` scores, an even
  split of each block's masks over its steps, optional classifier-free guidance.
- Dream (Ye et al., "Dream 7B: Diffusion Large Language Models", arXiv 2508.15487;
  github.com/HKUNLP/Dream generation_utils.py): temperature / top-p / top-k proposals, scores
  `maskgit_plus`, `topk_margin`, `entropy`, or `origin` (each mask revealed independently),
  Dream's timestep schedule, `alg_temp` to draw positions instead of taking the top k.
- Fast-dLLM (Wu et al., arXiv 2505.22618; github.com/NVlabs/Fast-dLLM): with `threshold`, commit
  every proposal scoring >= threshold and always the best one; the number of steps then depends on
  the model's confidence.

With `cache="none"` and temperature 0 each reproduces the published loop token for token
(tests/test_reference.py). At temperature > 0 the random draws are made only where they are used
(the masked positions of the active block), from one seeded generator, so the distribution is the
published one but the individual samples are not those of the published code under the same seed.

What a step computes is one small plan per cache mode (cache_plans.py); the loop is the same for all of them.
KV caches are transformers' `DynamicCache`, cut back with its `crop` after every step so that keys and values
computed over masks are never reused. A block-causal model's finished block's KV is filled (over its clean
tokens) in the forward that makes the next block's first proposals; its run ends after the block in which a
stop id is committed (Fast-dLLM v2).

Penalties (sampling.Penalties) shape the proposals: CTRL's repetition penalty counts the prompt and every token on
the canvas, wherever it stands; DRY reads, per masked position, the text right before it up to the nearest mask.

Infilling (generation/infill.py) only changes where the run starts: the canvas holds given tokens
at fixed positions and masks at the blanks. Proposals are made only at masks, so a fixed token is
never proposed over and blocks schedule only their own masks (a block of given tokens takes no
step); a blank with a given token to its right never proposes a stop id (the answer cannot end
before text that is given).

Expects the config as the model runs it (runs.prepare_run; sampler.stream_diffusion calls both). Left out: the
batch dimension (one prompt at a time, as the demo needs), Fast-dLLM v2's sub-block cache, classifier-free
guidance with a cache (it would need a second cache).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import torch
from transformers import DynamicCache

from .cache_plans import STEP_INPUTS, Canvas, StepInputs
from .config import DiffusionConfig, check_fits
from .history import DIFFUSION, History
from .infill import Infill, start_canvas
from .models import DiffusionLM, crop_cache, new_cache
from .sampling import Penalties, top_candidates
from .schemes import SCHEMES, Scheme


def stream(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
           stop: threading.Event | None = None, infill: Infill | None = None) -> Iterator[History]:
    """Run the loop, yielding the (same, growing) History after every step.

    `infill`: start from a canvas with given tokens (generation/infill.py) instead of all masks."""
    check_fits(prompt_ids, config.gen_length, model.context_length)
    initial = start_canvas(model.mask_id, config.gen_length, infill)
    device = model.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    prompt_len = len(prompt_ids)
    x = torch.tensor([list(prompt_ids) + initial], dtype=torch.long, device=device)
    scheme = SCHEMES[config.algorithm]
    history = History.start(DIFFUSION, model, prompt_ids, initial, config, fixed=infill.fixed if infill else (),
                            planned_steps=_planned_steps(initial, model.mask_id, config, scheme))
    open_until = prompt_len + max(infill.fixed) if infill and infill.fixed else 0  # no stop ids left of this
    plan = STEP_INPUTS[config.cache, model.block_size is not None]
    canvas = Canvas(x.shape[1], int(model.shift_logits), device)
    kv = new_cache(model) if config.cache != "none" else None
    penalties = Penalties.of(config, model)
    forward_passes = 0
    for block in range(config.num_blocks):
        start = prompt_len + block * config.block
        end = start + config.block
        masks_at_start = int((x[0, start:end] == model.mask_id).sum())
        step = 0
        while True:
            masked = (x[0, start:end] == model.mask_id).nonzero().squeeze(1) + start  # (P,)
            if len(masked) == 0 or (config.threshold is None and step == config.steps_per_block):
                break
            if stop is not None and stop.is_set():
                history.stopped = True
                return
            began = time.perf_counter()
            inputs = plan(canvas, start, end, step == 0, kv.get_seq_length() if kv is not None else 0)
            logits = _logits(model, x, masked, config, prompt_len, inputs, kv)  # (P, V)
            if open_until:
                logits = _no_stop_before(logits, masked, open_until, model.stop_ids)
            passes = 2 if config.cfg_scale > 0 else 1
            forward_passes += passes
            proposing = penalties.on_canvas(logits, x[0], masked, model.mask_id)
            tokens, probs = scheme.propose(proposing, config, generator)
            scores = scheme.score(tokens, probs, generator, masked, x.shape[1])
            chosen = scheme.commit(scores, masked, masks_at_start, step, config, generator, x.shape[1])
            positions = masked[chosen]
            x[0, positions] = tokens[chosen]
            history.record(
                positions=(positions - prompt_len).tolist(), tokens=tokens[chosen].tolist(),
                scores=[None] * len(chosen) if scores is None else scores[chosen].tolist(),
                seconds=time.perf_counter() - began, forward_passes=forward_passes,
                computed_positions=passes * inputs.computed(canvas),
                uncached_positions=passes * (end if model.block_size is not None else canvas.length),
                candidates=top_candidates(logits[chosen]),
            )
            step += 1
            yield history
        if model.block_size is not None and _holds_stop(x[0, start:end], model.stop_ids):
            return  # block decoding ends with the block that committed a stop (Fast-dLLM v2)


def _planned_steps(canvas: list[int], mask_id: int, config: DiffusionConfig, scheme: Scheme) -> int | None:
    """Steps the schedule will take: each block steps until its masks are committed or its steps run out.

    All masks: exactly `config.steps`. With given tokens a block may have fewer masks than steps (the
    even split then commits one a step and ends early) or none (no step). None with a threshold."""
    if config.threshold is not None:
        return None
    total = 0
    for block in range(config.num_blocks):
        masks = left = canvas[block * config.block:(block + 1) * config.block].count(mask_id)
        step = 0
        while left > 0 and step < config.steps_per_block:
            left -= scheme.schedule(left, masks, step, config)
            step += 1
        total += step
    return total


def _no_stop_before(logits: torch.Tensor, masked: torch.Tensor, end: int, stop_ids) -> torch.Tensor:
    """Stop ids cannot be proposed at masked positions left of `end` (a given token lies to their right).
    In place, like `DiffusionLM.suppress`: the sampler owns these logits."""
    if not stop_ids:
        return logits
    rows = (masked < end).nonzero().squeeze(1)
    stops = torch.tensor(stop_ids, device=logits.device)
    logits[rows.unsqueeze(1), stops.unsqueeze(0)] = float("-inf")
    return logits


def _holds_stop(tokens: torch.Tensor, stop_ids: tuple[int, ...]) -> bool:
    return bool(stop_ids) and bool(torch.isin(tokens, torch.tensor(stop_ids, device=tokens.device)).any())


@torch.no_grad()
def _logits(model: DiffusionLM, x: torch.Tensor, masked: torch.Tensor, config: DiffusionConfig,
            prompt_len: int, inputs: StepInputs, kv: DynamicCache | None) -> torch.Tensor:
    """Logits for the masked positions: over the whole sequence (with cfg_scale, LLaDA's guidance against a
    prompt-free pass), or over the positions `inputs` names, reusing and then cutting back the KV cache."""
    if inputs.positions is not None:
        if inputs.fresh:
            crop_cache(kv, 0)
        logits = model.logits_at(x, masked, inputs.positions, kv, inputs.mask)[0]
        crop_cache(kv, inputs.keep)
        return model.suppress(logits)
    if config.cfg_scale == 0:
        return model.suppress(model.logits_at(x, masked)[0])
    unconditional = x.clone()
    unconditional[0, :prompt_len] = model.mask_id
    cond, uncond = model.logits_at(torch.cat([x, unconditional]), masked)
    return model.suppress(uncond + (config.cfg_scale + 1) * (cond - uncond))
