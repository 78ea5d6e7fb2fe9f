"""The autoregressive side: transformers `generate` in a thread, streamed token by token.

`stream_autoregressive` yields the same `History` type as the diffusion sampler (step i appends
token i), so one visualisation and one set of charts serve both. The streamer follows
transformers' `TextIteratorStreamer` (put/end feeding a queue that the caller iterates) but carries
token ids and timestamps instead of text: generation/ works on ids, and text is decoded whole at
the edge. A stopping criterion watches the stop signal, so the generate thread really ends.

Left out: batching, and per-run sampling generators (transformers samples from torch's global
RNG, so two sampled AR runs at the same moment can perturb each other's draws).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing
from queue import Queue

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from .background import Halt, iterate_in_thread
from .config import ARConfig, check_fits
from .history import AUTOREGRESSIVE, History, collect
from .models import CausalLM


class _TokenProbabilities(LogitsProcessor):
    """Keeps the model's distribution over the next token, to score the token that gets sampled."""

    def __init__(self) -> None:
        self.latest: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.latest = torch.softmax(scores[0].float(), dim=-1)
        return scores


class TokenIteratorStreamer(BaseStreamer):
    """Queue of (token id, probability, perf_counter time) per new token; None marks the end."""

    def __init__(self, probabilities: _TokenProbabilities) -> None:
        self.queue: Queue = Queue()
        self.probabilities = probabilities
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first puts the prompt
            self.prompt_seen = True
            return
        now = time.perf_counter()
        for token in value.flatten().tolist():
            probability = None if self.probabilities.latest is None else float(self.probabilities.latest[token])
            self.queue.put((token, probability, now))

    def end(self) -> None:
        self.queue.put(None)

    def __iter__(self):
        while (item := self.queue.get()) is not None:
            yield item


class _StopWhen(StoppingCriteria):
    def __init__(self, halt: Halt) -> None:
        self.halt = halt

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.halt(), dtype=torch.bool, device=input_ids.device)


def stream_autoregressive(model: CausalLM, prompt_ids: list[int], config: ARConfig,
                          stop: threading.Event | None = None, prefix: list[int] = ()) -> Iterator[History]:
    """Generate in a thread, yielding the (same, growing) History after every token.

    `prefix`: given answer tokens to continue (what AR can do with an infilling template: the text
    before the first blank); they start the canvas as fixed positions."""
    check_fits(prompt_ids, len(prefix) + config.max_new_tokens, model.context_length)
    history = History(kind=AUTOREGRESSIVE, prompt_ids=list(prompt_ids), initial=list(prefix),
                      stop_ids=list(model.stop_ids), planned_steps=config.max_new_tokens,
                      settings=config.to_dict(), model=model.name, fixed=list(range(len(prefix))))
    prompt_ids = [*prompt_ids, *prefix]
    probabilities = _TokenProbabilities()
    streamer = TokenIteratorStreamer(probabilities)
    halt = Halt(stop)
    last = time.perf_counter()
    tokens = iterate_in_thread(lambda: _generate(model, prompt_ids, config, streamer, probabilities, halt),
                               streamer, streamer.end, halt, name="unmask-ar-generate")
    with closing(tokens):  # leaving early ends the thread
        for token, probability, at in tokens:
            if halt.requested:
                break  # Stop freezes the answer: tokens the thread made after it are not recorded
            history.record([history.length], [token], [probability], at - last, len(history.steps) + 1)
            last = at
            yield history
    history.stopped = halt.requested


def generate_autoregressive(model: CausalLM, prompt_ids: list[int], config: ARConfig,
                            stop: threading.Event | None = None, prefix: list[int] = ()) -> History:
    """Run to the end and return the History (the streamed one, collected)."""
    history = collect(stream_autoregressive(model, prompt_ids, config, stop, prefix))
    if history is None:
        history = History(kind=AUTOREGRESSIVE, prompt_ids=list(prompt_ids), initial=list(prefix),
                          stop_ids=list(model.stop_ids), settings=config.to_dict(), model=model.name,
                          stopped=stop is not None and stop.is_set(), fixed=list(range(len(prefix))))
    return history


def _generate(model: CausalLM, prompt_ids: list[int], config: ARConfig, streamer: TokenIteratorStreamer,
              probabilities: _TokenProbabilities, halt: Halt) -> None:
    input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=model.device)
    sampling = config.temperature > 0
    if sampling:
        torch.manual_seed(config.seed)
    with torch.no_grad():
        model.module.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
            max_new_tokens=config.max_new_tokens, do_sample=sampling,
            # top_k=0 switches off the model's default top-k (often 50); None would keep it.
            temperature=config.temperature if sampling else None,
            top_p=config.top_p if sampling else None, top_k=(config.top_k or 0) if sampling else None,
            eos_token_id=list(model.stop_ids) or None, pad_token_id=_pad_id(model),
            streamer=streamer, logits_processor=LogitsProcessorList([probabilities]),
            stopping_criteria=StoppingCriteriaList([_StopWhen(halt)]),
        )


def _pad_id(model: CausalLM) -> int | None:
    pad = getattr(model.tokenizer, "pad_token_id", None)
    return pad if pad is not None else (model.stop_ids[0] if model.stop_ids else None)
