"""One entry point for every model: `load_model(name_or_path)`, the registry of names behind it, the
cache of what is loaded, and `unload_models`.

Registered names (REGISTRY): the embedded models (`smollm2-135m-instruct`, `smollm2-135m-block-diffusion`,
`smollm2-135m-diffusion`),
Dream and LLaDA (Instruct and Base), DiffusionGemma. A local checkpoint directory of one of those
families is recognised by its config's model_type; any other name is taken as a hub id or local
path of a causal LM for the AR panel.

To add a model: write its loader `(device, dtype) -> DiffusionLM | CausalLM` next to the others and
add one `Registered` line to REGISTRY; its name goes in the catalogue (presets.py), which says whether
it is a diffusion model (and so its CPU dtype, dtypes.py). This module imports the loaders; no loader imports it.
Loads are lazy and cached: importing this module loads nothing.
"""

from __future__ import annotations

import copy
import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch

from .checkpoints import as_list, read_json, short_name
from .diffusion_gemma import load_diffusion_gemma
from .dream_llada import load_dream, load_llada
from . import dtypes
from .models import CausalLM, DiffusionLM, ModelUnavailable, placement
from .presets import (
    AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_GEMMA, DIFFUSION_SMOLLM2, DREAM_BASE, DREAM_INSTRUCT, LLADA_BASE,
    LLADA_INSTRUCT,
)
from .smollm2 import load_ar_smollm2, load_block_diffusion, load_embedded_diffusion


@dataclass(frozen=True)
class Registered:
    load: Callable[[str, torch.dtype], DiffusionLM | CausalLM]  # (device, dtype) -> the wrapped model


REGISTRY: dict[str, Registered] = {
    AR_SMOLLM2: Registered(load_ar_smollm2),
    DIFFUSION_SMOLLM2: Registered(load_embedded_diffusion),
    BLOCK_DIFFUSION_SMOLLM2: Registered(load_block_diffusion),
    DREAM_INSTRUCT: Registered(partial(load_dream, DREAM_INSTRUCT)),
    DREAM_BASE: Registered(partial(load_dream, DREAM_BASE)),
    LLADA_INSTRUCT: Registered(partial(load_llada, LLADA_INSTRUCT)),
    LLADA_BASE: Registered(partial(load_llada, LLADA_BASE)),
    DIFFUSION_GEMMA: Registered(partial(load_diffusion_gemma, DIFFUSION_GEMMA)),
}

# Diffusion checkpoints outside the registry, by their config.json model_type.
FAMILY_LOADERS = {"Dream": load_dream, "llada": load_llada, "diffusion_gemma": load_diffusion_gemma}

_cache: dict = {}
_cache_lock = threading.Lock()
_timing_lock = threading.Lock()


def load_model(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None):
    """A DiffusionLM or CausalLM by registered name, hub id or local path; loaded once, then cached."""
    entry = REGISTRY.get(name_or_path) or checkpoint_entry(name_or_path)
    if dtype is None and name_or_path in dtypes.TIMED_ON_CPU and dtypes.default_device(device) == "cpu":
        time_cpu_dtypes(name_or_path)
    device, dtype = dtypes.device_dtype(name_or_path, device, dtype)  # the memory estimate asks the same
    key = (name_or_path, str(device), dtype)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = entry.load(device, dtype) if entry else load_causal_lm(name_or_path, device, dtype)
        return _cache[key]


def time_cpu_dtypes(name: str) -> None:
    """Once per process: load the model on CPU in float32, cast a copy to bf16 (the same weights a bf16
    load gives, in a second instead of a second load), time their one-token steps (dtypes.one_token_step_ms),
    record them for dtypes.device_dtype and cache the faster copy; the slower one stays only if it was
    loaded before. No other load runs while it times (the page loads both panels' models at once, and a
    load beside the timing made it pick float32 once in a check)."""
    with _timing_lock:
        if dtypes.cpu_step_ms(name) is not None:
            return
        loaded_before = (name, "cpu", torch.float32) in _cache
        exact = load_model(name, "cpu", torch.float32)
        with _cache_lock:
            models = {torch.bfloat16: replace(exact, module=copy.deepcopy(exact.module).to(torch.bfloat16)),
                      torch.float32: exact}
            step_ms = dtypes.one_token_step_ms({dtype: model.module for dtype, model in models.items()})
            dtypes.record_cpu_steps(name, step_ms)
            if dtypes.fastest_on_cpu(name) == torch.bfloat16:
                _cache[(name, "cpu", torch.bfloat16)] = models[torch.bfloat16]
                if not loaded_before:
                    del _cache[(name, "cpu", torch.float32)]


def loaded_models() -> set[str]:
    """The names whose models this process holds (their memory is in use already)."""
    with _cache_lock:
        return {name for name, _, _ in _cache}


def unload_models(keep: tuple[str, ...] = ()) -> list[str]:
    """Drop every cached model not named in `keep` and return its memory (the CUDA cache too); a run
    still holding one keeps it alive until that run ends. Returns the names dropped."""
    with _cache_lock:
        dropped = [key for key in _cache if key[0] not in keep]
        for key in dropped:
            del _cache[key]
    if dropped:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return sorted({name for name, _, _ in dropped})


def checkpoint_entry(name_or_path: str) -> Registered | None:
    """The family loader for a diffusion checkpoint not in the registry (by its config's model_type), or None."""
    try:
        config = read_json(name_or_path, "config.json")
    except ModelUnavailable:
        return None
    loader = FAMILY_LOADERS.get((config or {}).get("model_type"))
    return Registered(partial(loader, name_or_path)) if loader else None


def load_causal_lm(name_or_path: str, device: str, dtype: torch.dtype) -> CausalLM:
    """Any causal LM by hub id or local path, for the AR panel."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        module = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype, **placement(device)).eval()
    except (OSError, ValueError) as error:
        known = ", ".join(REGISTRY)
        raise ModelUnavailable(
            f"could not load {name_or_path!r} as a causal LM ({error}). Registered models: {known}; "
            f"other names must be a local model directory or a reachable hub id."
        ) from error
    stops = tuple(i for i in as_list(module.generation_config.eos_token_id) if i is not None)
    return CausalLM(module, tokenizer, stop_ids=stops,
                    context_length=getattr(module.config, "max_position_embeddings", None),
                    name=short_name(name_or_path))
