"""Unmask's generation core: token ids in, token ids out, a History per run. No HTML, no text.

Public names are imported lazily (module `__getattr__`), so `import generation.history` (what
visualize/ needs) stays light: no torch, no transformers until a model or sampler is asked for.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "ARConfig": "config", "CACHE_MODES": "config", "ConfigError": "config", "DiffusionConfig": "config",
    "recommended_config": "config",
    "AUTOREGRESSIVE": "history", "DIFFUSION": "history", "History": "history", "Step": "history",
    "CausalLM": "models", "DiffusionLM": "models", "ModelUnavailable": "models",
    "block_causal_diffusion_lm": "models",
    "RunsOwnLoop": "protocols", "runs_own_loop": "protocols",
    "Decoder": "decoders", "DECODERS": "decoders", "Run": "runs", "prepare_run": "runs",
    "load_model": "registry", "loaded_models": "registry", "unload_models": "registry",
    "diffuse": "sampler", "stream_diffusion": "sampler",
    "Infill": "infill", "parse_constraints": "infill", "parse_template": "infill",
    "generate_autoregressive": "autoregressive", "stream_autoregressive": "autoregressive",
    "SweepRow": "sweep", "run_sweep": "sweep", "stream_sweep": "sweep",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'generation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
