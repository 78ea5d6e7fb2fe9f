"""Unmask's generation core: token ids in, token ids out, a History per run. No HTML, no text."""

from .autoregressive import generate_autoregressive, stream_autoregressive
from .config import ARConfig, ConfigError, DiffusionConfig, recommended_config
from .history import AUTOREGRESSIVE, DIFFUSION, History, Step
from .models import CausalLM, DiffusionLM, ModelUnavailable, block_causal_diffusion_lm, load_model, unload_models
from .sampler import diffuse, stream_diffusion

__all__ = [
    "ARConfig", "AUTOREGRESSIVE", "CausalLM", "ConfigError", "DIFFUSION", "DiffusionConfig", "DiffusionLM",
    "History", "ModelUnavailable", "Step", "block_causal_diffusion_lm", "diffuse", "generate_autoregressive",
    "load_model", "recommended_config", "stream_autoregressive", "stream_diffusion", "unload_models",
]
