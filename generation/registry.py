"""One entry point for every model: `load_model(name_or_path)`, the registry of names behind it, the
cache of what is loaded, and `unload_models`.

Registered names (REGISTRY): each family's catalogue names (families.py: the embedded SmolLM2 models,
Dream and LLaDA, Instruct and Base, DiffusionGemma). A local checkpoint directory of one of those
families is recognised by its config's model_type (its family's record); any other name is taken as a hub
id or local path of a causal LM for the AR panel. A family's weights load only once memory.can_run says
they fit (the family record says which families are checked).

To add a model family, touch three files: its loader module in generation/ (the loader
`(name_or_path, device, dtype) -> DiffusionLM | CausalLM` and any translation of its config.json), one
`Family` record in generation/families.py (its names, model_type, config translation, transformers class),
and generation/presets.py (its names in the catalogue, which also says it is a diffusion model and so its
CPU dtype, dtypes.py; KNOWN_PARAMETERS; a preset). This module, dtypes.py and memory.py read the record.
This module imports the loaders (through families.py); no loader imports it.
Loads are lazy and cached: importing this module loads nothing.
"""

from __future__ import annotations

import copy
import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from .checkpoints import as_list, read_json, short_name
from . import dtypes
from .families import FAMILIES, Family, by_model_type
from .memory import can_run
from .models import CausalLM, DiffusionLM, ModelUnavailable, placement


@dataclass(frozen=True)
class Registered:
    load: Callable[[str, torch.dtype], DiffusionLM | CausalLM]  # (device, dtype) -> the wrapped model


def family_entry(family: Family, name_or_path: str) -> Registered:
    """`name_or_path` loaded by its family, refused with can_run's numbers first where the family is checked."""
    def load(device: str, dtype: torch.dtype) -> DiffusionLM | CausalLM:
        if family.check_fit:
            verdict = can_run(name_or_path, device, dtype, config=family.transformers_config(name_or_path))
            if not verdict.ok:
                raise ModelUnavailable(verdict.message)
        return family.load(name_or_path, device, dtype)

    return Registered(load)


REGISTRY: dict[str, Registered] = {name: family_entry(family, name) for family in FAMILIES for name in family.names}

# Diffusion checkpoints outside the registry, by their config.json model_type.
FAMILY_LOADERS = {model_type: family.load for family in FAMILIES for model_type in family.model_types}

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
    family = by_model_type((config or {}).get("model_type"))
    return family_entry(family, name_or_path) if family else None


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
