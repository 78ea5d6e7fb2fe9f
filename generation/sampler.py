"""The masked-diffusion sampler: LLaDA, Dream and Fast-dLLM's threshold decoding, as published.

`stream_diffusion` is one generator that reads top to bottom: lay out the canvas, then for each
semi-autoregressive block and each step, ask the model for proposals at the masked positions of
the block, score them, commit some, record the step in the `History`, and yield. `diffuse` collects
it. The published loops it follows:

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

What a step computes is one small plan per cache mode (`StepInputs`, looked up in `STEP_INPUTS`);
the loop is the same for all of them. KV caches are transformers' `DynamicCache`, cut back with
its `crop` after every step so that keys and values computed over masks are never reused:
- bidirectional models, Fast-dLLM v1 (arXiv 2505.22618): `prefix` and `dual` refill the cache with
  one whole-sequence forward at each block's first step, then recompute only the block (and, for
  `prefix`, the suffix). Approximate: the kept states would change a little if recomputed.
- block-causal models (`DiffusionLM.block_size`; BD3-LM arXiv 2503.09573, Fast-dLLM v2 arXiv
  2509.26328): every forward runs under the block-causal 4D mask; `none` runs prompt + finished
  blocks + the current block each step, `prefix` keeps the exact causal KV of prompt + finished
  blocks and runs only the current block. A finished block's KV is filled (over its clean tokens)
  in the forward that makes the next block's first proposals. The run ends after the block in
  which a stop id is committed (Fast-dLLM v2).
With logit shift the position left of the block predicts the block's first token, so it is fed
with the block in every cached step (one extra position, never a stale logit).

Infilling (generation/infill.py) only changes where the run starts: the canvas holds given tokens
at fixed positions and masks at the blanks. Proposals are made only at masks, so a fixed token is
never proposed over and blocks schedule only their own masks (a block of given tokens takes no
step); a blank with a given token to its right never proposes a stop id (the answer cannot end
before text that is given).

`algorithm="speculative"` (block-causal models) hands the run to generation/speculative.py: diffusion
drafts checked by the model's own causal path, left to right, no steps to plan.

Models that run their own denoising loop (protocols.RunsOwnLoop, e.g. DiffusionGemma) are handed the
run as a whole (they cannot infill, and their loop ignores `cache`). Left out: the batch dimension
(one prompt at a time, as the demo needs), Fast-dLLM v2's sub-block cache, classifier-free guidance with
a cache (it would need a second cache).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from .config import SPECULATIVE, ConfigError, DiffusionConfig, check_fits
from .history import DIFFUSION, History, collect
from .infill import Infill
from .models import DiffusionLM
from .protocols import runs_own_loop
from .sampling import crop_cache, new_cache, tempered
from .speculative import stream_speculative

ENTROPY_EPS = 1e-10  # Dream adds this inside log(p) for the entropy score


def stream_diffusion(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
                     stop: threading.Event | None = None, infill: Infill | None = None) -> Iterator[History]:
    """Run the sampler, yielding the (same, growing) History after every step.

    `infill`: start from a canvas with given tokens (generation/infill.py) instead of all masks."""
    if runs_own_loop(model):  # e.g. DiffusionGemma: its own generate replaces this loop
        if infill is not None:
            raise ConfigError(f"{model.name or 'this model'} runs its own denoising loop and cannot fill blanks; "
                              f"pick a masked diffusion model for infilling")
        yield from model.stream(prompt_ids, config, stop)
        return
    config = _as_run(model, config, infill)
    check_fits(prompt_ids, config.gen_length, model.context_length)
    if config.algorithm == SPECULATIVE:
        yield from stream_speculative(model, prompt_ids, config, stop)
        return
    initial = _initial_canvas(model, config, infill)
    device = model.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    prompt_len = len(prompt_ids)
    x = torch.tensor([list(prompt_ids) + initial], dtype=torch.long, device=device)
    scheme = ALGORITHM_SCHEMES[config.algorithm]
    history = History(
        kind=DIFFUSION, prompt_ids=list(prompt_ids), initial=initial,
        mask_id=model.mask_id, stop_ids=list(model.stop_ids),
        planned_steps=_planned_steps(initial, model.mask_id, config, scheme),
        settings=config.to_dict(), model=model.name, fixed=list(infill.fixed) if infill else [],
    )
    open_until = prompt_len + max(infill.fixed) if infill and infill.fixed else 0  # no stop ids left of this
    plan = STEP_INPUTS[config.cache, model.block_size is not None]
    layout = Layout(x.shape[1], int(model.shift_logits), device)
    kv = new_cache(model) if config.cache != "none" else None
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
            inputs = plan(layout, start, end, step == 0, kv.get_seq_length() if kv is not None else 0)
            logits = _logits(model, x, masked, config, prompt_len, inputs, kv)  # (P, V)
            if open_until:
                logits = _no_stop_before(logits, masked, open_until, model.stop_ids)
            passes = 2 if config.cfg_scale > 0 else 1
            forward_passes += passes
            tokens, probs = scheme.propose(logits, config, generator)
            scores = scheme.score(tokens, probs, generator, masked, x.shape[1])
            if config.algorithm == "origin":
                chosen = _reveal_independently(len(masked), step, config, generator)
            elif config.threshold is not None:
                chosen = _above_threshold(scores, config.threshold)
            else:
                count = scheme.schedule(len(masked), masks_at_start, step, config)
                chosen = _top_positions(scores, count, config.alg_temp, generator, masked, x.shape[1])
            positions = masked[chosen]
            x[0, positions] = tokens[chosen]
            history.record(
                positions=(positions - prompt_len).tolist(), tokens=tokens[chosen].tolist(),
                scores=[None] * len(chosen) if scores is None else scores[chosen].tolist(),
                seconds=time.perf_counter() - began, forward_passes=forward_passes,
                computed_positions=passes * inputs.computed(layout),
                uncached_positions=passes * (end if model.block_size is not None else layout.length),
            )
            step += 1
            yield history
        if model.block_size is not None and _holds_stop(x[0, start:end], model.stop_ids):
            return  # block decoding ends with the block that committed a stop (Fast-dLLM v2)


def diffuse(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
            stop: threading.Event | None = None, infill: Infill | None = None) -> History:
    """Run the sampler to the end and return the History."""
    history = collect(stream_diffusion(model, prompt_ids, config, stop, infill))
    return history if history is not None else _empty_history(model, prompt_ids, config, infill)


def _empty_history(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
                   infill: Infill | None = None) -> History:
    return History(kind=DIFFUSION, prompt_ids=list(prompt_ids), initial=_initial_canvas(model, config, infill),
                   mask_id=model.mask_id, stop_ids=list(model.stop_ids), settings=config.to_dict(),
                   model=model.name, stopped=True, fixed=list(infill.fixed) if infill else [])


def _initial_canvas(model: DiffusionLM, config: DiffusionConfig, infill: Infill | None) -> list[int]:
    if infill is None:
        return [model.mask_id] * config.gen_length
    if len(infill.initial) != config.gen_length:
        raise ConfigError(f"the infill canvas has {len(infill.initial)} positions but gen_length is "
                          f"{config.gen_length}; build it with the same gen_length")
    if infill.blanks == 0 or model.mask_id not in infill.initial:
        raise ConfigError("nothing to fill: the canvas has no blank")
    return list(infill.initial)


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


def _as_run(model: DiffusionLM, config: DiffusionConfig, infill: Infill | None = None) -> DiffusionConfig:
    """The config as this model runs it (a block-causal model's trained block size is the default
    block length), or ConfigError for a cache mode or an algorithm the model cannot take."""
    block_causal = model.block_size is not None
    if config.algorithm == SPECULATIVE and not (block_causal and model.shift_logits):
        raise ConfigError(f"speculative decoding verifies drafts with a block-causal model's causal path; "
                          f"{model.name or 'this model'} has none: pick another algorithm")
    if config.algorithm == SPECULATIVE and infill is not None:
        raise ConfigError("speculative decoding writes left to right and cannot keep given tokens; "
                          "pick another algorithm to fill blanks")
    if config.cache != "none" and not model.takes_kv_cache:
        raise ConfigError(f"model {model.name!r} takes no KV cache (not a transformers decoder); use cache='none'")
    if block_causal and config.cache == "dual":
        raise ConfigError("a block-causal model never looks right of its block, so there is no suffix to cache; "
                          "use cache='prefix' (exact for it)")
    if block_causal and config.cfg_scale > 0:
        raise ConfigError("cfg_scale (classifier-free guidance) is for bidirectional models, not block-causal ones")
    if block_causal and config.block_length is None:
        try:
            return dataclasses.replace(config, block_length=model.block_size)
        except ConfigError as error:
            raise ConfigError(f"model {model.name!r} decodes in blocks of {model.block_size} (its trained "
                              f"size) unless block_length says otherwise: {error}") from error
    return config


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


# ---- what a step computes: (layout, block start, block end, first step of the block?, cached
#      positions) -> StepInputs. One plan per (cache mode, block-causal?).


@dataclass(frozen=True)
class Layout:
    length: int  # prompt + answer canvas
    shift: int  # 1 when the logit at i-1 predicts token i
    device: torch.device


@dataclass(frozen=True)
class StepInputs:
    positions: torch.Tensor | None  # (Q,) absolute positions fed, in input order; None = all, no cache
    keep: int = 0  # cache entries still exact after the forward (the rest were computed over masks)
    fresh: bool = False  # empty the cache first: a bidirectional cache is refilled at every block
    mask: torch.Tensor | None = None  # (1, 1, Q, K) bool, True = may attend; None = the module's own

    def computed(self, layout: Layout) -> int:
        return layout.length if self.positions is None else len(self.positions)


def _whole_sequence(layout: Layout, start: int, end: int, first: bool, cached: int) -> StepInputs:
    return StepInputs(None)


def _prefix_cache(layout: Layout, start: int, end: int, first: bool, cached: int) -> StepInputs:
    """Fast-dLLM prefix cache: keep the KV left of the block (and of the shifted row predicting its first token)."""
    left = start - layout.shift
    return StepInputs(_range(0 if first else left, layout.length, layout), keep=left, fresh=first)


def _dual_cache(layout: Layout, start: int, end: int, first: bool, cached: int) -> StepInputs:
    """Fast-dLLM dual cache: keep prefix and suffix KV, recompute only the block.

    The refilling forward feeds the block last: bidirectional attention is order-free given the
    position ids, and with the block at the end `crop` drops it and keeps prefix + suffix."""
    left = start - layout.shift
    window = _range(left, end, layout)
    kept = torch.cat([_range(0, left, layout), _range(end, layout.length, layout)])
    return StepInputs(torch.cat([kept, window]) if first else window, keep=len(kept), fresh=first)


def _block_causal_uncached(layout: Layout, start: int, end: int, first: bool, cached: int) -> StepInputs:
    """Prompt + finished blocks + the current block, under the block-causal mask (nothing sees later blocks)."""
    positions = _range(0, end, layout)
    return StepInputs(positions, mask=block_causal_mask(positions, start, end))


def _block_causal_cache(layout: Layout, start: int, end: int, first: bool, cached: int) -> StepInputs:
    """Exact: the cache holds the causal KV of clean positions; feed what follows it up to the block's end.

    At a block's first step that is the finished block (clean, causal: its KV is filled here) plus
    the new block; afterwards only the block (and, with shift, the position left of it)."""
    positions = _range(cached, end, layout)
    return StepInputs(positions, keep=start - layout.shift, mask=block_causal_mask(positions, start, end))


def block_causal_mask(queries: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """(1, 1, Q, end) bool: a query left of the block [start, end) sees causally, one inside sees all of [0, end).

    block_causal_mask(torch.arange(4), 2, 4)[0, 0].int() -> [[1,0,0,0], [1,1,0,0], [1,1,1,1], [1,1,1,1]]
    """
    q = queries[:, None]
    k = torch.arange(end, device=queries.device)[None, :]
    return torch.where(q < start, k <= q, k < end)[None, None]


def _range(low: int, high: int, layout: Layout) -> torch.Tensor:
    return torch.arange(low, high, device=layout.device)


STEP_INPUTS = {  # (cache mode, block-causal?) -> plan
    ("none", False): _whole_sequence,
    ("prefix", False): _prefix_cache,
    ("dual", False): _dual_cache,
    ("none", True): _block_causal_uncached,
    ("prefix", True): _block_causal_cache,
}


# ---- proposals: (logits (P, V), config, generator) -> (tokens (P,), probabilities (P, V))


def _gumbel_max(logits: torch.Tensor, config: DiffusionConfig, generator: torch.Generator):
    """LLaDA: argmax of exp(logits) / (-log u)^T in float64 (low precision Gumbel noise hurts, 2409.02908).

    Taken in log space, argmax(logits / T - log(-log u)): the same argmax without exp/pow over the
    vocabulary. The probabilities are LLaDA's softmax of the raw logits, kept lazy (`LogProbabilities`)
    because `low_confidence` needs only the proposed token's entry.
    """
    if config.temperature == 0:
        return logits.argmax(dim=-1), LogProbabilities(logits)  # float64 would keep the order: same argmax
    noise = torch.rand(logits.shape, dtype=torch.float64, device=logits.device, generator=generator)
    tokens = (logits.to(torch.float64) / config.temperature - torch.log(-torch.log(noise))).argmax(dim=-1)
    return tokens, LogProbabilities(logits)


class LogProbabilities:
    """softmax(logits) without materialising it: p[token] = exp(logit[token] - logsumexp(logits)).

    The published loops take the softmax of the whole (P, V) block in float64; the normaliser is
    summed here in float32 (a tenth of the time on CPU: it was most of the sampler's own cost per
    step) and the rest in float64. The probabilities differ from the float64 ones by under 1e-6
    relative, so only two positions tied closer than that could be committed in the other order."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def gather(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        log_z = torch.logsumexp(self.logits, dim=-1, keepdim=True).double()
        return (self.logits.gather(dim, index).double() - log_z).exp()


def _dream_sample(logits: torch.Tensor, config: DiffusionConfig, generator: torch.Generator):
    """Dream: temperature, then top-p, then top-k, then sample (argmax at temperature 0)."""
    probs = torch.softmax(tempered(logits, config), dim=-1)
    if config.temperature > 0:
        tokens = torch.multinomial(probs.to(torch.float64), 1, generator=generator).squeeze(1)
    else:
        tokens = probs.argmax(dim=-1)
    return tokens, probs


# ---- scores: (tokens (P,), probabilities (P, V), generator, masked positions, sequence length)
#      -> (P,) or None; higher = commit sooner


def _probability(tokens, probs, generator, masked, length):
    return probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _random_score(tokens, probs, generator, masked, length):
    """LLaDA `random`: uniform scores, drawn over the whole sequence as published so seeds agree."""
    return torch.rand(length, device=tokens.device, generator=generator)[masked]


def _top_margin(tokens, probs, generator, masked, length):
    top2 = torch.topk(probs, 2, dim=-1).values
    return top2[:, 0] - top2[:, 1]


def _negative_entropy(tokens, probs, generator, masked, length):
    return torch.sum(probs * torch.log(probs + ENTROPY_EPS), dim=-1)


def _no_score(tokens, probs, generator, masked, length):
    return None


# ---- schedules: how many masks to commit at this step of the block


def _even_split(masks_left: int, masks_at_start: int, step: int, config: DiffusionConfig) -> int:
    """LLaDA: the block's masks split evenly over its steps; the first (masks % steps) take one more."""
    base, extra = divmod(masks_at_start, config.steps_per_block)
    return base + (1 if step < extra else 0)


def _dream_schedule(masks_left: int, masks_at_start: int, step: int, config: DiffusionConfig) -> int:
    """Dream: t runs 1 -> eps; commit int(M * (1 - t_next / t)) of the M masks left; all on the last step."""
    if step == config.steps_per_block - 1:
        return masks_left
    t = _timesteps(config.steps_per_block, config.eps)
    return int(masks_left * (1 - t[step + 1] / t[step]))


@lru_cache(maxsize=64)
def _timesteps(steps: int, eps: float) -> torch.Tensor:
    return torch.linspace(1, eps, steps + 1)  # float32, as Dream computes it


# ---- commit rules: which of the P proposals to commit (indices into the masked positions)


def _top_positions(scores: torch.Tensor, count: int, alg_temp: float, generator: torch.Generator,
                   masked: torch.Tensor, length: int) -> torch.Tensor:
    """The `count` best scores, or with alg_temp > 0 (Dream) `count` positions drawn by softmax(score/alg_temp)."""
    if count == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    if alg_temp == 0:
        return torch.topk(scores, count).indices
    # Dream draws over the whole sequence (non-masked positions weigh 0); do the same so seeds agree.
    full = torch.full((length,), float("-inf"), dtype=scores.dtype, device=scores.device)
    full[masked] = scores
    drawn = torch.multinomial(F.softmax(full / alg_temp, dim=-1), count, generator=generator)
    return torch.searchsorted(masked, drawn)  # absolute positions -> indices into `masked`


def _above_threshold(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Fast-dLLM: every score >= threshold, and always the best one so decoding never stalls."""
    order = torch.argsort(scores, descending=True, stable=True)
    keep = scores[order] >= threshold
    keep[0] = True
    return order[keep]


def _reveal_independently(count: int, step: int, config: DiffusionConfig,
                          generator: torch.Generator) -> torch.Tensor:
    """Dream `origin`: each mask is revealed with probability 1 - t_next / t (all on the last step)."""
    t = _timesteps(config.steps_per_block, config.eps)
    p_reveal = 1 if step == config.steps_per_block - 1 else 1 - t[step + 1] / t[step]
    draws = torch.rand(count, generator=generator, device=generator.device)
    return (draws.cpu() < p_reveal).nonzero().squeeze(1).to(generator.device)


@dataclass(frozen=True)
class Scheme:
    propose: Callable
    score: Callable
    schedule: Callable


ALGORITHM_SCHEMES = {
    "low_confidence": Scheme(_gumbel_max, _probability, _even_split),
    "random": Scheme(_gumbel_max, _random_score, _even_split),
    "maskgit_plus": Scheme(_dream_sample, _probability, _dream_schedule),
    "topk_margin": Scheme(_dream_sample, _top_margin, _dream_schedule),
    "entropy": Scheme(_dream_sample, _negative_entropy, _dream_schedule),
    "origin": Scheme(_dream_sample, _no_score, _dream_schedule),
}
