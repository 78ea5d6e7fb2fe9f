"""How the unmasking loop (unmasking.py) turns logits into commits, per algorithm: proposals, scores, schedules and
commit rules, each a small function, put together per algorithm in `SCHEMES` (keyed by the decoder's name,
decoders.py). LLaDA (arXiv 2502.09992) and Dream (arXiv 2508.15487) as published; Fast-dLLM's threshold
(arXiv 2505.22618) is a commit rule.

Left out: which positions are masked and what the model computes (the loop and cache_plans.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from .config import DiffusionConfig
from .sampling import tempered

ENTROPY_EPS = 1e-10  # Dream adds this inside log(p) for the entropy score


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


def _best_scores(scores, masked, masks_at_start, step, config, generator, schedule, length) -> torch.Tensor:
    """Fast-dLLM's threshold when set, else the schedule's count of best scores (LLaDA, Dream)."""
    if config.threshold is not None:
        return _above_threshold(scores, config.threshold)
    count = schedule(len(masked), masks_at_start, step, config)
    return _top_positions(scores, count, config.alg_temp, generator, masked, length)


def _independently(scores, masked, masks_at_start, step, config, generator, schedule, length) -> torch.Tensor:
    return _reveal_independently(len(masked), step, config, generator)


@dataclass(frozen=True)
class Scheme:
    propose: Callable  # (logits (P, V), config, generator) -> (tokens (P,), probabilities (P, V))
    score: Callable  # (tokens, probabilities, generator, masked, length) -> (P,) or None
    schedule: Callable  # (masks left, masks at the block's start, step, config) -> how many to commit
    rule: Callable = _best_scores  # which proposals to commit: indices into the masked positions

    def commit(self, scores, masked: torch.Tensor, masks_at_start: int, step: int, config: DiffusionConfig,
               generator: torch.Generator, length: int) -> torch.Tensor:
        return self.rule(scores, masked, masks_at_start, step, config, generator, self.schedule, length)


SCHEMES = {  # decoder name (decoders.UNMASKING) -> how it proposes, scores, schedules and commits
    "low_confidence": Scheme(_gumbel_max, _probability, _even_split),
    "random": Scheme(_gumbel_max, _random_score, _even_split),
    "maskgit_plus": Scheme(_dream_sample, _probability, _dream_schedule),
    "topk_margin": Scheme(_dream_sample, _top_margin, _dream_schedule),
    "entropy": Scheme(_dream_sample, _negative_entropy, _dream_schedule),
    "origin": Scheme(_dream_sample, _no_score, _dream_schedule, _independently),
}
