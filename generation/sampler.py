"""The diffusion sampler's front door: `stream_diffusion` prepares the run (runs.prepare_run: which decoder,
the config as the model runs it) and hands it to the decoder's module, yielding the (same, growing) History
after every step; `diffuse` collects it.

The decoders (decoders.py): the unmasking algorithms of LLaDA, Dream and Fast-dLLM (unmasking.py, with
schemes.py and cache_plans.py), speculative decoding for block-causal models (speculative.py), and the
own loop of a model that runs one (protocols.RunsOwnLoop, e.g. DiffusionGemma). Left out: what any of them does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from .config import DiffusionConfig
from .history import DIFFUSION, History, collect
from .infill import Infill, start_canvas
from .models import DiffusionLM
from .runs import prepare_run


def stream_diffusion(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
                     stop: threading.Event | None = None, infill: Infill | None = None) -> Iterator[History]:
    """Run the decoder that `model` and `config` call for, yielding the (same, growing) History after every step.

    `infill`: start from a canvas with given tokens (generation/infill.py) instead of all masks."""
    run = prepare_run(model, config, infilling=infill is not None)
    yield from run.decoder.stream(model, prompt_ids, run.config, stop, infill)


def diffuse(model: DiffusionLM, prompt_ids: list[int], config: DiffusionConfig,
            stop: threading.Event | None = None, infill: Infill | None = None) -> History:
    """Run the sampler to the end and return the History (an empty, stopped one if stopped before a step)."""
    history = collect(stream_diffusion(model, prompt_ids, config, stop, infill))
    if history is not None:
        return history
    return History.start(DIFFUSION, model, prompt_ids, start_canvas(model.mask_id, config.gen_length, infill),
                         config, fixed=infill.fixed if infill else (), stopped=True)
