"""Will it fit? Before anything loads, a model's parameter count (from its config, built on the meta
device, else the model card's) x bytes per dtype (the dtype the loader will use: dtypes.py) + a margin,
against the memory free now, with a one-sentence verdict the page can show ("needs ~35 GiB, 22 GiB RAM free").

Left out: quantisation, CPU offload (a model that does not fit is refused), measuring activations.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoints import read_json, short_name
from .dtypes import default_device, device_dtype
from .families import by_model_type
from .models import ModelUnavailable
from .presets import KNOWN_PARAMETERS

GPU_MEMORY_ENV = "UNMASK_GPU_MEMORY_GB"  # GPU memory to plan with where it cannot be measured (ZeroGPU)
ZERO_GPU_DEFAULT_GB = 70.0  # a ZeroGPU "large" slice (half an H200)
MEMORY_MARGIN = 0.15  # activations, the logits of a 512-token canvas, CUDA context, fragmentation
MEMORY_MARGIN_BYTES = 2 * 2**30

BYTES_PER_DTYPE = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str  # one sentence for the UI: what it needs, what there is, what to do
    need_bytes: int | None
    free_bytes: int | None
    device: str


def parameter_count(name_or_path: str, config=None) -> int | None:
    """Exact count from the config (model built on the meta device), else the model card's, else None."""
    if config is None:
        config = _native_config(name_or_path)
    if config is not None:
        try:
            with torch.device("meta"):
                model = _build(config)
            return sum(p.numel() for p in model.parameters())
        except (ValueError, KeyError, TypeError):
            pass
    count = KNOWN_PARAMETERS.get(name_or_path)
    return int(count) if count else None


def _native_config(name_or_path: str):
    """The transformers config the loader would use, read without downloading weights (None if unreadable)."""
    try:
        raw = read_json(name_or_path, "config.json", cache_only=True)
    except ModelUnavailable:
        return None
    if not raw:
        return None
    family = by_model_type(raw.get("model_type"))
    if family and family.native_config:
        return family.native_config(raw)
    from transformers import AutoConfig

    try:
        return AutoConfig.for_model(raw.pop("model_type", None), **raw)
    except (ValueError, KeyError, TypeError):
        return None


def _build(config):
    """The model `config` describes, built by its family's transformers class, else as a causal LM."""
    import transformers

    family = by_model_type(getattr(config, "model_type", None))
    if family and family.model_class:
        return getattr(transformers, family.model_class)(config)
    return transformers.AutoModelForCausalLM.from_config(config)


def free_memory(device: str) -> int:
    """Bytes free for weights on `device`: all visible GPUs together for "cuda" (device_map="auto"),
    UNMASK_GPU_MEMORY_GB where set (ZeroGPU, where nothing can be measured before the GPU is attached),
    MemAvailable for the CPU."""
    device = str(device)
    if device.startswith("cuda"):
        if os.environ.get(GPU_MEMORY_ENV):
            return int(float(os.environ[GPU_MEMORY_ENV]) * 2**30)
        if os.environ.get("SPACES_ZERO_GPU"):
            return int(ZERO_GPU_DEFAULT_GB * 2**30)
        indices = range(torch.cuda.device_count()) if device == "cuda" else [torch.device(device).index or 0]
        return sum(torch.cuda.mem_get_info(i)[0] for i in indices)
    return _available_cpu_memory()


def _available_cpu_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def needed_memory(parameters: int, dtype: torch.dtype) -> int:
    """needed_memory(7.6e9, bf16) ~ 17.5 GiB: weights x (1 + margin) + a fixed 2 GiB."""
    return int(parameters * BYTES_PER_DTYPE.get(dtype, 4) * (1 + MEMORY_MARGIN) + MEMORY_MARGIN_BYTES)


def can_run(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None, *,
            config=None, alongside: tuple[str, ...] = ()) -> Verdict:
    """Whether `name_or_path` (plus the models `alongside`, e.g. the AR partner) fits in free memory now,
    each model in the dtype the loader will give it (dtypes.device_dtype) unless `dtype` is given."""
    device = default_device(device)
    where = "GPU memory" if str(device).startswith("cuda") else "RAM"
    sizes = model_sizes((name_or_path, *alongside), device, dtype, config=config)
    unknown = [name for name, count, _ in sizes if count is None]
    if unknown:
        return Verdict(True, f"size of {', '.join(unknown)} unknown here; trying to load", None, None, str(device))
    need = sum(needed_memory(count, kind) for _, count, kind in sizes)
    free = free_memory(device)
    described = " + ".join(f"{short_name(n)} {c / 1e9:.1f}B params in {_dtype_name(d)}" for n, c, d in sizes)
    if need <= free:
        return Verdict(True, f"fits: {described} need ~{gib(need)} of {gib(free)} free {where}", need, free,
                       str(device))
    hint = ("use a GPU with more memory, or pick a smaller preset" if where == "GPU memory"
            else "it needs a GPU (bf16) or more RAM; pick the embedded SmolLM2 pair here")
    return Verdict(False, f"{described} need ~{gib(need)} but only {gib(free)} of {where} is free on {device}: "
                          f"{hint}", need, free, str(device))


def model_sizes(names: tuple[str, ...], device: str, dtype: torch.dtype | None = None, *, config=None,
                card_counts: bool = False) -> list[tuple[str, int | None, torch.dtype]]:
    """(name, parameter count or None, the dtype it loads in) for each model; `config` is the first's.
    card_counts: the model cards' counts only (KNOWN_PARAMETERS), whatever this machine's hub cache holds."""
    configs = (config, *([None] * (len(names) - 1)))

    def count(name, cfg):
        return int(KNOWN_PARAMETERS[name]) if card_counts and name in KNOWN_PARAMETERS else parameter_count(name, cfg)

    return [(name, count(name, cfg), device_dtype(name, device, dtype, cache_only=True)[1])
            for name, cfg in zip(dict.fromkeys(names), configs)]


def needed_for(names: tuple[str, ...], device: str, card_counts: bool = False) -> int | None:
    """Bytes the models need together on `device` (None when a size is unknown): can_run's estimate."""
    sizes = model_sizes(names, device, card_counts=card_counts)
    if any(count is None for _, count, _ in sizes):
        return None
    return sum(needed_memory(count, kind) for _, count, kind in sizes)


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _dtype_name(dtype: torch.dtype) -> str:
    return re.sub(r"^torch\.", "", str(dtype))
