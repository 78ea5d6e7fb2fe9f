"""Where and in which dtype a model loads: one decision, asked by the loader (`registry.load_model`) and
by the memory estimate (`memory.can_run`), so a verdict and the load that follows it agree.

CUDA when present, in bf16. On CPU, bf16 for diffusion models and float32 for AR ones. Measured here
(bench/cpu_dtype.py, SmolLM2-135M, 2 cores): a whole-sequence forward (a diffusion step, 128-297
tokens) takes about half as long in bf16; a one-token forward (an AR decoding step) is no faster in
bf16, and float32 keeps the AR teacher exact.

A model's kind comes from the catalogue (presets.DIFFUSION_CHOICES, which holds every registered
diffusion model), else from its config.json's model_type (a diffusion family); anything else is AR.
Left out: loading (registry.py), the estimate (memory.py).
"""

from __future__ import annotations

import torch

from .checkpoints import read_json
from .models import ModelUnavailable
from .presets import AR_CHOICES, DIFFUSION_CHOICES

DIFFUSION_MODEL_TYPES = ("Dream", "llada", "diffusion_gemma")  # config.json model_types registry.FAMILY_LOADERS loads


def device_dtype(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None, *,
                 cache_only: bool = False) -> tuple[str, torch.dtype]:
    """(device, dtype) that load_model uses for this model; an explicit device or dtype is kept as given.

    device_dtype("smollm2-135m-diffusion", "cpu") == ("cpu", torch.bfloat16); for "smollm2-135m-instruct",
    ("cpu", torch.float32). cache_only: read no config from the network (the estimate's way).
    """
    device = default_device(device)
    if dtype is None:
        on_gpu = str(device).startswith("cuda")
        dtype = torch.bfloat16 if on_gpu or is_diffusion(name_or_path, cache_only=cache_only) else torch.float32
    return device, dtype


def default_device(device: str | None = None) -> str:
    """The device asked for, else "cuda" when present, else "cpu"."""
    if device is not None:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def is_diffusion(name_or_path: str, cache_only: bool = False) -> bool:
    """A catalogue diffusion name, or a checkpoint whose config names a diffusion family."""
    if name_or_path in DIFFUSION_CHOICES:
        return True
    if name_or_path in AR_CHOICES:  # known AR: no need to read its config
        return False
    try:
        config = read_json(name_or_path, "config.json", cache_only=cache_only)
    except ModelUnavailable:
        return False
    return (config or {}).get("model_type") in DIFFUSION_MODEL_TYPES
