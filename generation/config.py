"""Settings for one generation: `DiffusionConfig` and `ARConfig`, validated in one place.

Every bad value or impossible combination raises `ConfigError` (a `ValueError`) whose message
says what is wrong and what would be valid. Checks that need the prompt and the model (context
length, empty prompt) live in `check_fits`, which both samplers call before their first step.
`recommended_config(name, gen_length)` is the measured (or published) starting point per model:
the settings the page starts with. What the settings *mean* for the sampler is in
`generation/sampler.py`; this module only checks and recommends.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .decoders import ALGORITHMS, CACHE_MODES, DECODERS, UNMASKING, VERIFIED, decoder
from .presets import BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_SMOLLM2, DREAM_BASE, DREAM_INSTRUCT, LLADA_BASE, LLADA_INSTRUCT

# The methods' names, from their records (decoders.py): what DiffusionConfig.algorithm may say.
UNMASKING_ALGORITHMS = tuple(d.name for d in UNMASKING)  # they score proposals and commit the best
THRESHOLD_ALGORITHMS = tuple(name for name in ALGORITHMS if DECODERS[name].takes_threshold)
EMPTY_PROMPT = "the prompt is empty; type something for the models to answer"


# The settings that penalise what the text already holds (sampling.Penalties); their defaults are off.
PENALTIES = ("repetition_penalty", "dry_multiplier")


class ConfigError(ValueError):
    """A setting (or a combination of settings) that no sampler can run."""


@dataclass(frozen=True)
class DiffusionConfig:
    gen_length: int = 64  # answer canvas length in tokens; the answer may end earlier at a stop token
    steps: int = 64  # denoising steps in all; gen_length/steps tokens are committed per step on average
    block_length: int | None = None  # semi-autoregressive blocks (LLaDA); None = one block; speculative: draft length
    algorithm: str = "low_confidence"  # which published scoring/remasking rule decides what to commit
    temperature: float = 0.0  # 0 = argmax proposals (deterministic); higher = more varied tokens
    top_p: float = 1.0  # Dream algorithms: nucleus filtering of proposals; 1 = off
    top_k: int | None = None  # Dream algorithms: keep only the k likeliest proposals; None = off
    repetition_penalty: float = 1.0  # > 1: tokens already in the prompt or on the canvas less likely (CTRL); 1 = off
    dry_multiplier: float = 0.0  # > 0: a token that would extend a repeat of the text less likely (DRY); 0 = off
    alg_temp: float = 0.0  # Dream algorithms: > 0 draws positions from softmax(score/alg_temp) instead of top-k
    threshold: float | None = None  # Fast-dLLM: commit every proposal scoring >= threshold (at least one)
    cfg_scale: float = 0.0  # LLaDA classifier-free guidance; 0 = off (one forward pass per step)
    eps: float = 1e-3  # Dream: the schedule runs t from 1 down to eps
    seed: int = 0  # seeds every random draw of the sampler; same seed, same output
    cache: str = "none"  # KV cache: none (exact), prefix or dual (Fast-dLLM; see CACHE_MODES)

    def __post_init__(self) -> None:
        _check_int("gen_length", self.gen_length, minimum=1)
        _check_int("steps", self.steps, minimum=1)
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; valid: {', '.join(ALGORITHMS)}")
        block = self.block_length if self.block_length is not None else self.gen_length
        _check_int("block_length", block, minimum=1)
        method = decoder(self.algorithm)
        if self.gen_length % block and method.blocks_divide_canvas:
            raise ConfigError(
                f"block_length {block} must divide gen_length {self.gen_length}; "
                f"valid block lengths: {_divisors(self.gen_length)}"
            )
        if self.threshold is not None:
            _check_threshold(method, self.threshold)
        elif method.takes_steps:
            _check_steps(self.steps, self.gen_length, self.gen_length // block, block)
        if self.cache not in CACHE_MODES:
            raise ConfigError(f"unknown cache {self.cache!r}; valid: {', '.join(CACHE_MODES)}")
        if self.cache not in method.cache_modes:
            raise ConfigError(f"{method.name} decoding runs only with cache {' or '.join(map(repr, method.cache_modes))}"
                              f"; use cache={method.cache_modes[0]!r}")
        _check_float("temperature", self.temperature, low=0.0)
        _check_float("top_p", self.top_p, low=0.0, high=1.0, low_open=True)
        if self.top_k is not None:
            _check_int("top_k", self.top_k, minimum=1)
        _check_float("repetition_penalty", self.repetition_penalty, low=0.0, low_open=True)
        _check_float("dry_multiplier", self.dry_multiplier, low=0.0)
        _check_float("alg_temp", self.alg_temp, low=0.0)
        _check_float("cfg_scale", self.cfg_scale, low=0.0)
        _check_float("eps", self.eps, low=0.0, high=1.0, low_open=True)
        if self.cfg_scale > 0 and not method.takes_guidance:
            guided = " or ".join(name for name in ALGORITHMS if DECODERS[name].takes_guidance)
            raise ConfigError(f"cfg_scale (classifier-free guidance) is LLaDA's; use {guided}")
        _check_int("seed", self.seed, minimum=0)
        if self.cache != "none" and self.cfg_scale > 0:
            raise ConfigError("cfg_scale (classifier-free guidance) needs cache='none': its prompt-free pass "
                              "would need a second cache")

    @property
    def block(self) -> int:
        return self.block_length if self.block_length is not None else self.gen_length

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ARConfig:
    max_new_tokens: int = 64  # the AR answer stops here or at the model's end-of-turn token
    temperature: float = 0.0  # 0 = greedy decoding; higher = more varied tokens
    top_p: float = 1.0  # nucleus sampling; 1 = off
    top_k: int | None = None  # keep only the k likeliest tokens; None = off
    repetition_penalty: float = 1.0  # > 1: tokens already in the prompt or the answer less likely (CTRL); 1 = off
    dry_multiplier: float = 0.0  # > 0: a token that would extend a repeat of the text less likely (DRY); 0 = off
    seed: int = 0  # seeds the sampling (when temperature > 0)

    def __post_init__(self) -> None:
        _check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        _check_float("temperature", self.temperature, low=0.0)
        _check_float("top_p", self.top_p, low=0.0, high=1.0, low_open=True)
        if self.top_k is not None:
            _check_int("top_k", self.top_k, minimum=1)
        _check_float("repetition_penalty", self.repetition_penalty, low=0.0, low_open=True)
        _check_float("dry_multiplier", self.dry_multiplier, low=0.0)
        _check_int("seed", self.seed, minimum=0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_fits(prompt_ids: list[int], new_tokens: int, context_length: int | None) -> None:
    """Raise ConfigError unless a non-empty prompt plus `new_tokens` fits the model's context."""
    if len(prompt_ids) == 0:
        raise ConfigError(EMPTY_PROMPT)
    total = len(prompt_ids) + new_tokens
    if context_length is not None and total > context_length:
        raise ConfigError(
            f"prompt ({len(prompt_ids)} tokens) + answer ({new_tokens}) = {total} tokens exceeds the "
            f"model's context of {context_length}; shorten the prompt or the answer length"
        )


def require_prompt(text: str | None) -> str:
    """The prompt, stripped, or ConfigError when nothing is left: the page's, the API's and the sweep's check."""
    text = (text or "").strip()
    if not text:
        raise ConfigError(EMPTY_PROMPT)
    return text


def _check_steps(steps: int, gen_length: int, blocks: int, block: int) -> None:
    """Steps a schedule can plan: at most one a token, an even number per block."""
    if steps > gen_length:
        raise ConfigError(f"steps {steps} > gen_length {gen_length}: at most one step per token "
                          f"(use steps <= {gen_length})")
    if steps % blocks:
        raise ConfigError(
            f"steps {steps} must be a multiple of the number of blocks ({blocks} = "
            f"gen_length {gen_length} / block_length {block}), e.g. {max(blocks, steps - steps % blocks)}"
        )


def _check_threshold(method, threshold: float) -> None:
    if not method.takes_steps and not method.takes_threshold:
        raise ConfigError(f"{method.name} decoding commits what it accepts and takes no threshold; set threshold "
                          f"to None (0 on the page)")
    _check_float("threshold", threshold, low=0.0, high=1.0, low_open=True)
    if not method.takes_threshold:
        raise ConfigError(f"threshold needs a probability-scale score; use it with one of "
                          f"{', '.join(THRESHOLD_ALGORITHMS)}, not {method.name!r}")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def _check_float(name: str, value, low: float, high: float = math.inf, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        left = "(" if low_open else "["
        right = "]" if high != math.inf else ")"
        raise ConfigError(f"{name} must be in {left}{low:g}, {high:g}{right}, got {value!r}")


def _divisors(n: int) -> list[int]:
    """_divisors(12) -> [1, 2, 3, 4, 6, 12]"""
    return [d for d in range(1, n + 1) if n % d == 0]


def largest_block(gen_length: int, limit: int) -> int:
    """The longest block length up to `limit` that divides the canvas: largest_block(12, 5) -> 4."""
    return max(d for d in _divisors(gen_length) if d <= limit)


# ---- the settings the page starts with, per registered model name

RECOMMENDED_BLOCK = 32  # Fast-dLLM's block length for LLaDA and Dream; the embedded model's training length


@dataclass(frozen=True)
class Recommendation:
    cache: str  # on where it is exact or where it measurably keeps quality
    threshold: float | None  # Fast-dLLM parallel decoding; None = one token per step
    algorithm: str = "low_confidence"
    block: int = RECOMMENDED_BLOCK  # the largest block length <= this that divides the answer length (speculative:
    # the draft length, cut at the canvas end, so any)


RECOMMENDED = {
    # Embedded SmolLM2 diffusion model: the dual cache is the fastest exact-enough mode on CPU, and the threshold
    # buys little here (it still commits about one token per forward at 0.9): time and perplexity per cache mode and
    # threshold from `python -m bench.speed`; the model's evaluation in docs/results.md, where its sampled answers
    # with this cache also sit beside its exact loop's (the block model's table: "any-order model, exact loop").
    DIFFUSION_SMOLLM2: Recommendation(cache="dual", threshold=None),
    # Embedded block-diffusion model: verified diffusion (generation/verified.py): the canvas fills in any order, several
    # drafts a step, and the causal path keeps or revises them, so the answers are its own samples (which loop far less
    # than the unmasking samplers'); speculative drafts of 3 beside the window, its exact block cache. Chosen on
    # training prompts against speculative decoding, the fastest mode (its rows in `python -m training.evaluate
    # --objective block`, run on training prompts by hand; not kept as a bench); held-out quality,
    # the share out of order and the speed against the AR model are in the model card and docs/results.md.
    BLOCK_DIFFUSION_SMOLLM2: Recommendation(cache="prefix", threshold=None, algorithm=VERIFIED.name, block=3),
    # LLaDA-8B and Dream-7B, not measurable here: Fast-dLLM's published setting (dual cache, threshold 0.9, blocks
    # of 32; arXiv 2505.22618 reports LLaDA's GSM8K score kept at several times the speed).
    LLADA_INSTRUCT: Recommendation(cache="dual", threshold=0.9),
    LLADA_BASE: Recommendation(cache="dual", threshold=0.9),
    # Dream: the dual cache alone; parallel decoding hurt Dream on HumanEval (Fast-dLLM issue #43).
    DREAM_INSTRUCT: Recommendation(cache="dual", threshold=None, algorithm="entropy"),
    DREAM_BASE: Recommendation(cache="dual", threshold=None, algorithm="entropy"),
}
# Anything else (hub ids, DiffusionGemma, which runs its own loop): the exact loop, one token per step.
PLAIN = Recommendation(cache="none", threshold=None)


def recommended_config(name: str, gen_length: int) -> DiffusionConfig:
    """The DiffusionConfig the page starts with for the model registered as `name`.

    recommended_config("unknown/model", 64) -> DiffusionConfig(gen_length=64, steps=64, block_length=32)
    """
    choice = RECOMMENDED.get(name, PLAIN)
    if not decoder(choice.algorithm).blocks_divide_canvas:  # e.g. drafts, cut at the canvas end: any length fits
        block = min(choice.block, gen_length)
    else:
        block = largest_block(gen_length, choice.block)
    return DiffusionConfig(gen_length=gen_length, steps=gen_length, block_length=block, algorithm=choice.algorithm,
                           threshold=choice.threshold, cache=choice.cache)
