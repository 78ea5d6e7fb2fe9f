"""The decoding methods, each one record (`Decoder`): what it takes, what it does, and which module runs it.

Validation (config.py), the run's preparation (runs.py), the sampler's dispatch (sampler.py),
`recommended_config`, the sweep and the page read these records; nothing else compares a method's name.
A record names the module that runs it (`runner`): `generation.<runner>.stream(model, prompt_ids, config,
stop, infill)` yields the (same, growing) History after every step. The runner is imported only when a run
starts, so this module (like config.py) needs no torch.

To add a decoder: write its module with that `stream`, and add its record to DECODERS below.
Left out: the algorithms themselves (unmasking.py + schemes.py, speculative.py, the model's own loop).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

# KV cache modes (Fast-dLLM, arXiv 2505.22618): what a step recomputes and what it reuses.
#   none:   every step runs the whole sequence (the published loops, token for token);
#   prefix: each block's first step runs everything and keeps the KV left of the block; later steps
#           run the block and the masked suffix. Approximate for bidirectional models; for
#           block-causal models this is the exact block cache (Fast-dLLM v2, arXiv 2509.26328);
#   dual:   the suffix's KV is kept too, so later steps run only the block (bidirectional models).
CACHE_MODES = ("none", "prefix", "dual")

ANY_ORDER = "any order"  # positions are committed wherever the method picks, inside the block
LEFT_TO_RIGHT = "left to right"  # the canvas fills from its start, a few tokens a step


@dataclass(frozen=True)
class Decoder:
    """One decoding method, as everything outside its module sees it."""

    name: str  # DiffusionConfig.algorithm's value (the own loop's is never set: the model picks it)
    description: str  # one line the page shows
    runner: str  # generation.<runner>.stream(model, prompt_ids, config, stop, infill) runs it
    order: str = ANY_ORDER  # ANY_ORDER or LEFT_TO_RIGHT: how the canvas fills
    takes_steps: bool = True  # False: it commits what it accepts; steps are neither planned nor checked
    takes_threshold: bool = False  # Fast-dLLM's threshold needs a score on a probability scale
    cache_modes: tuple[str, ...] = CACHE_MODES  # the KV cache modes it runs with
    takes_guidance: bool = False  # LLaDA's classifier-free guidance (cfg_scale)
    infills: bool = True  # it can keep given tokens (fill blanks)
    block_causal_only: bool = False  # it needs a block-causal model with shifted logits (a causal path)
    blocks_divide_canvas: bool = True  # False: block_length is a draft length, cut at the canvas end
    selectable: bool = True  # False: the model picks it (its own loop), not the algorithm setting
    fallback: str | None = None  # the decoder that stands in where it cannot run (blanks; a sweep's steps rows)
    no_infill: str = ""  # why it cannot fill blanks ({model} = the model's name)
    note: str = ""  # what the panel says while it runs ({block} = the block length); "" = nothing

    def stream(self, *args, **kwargs):
        """Run it: the runner module's `stream`, imported on first use."""
        return importlib.import_module(f"{__package__}.{self.runner}").stream(*args, **kwargs)


def _unmasking(name: str, description: str, threshold: bool = False, guidance: bool = False) -> Decoder:
    return Decoder(name, description, runner="unmasking", takes_threshold=threshold, takes_guidance=guidance)


LOW_CONFIDENCE = _unmasking("low_confidence", "LLaDA: commit the proposals the model is surest of, an even share "
                            "of each block per step", threshold=True, guidance=True)
UNMASKING = (
    LOW_CONFIDENCE,
    _unmasking("random", "LLaDA: commit proposals at random positions", guidance=True),
    _unmasking("maskgit_plus", "Dream: commit the likeliest proposals on Dream's timestep schedule", threshold=True),
    _unmasking("topk_margin", "Dream: commit the proposals whose best two tokens are furthest apart", threshold=True),
    _unmasking("entropy", "Dream: commit the proposals with the least uncertain distribution"),
    _unmasking("origin", "Dream: reveal each mask independently with the schedule's probability"),
)
# Block-causal models only: diffusion drafts, the same weights' causal path verifies them (speculative.py).
SPECULATIVE = Decoder(
    "speculative", "Drafts a block by diffusion and keeps what the model's own left-to-right reading accepts",
    runner="speculative", order=LEFT_TO_RIGHT, takes_steps=False, cache_modes=("prefix",), infills=False,
    block_causal_only=True, blocks_divide_canvas=False, fallback=LOW_CONFIDENCE.name,
    no_infill="speculative decoding writes left to right and cannot keep given tokens; pick another algorithm "
              "to fill blanks",
    note="Speculative decoding: each step the model drafts the next {block} tokens at once (diffusion), with a "
         "few alternatives for the first draft (and one more draft from word-pair counts where the model has "
         "them), and keeps the ones its own left-to-right reading accepts, so the canvas fills left to right, a "
         "few tokens a step. Pick low_confidence to watch it unmask in any order inside its blocks.")
# Block-causal models only: the diffusion stream writes ahead in any order, the causal path verifies (verified.py).
VERIFIED = Decoder(
    "verified", "Writes drafts anywhere ahead by diffusion, several a step; the model's own left-to-right reading "
                "keeps or revises them", runner="verified", order=ANY_ORDER, takes_steps=False, cache_modes=("prefix",),
    infills=False, block_causal_only=True, blocks_divide_canvas=False, fallback=LOW_CONFIDENCE.name,
    no_infill="verified diffusion checks the canvas left to right and cannot keep given tokens; pick another "
              "algorithm to fill blanks",
    note="Verified diffusion: each step the diffusion stream writes a few drafts anywhere in the next positions, the "
         "ones it is surest of first, and the model's own left-to-right reading checks them: a draft it agrees with "
         "stays (it keeps its early colour), one it disagrees with is revised and the drafts after it go back to "
         "blanks. Faint tokens are the next step's drafts for the positions right after the text.")
# A model that runs its own denoising loop (protocols.RunsOwnLoop, e.g. DiffusionGemma): the model decides.
OWN_LOOP = Decoder(
    "own loop", "The model's own denoising loop: it takes only the settings it names", runner="protocols",
    cache_modes=("none",), infills=False, selectable=False,
    no_infill="{model} runs its own denoising loop and cannot fill blanks; pick a masked diffusion model "
              "(e.g. the embedded one) for infilling")

DECODERS = {decoder.name: decoder for decoder in (*UNMASKING, SPECULATIVE, VERIFIED, OWN_LOOP)}
ALGORITHMS = tuple(name for name, decoder in DECODERS.items() if decoder.selectable)  # DiffusionConfig.algorithm


def decoder(name: str) -> Decoder:
    """The record of a selectable method; KeyError for any other name (config.py validates names first)."""
    if name not in ALGORITHMS:
        raise KeyError(name)
    return DECODERS[name]
