"""DiffusionGemma: transformers' native block diffusion model, run by its own `generate`, recorded
into our `History` draft by draft and streamed live.

DiffusionGemma does not unmask. It writes the answer in canvases of `canvas_length` tokens (256),
one after the other; each canvas starts as uniform random tokens and every denoising step predicts
all of it, keeps the tokens the entropy-bound sampler accepts and renoises the rest. Its
`generate(streamer=...)` calls `streamer.put_draft(argmax_canvas)` once per denoising step: the
draft is what we show. So in our History:
- a step = one denoising step (one draft); the positions it changed are those whose draft token
  differs from the previous draft of the same canvas (all of them on a canvas's first draft);
  tokens can change again after being accepted, so `last_changed` is the last draft that changed it;
- `first_committed` = the first step in which the sampler *accepted* the position (kept its token
  instead of renoising it). Acceptance is re-decided every step, so a position can be accepted and
  still change later: exactly the revisions the demo wants to show (last_changed > first_committed);
- `initial` is a placeholder (the tokenizer's mask or pad id) for positions not drafted yet: the
  random starting canvas is noise that is never shown;
- `planned_steps` is None: the model stops a canvas early once its drafts are stable and confident.

The generate loop runs in a thread; the stop signal is checked in the streamer, which raises to
unwind `generate`, so the thread really ends. This module alone decides which settings reach
DiffusionGemma's loop: `applicable_config` returns the config it takes and the names of the ones it
ignores (the page words the note); `stream` refuses the others with ConfigError. The model declares
`runs_own_loop = True` (protocols.RunsOwnLoop), so the generic sampler hands it the run.
Left out: images (the vision tower is loaded
with the checkpoint but never fed), batching.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from queue import Queue
from typing import ClassVar

import torch

from .background import Halt, iterate_in_thread
from .config import ConfigError, DiffusionConfig, check_fits
from .history import DIFFUSION, History
from .models import DiffusionLM, ModelUnavailable, placement

DIFFUSION_GEMMA_MODEL_TYPE = "diffusion_gemma"  # config.json's model_type: its checkpoints (families.py)

# The only DiffusionConfig fields DiffusionGemma's own loop can honour; the others must keep their defaults.
APPLICABLE_SETTINGS = ("gen_length", "steps", "seed")
_DEFAULTS = DiffusionConfig()

_active = threading.local()  # the sampler of the generate call running in this thread


@lru_cache(maxsize=None)
def recording_class():
    """DiffusionGemmaForBlockDiffusion that lets this thread's streamer see its sampler's acceptance mask."""
    from transformers import DiffusionGemmaForBlockDiffusion

    class RecordingDiffusionGemma(DiffusionGemmaForBlockDiffusion):
        def _prepare_sampler(self, generation_config):
            sampler = super()._prepare_sampler(generation_config)
            _active.sampler = sampler  # thread-local: concurrent runs on one model do not mix
            return sampler

    return RecordingDiffusionGemma


@dataclass
class BlockDiffusionLM(DiffusionLM):
    """A diffusion model that runs its own denoising loop; `stream_diffusion` hands it over to `stream`."""

    canvas_length: int = 256  # tokens denoised together; the answer grows one canvas at a time
    runs_own_loop: ClassVar[bool] = True  # protocols.RunsOwnLoop: stream() and applicable_config()
    applicable_settings: ClassVar[tuple[str, ...]] = APPLICABLE_SETTINGS
    loop_note: ClassVar[str] = ("the steps are a budget shared by its canvases; it stops a canvas early once its "
                                "drafts are stable")

    def applicable_config(self, config: DiffusionConfig) -> tuple[DiffusionConfig, tuple[str, ...]]:
        return applicable_config(config)

    def stream(self, prompt_ids: list[int], config: DiffusionConfig,
               stop: threading.Event | None = None) -> Iterator[History]:
        """Run the model's generate in a thread, yielding the (same, growing) History after every draft."""
        check_config(config)
        canvases = math.ceil(config.gen_length / self.canvas_length)
        length = canvases * self.canvas_length
        check_fits(prompt_ids, length, self.context_length)
        history = History.start(DIFFUSION, self, prompt_ids, [self.mask_id] * length, config)
        halt = Halt(stop)
        streamer = DraftStreamer(halt)
        kwargs = dict(max_new_tokens=length, max_denoising_steps=max(1, config.steps // canvases))
        drafts = iterate_in_thread(lambda: self._generate(prompt_ids, kwargs, config.seed, streamer),
                                   streamer, streamer.end, halt, name="unmask-diffusion-gemma")
        previous: dict[int, list[int]] = {}
        forward_passes, last = 0, time.perf_counter()
        for canvas, draft, accepted, at in drafts:
            offset = canvas * self.canvas_length
            before = previous.get(canvas)
            changed = [i for i, token in enumerate(draft) if before is None or token != before[i]]
            forward_passes += 2 if before is None else 1  # a canvas starts with one encoder pass
            previous[canvas] = draft
            history.record(positions=[offset + i for i in changed], tokens=[draft[i] for i in changed],
                           scores=[None] * len(changed), seconds=at - last, forward_passes=forward_passes,
                           committed=[offset + i for i in accepted])
            last = at
            yield history
        history.stopped = halt.requested

    def _generate(self, prompt_ids: list[int], kwargs: dict, seed: int, streamer: DraftStreamer) -> None:
        try:
            # DiffusionGemma draws its noise from torch's global RNG: seed it here.
            torch.manual_seed(seed)
            input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.device)
            with torch.no_grad():
                self.module.generate(input_ids=input_ids, streamer=streamer,
                                     eos_token_id=list(self.stop_ids) or None, **kwargs)
        except _Stopped:
            pass
        finally:
            _active.sampler = None


class _Stopped(Exception):
    """Raised inside generate by the streamer when the stop signal is set, to unwind the thread."""


class DraftStreamer:
    """Queue of (canvas index, draft token ids, accepted positions, perf_counter time); None marks the end.

    Follows transformers' streamer protocol (`put`, `end`) plus DiffusionGemma's `put_draft`."""

    def __init__(self, halt: Halt) -> None:
        self.queue: Queue = Queue()
        self.halt = halt
        self.prompt_seen = False
        self.canvas = 0

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate first puts the prompt, then each finished canvas
            self.prompt_seen = True
            return
        self.canvas += 1
        if self.halt():
            raise _Stopped

    def put_draft(self, value: torch.Tensor, **kwargs) -> None:
        if self.halt():
            raise _Stopped
        sampler = getattr(_active, "sampler", None)
        mask = getattr(sampler, "accepted_token_mask", None)
        accepted = [] if mask is None else mask[0].nonzero().squeeze(1).tolist()
        self.queue.put((self.canvas, value[0].tolist(), accepted, time.perf_counter()))

    def end(self) -> None:
        self.queue.put(None)

    def __iter__(self):
        while (item := self.queue.get()) is not None:
            yield item


def ignored_settings(config: DiffusionConfig) -> tuple[str, ...]:
    """Names of the settings DiffusionGemma's loop cannot honour that differ from their defaults.

    ignored_settings(DiffusionConfig(temperature=0.5, seed=3)) -> ("temperature",)"""
    return tuple(f.name for f in dataclasses.fields(DiffusionConfig)
                 if f.name not in APPLICABLE_SETTINGS and getattr(config, f.name) != getattr(_DEFAULTS, f.name))


def check_config(config: DiffusionConfig) -> None:
    """Refuse settings DiffusionGemma's loop cannot honour (it has its own sampler and temperature schedule)."""
    ignored = ignored_settings(config)
    if ignored:
        raise ConfigError(
            f"DiffusionGemma runs its own entropy-bound sampler with its own temperature schedule; it can only "
            f"take {', '.join(APPLICABLE_SETTINGS)}. Reset {', '.join(ignored)} to the default "
            f"(generation.diffusion_gemma.applicable_config does it)"
        )


def applicable_config(config: DiffusionConfig) -> tuple[DiffusionConfig, tuple[str, ...]]:
    """The config with every setting DiffusionGemma cannot take reset to its default, and the names reset."""
    kept = {name: getattr(config, name) for name in APPLICABLE_SETTINGS}
    return DiffusionConfig(**kept), ignored_settings(config)


def load_diffusion_gemma(name_or_path: str, device: str, dtype: torch.dtype) -> BlockDiffusionLM:
    """DiffusionGemma (hub id or local checkpoint) with its tokenizer and chat template (the registry has
    read its config and checked that it fits: families.py)."""
    tokenizer = _tokenizer(name_or_path)
    try:
        module = recording_class().from_pretrained(name_or_path, dtype=dtype, **placement(device)).eval()
    except (OSError, ValueError) as error:
        raise ModelUnavailable(f"could not load the weights of {name_or_path!r}: {error}") from error
    return block_diffusion_lm(module, tokenizer, name=str(name_or_path).rstrip("/").split("/")[-1])


def block_diffusion_lm(module, tokenizer, name: str = "diffusion-gemma") -> BlockDiffusionLM:
    """Wrap a (recording) DiffusionGemmaForBlockDiffusion with its conventions."""
    text = module.config.get_text_config()
    eos = module.generation_config.eos_token_id
    if eos is None:
        eos = text.eos_token_id
    stops = tuple(dict.fromkeys(i for i in (eos if isinstance(eos, list) else [eos]) if i is not None))
    placeholder = next(i for i in (getattr(tokenizer, "mask_token_id", None), getattr(tokenizer, "pad_token_id", None),
                                   text.pad_token_id, 0) if i is not None)
    return BlockDiffusionLM(
        module=module, mask_id=placeholder, shift_logits=False, stop_ids=stops,
        context_length=text.max_position_embeddings, name=name, tokenizer=tokenizer,
        canvas_length=module.config.canvas_length,
    )


def _tokenizer(name_or_path: str):
    from transformers import AutoProcessor, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise ModelUnavailable(f"could not load the tokenizer of {name_or_path!r}: {error}") from error
    if not getattr(tokenizer, "chat_template", None):  # multimodal checkpoints keep it with the processor
        try:
            tokenizer.chat_template = AutoProcessor.from_pretrained(name_or_path).chat_template
        except (OSError, ValueError):
            pass
    return tokenizer
