"""The autoregressive side: a KV-cached decoding loop in the caller's thread, one History step per token.

`stream_autoregressive` yields the same `History` type as the diffusion sampler (step i appends
token i), so one visualisation and one set of charts serve both. Each step is one forward of the
newest token over the model's KV cache (the first one prefills the prompt), the vocabulary projection
of that position only, and a draw from the tempered distribution (`sampling.tempered`: the same
penalties, temperature, top-p, top-k as the diffusion samplers) with the run's own seeded generator, so runs at
the same moment never perturb each other's draws. Each step also records the 5 likeliest tokens of
that distribution (what else the model could have written there). Greedy at temperature 0: transformers' greedy
`generate`, token for token.

Why a loop here and not transformers' `generate` in a thread feeding a streamer (what this module did
before): CPU torch (libgomp) runs markedly slower in a thread started after the main thread has run
its parallel kernels (background.py says why). The evaluation and the benchmarks run the diffusion
sampler in the main thread, so a generate thread handicapped the AR baseline they compare against.
In the caller's thread the two sides run alike, and the loop is as fast as `generate` (the AR rows of
`python -m bench.speed` time it).

Left out: batching, transformers' other generation options (beams, n-gram bans).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import torch

from .config import ARConfig, check_fits
from .history import AUTOREGRESSIVE, History, collect
from .models import CausalLM
from .sampling import Penalties, distribution, pick, top_candidates


@torch.no_grad()
def stream_autoregressive(model: CausalLM, prompt_ids: list[int], config: ARConfig,
                          stop: threading.Event | None = None, prefix: list[int] = ()) -> Iterator[History]:
    """Decode up to `config.max_new_tokens` tokens, yielding the (same, growing) History after every one.

    `stop` ends the run before the next forward (`history.stopped`). `prefix`: given answer tokens to
    continue (what AR can do with an infilling template: the text before the first blank); they start
    the canvas as fixed positions."""
    check_fits(prompt_ids, len(prefix) + config.max_new_tokens, model.context_length)
    history = History.start(AUTOREGRESSIVE, model, prompt_ids, prefix, config, planned_steps=config.max_new_tokens,
                            fixed=range(len(prefix)))
    generator = torch.Generator(device=model.device).manual_seed(config.seed)
    feed = torch.tensor([[*prompt_ids, *prefix]], dtype=torch.long, device=model.device)
    cache = None  # the model's own kind of KV cache, made by its first forward
    seen = [*prompt_ids, *prefix]  # the text so far: what the penalties read
    penalties = Penalties.of(config, model)
    for forward_passes in range(1, config.max_new_tokens + 1):
        if stop is not None and stop.is_set():
            history.stopped = True
            return
        began = time.perf_counter()
        output = model.module(feed, past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache = output.past_key_values
        logits = output.logits[0, -1].float()  # (V,)
        p = distribution(penalties(logits, seen), config)
        token = pick(p, config, generator)
        seen.append(token)
        history.record([history.length], [token], [float(p[token])], time.perf_counter() - began, forward_passes,
                       candidates=top_candidates(logits[None]))
        yield history
        if token in model.stop_ids:
            return
        feed = torch.tensor([[token]], dtype=torch.long, device=model.device)


def generate_autoregressive(model: CausalLM, prompt_ids: list[int], config: ARConfig,
                            stop: threading.Event | None = None, prefix: list[int] = ()) -> History:
    """Run to the end and return the History (the streamed one, collected)."""
    history = collect(stream_autoregressive(model, prompt_ids, config, stop, prefix))
    if history is None:  # stopped before the first token
        history = History.start(AUTOREGRESSIVE, model, prompt_ids, prefix, config, fixed=range(len(prefix)),
                                stopped=True)
    return history
