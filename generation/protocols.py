"""What generic code may ask a model beyond the plain DiffusionLM / CausalLM fields: two capabilities.

- *Block-causal with block size k* (BD3-LM, Fast-dLLM v2) is plain data: the `DiffusionLM.block_size`
  field (None = bidirectional), set by `models.block_causal_diffusion_lm`. The sampler reads it to
  pick the block-causal step plans and their exact KV cache; it needs no methods, so no protocol.
- A model that *runs its own denoising loop* (DiffusionGemma: block diffusion from noise, driven by
  its own `generate`) declares it with the class attribute `runs_own_loop = True` and offers the
  `RunsOwnLoop` interface below. The sampler hands such a model the run (`stream`); the page asks it
  which settings it takes (`applicable_config`; runs.prepare_run words the note). Both ask through
  `runs_own_loop(model)`, never by the model's class; `stream` below is the runner of its decoder
  record (decoders.OWN_LOOP).

Torch-free on purpose (config and history are too): anything in generation/ can import it.
Left out: capabilities nothing asks for yet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from .config import DiffusionConfig
from .history import History


class RunsOwnLoop(Protocol):
    """A diffusion model whose own loop replaces `stream_diffusion`'s."""

    runs_own_loop: bool  # True: the declaration `runs_own_loop(model)` reads
    applicable_settings: tuple[str, ...]  # the DiffusionConfig fields its loop honours
    loop_note: str  # how its loop uses them, in a phrase for the page's note ("" = nothing to say)

    def stream(self, prompt_ids: list[int], config: DiffusionConfig,
               stop: threading.Event | None = None) -> Iterator[History]:
        """Yield the (same, growing) History after every step, like `stream_diffusion`."""
        ...

    def applicable_config(self, config: DiffusionConfig) -> tuple[DiffusionConfig, tuple[str, ...]]:
        """The config this loop can take (the rest reset to defaults) and the names of the settings ignored."""
        ...


def runs_own_loop(model) -> bool:
    """True when `model` declares that it runs its own denoising loop (see RunsOwnLoop)."""
    return getattr(model, "runs_own_loop", False) is True


def stream(model: RunsOwnLoop, prompt_ids: list[int], config: DiffusionConfig, stop: threading.Event | None = None,
           infill=None) -> Iterator[History]:
    """decoders.OWN_LOOP's runner: the model's own loop (which takes no given tokens: runs.prepare_run refuses them)."""
    yield from model.stream(prompt_ids, config, stop)
