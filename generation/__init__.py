"""Unmask's generation core: token ids in, token ids out, a History per run. No HTML, no text."""

from .autoregressive import generate_autoregressive, stream_autoregressive
from .config import ARConfig, ConfigError, DiffusionConfig
from .history import AUTOREGRESSIVE, DIFFUSION, History, Step
from .models import CausalLM, DiffusionLM, ModelUnavailable, load_model, unload_models
from .sampler import diffuse, stream_diffusion

__all__ = [
    "ARConfig", "AUTOREGRESSIVE", "CausalLM", "ConfigError", "DIFFUSION", "DiffusionConfig", "DiffusionLM",
    "History", "ModelUnavailable", "Step", "diffuse", "generate_autoregressive", "load_model",
    "stream_autoregressive", "stream_diffusion", "unload_models",
]
