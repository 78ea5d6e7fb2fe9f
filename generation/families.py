"""Model families: one record per family with everything the rest of generation/ needs to know about it:
the catalogue names it loads, its loader, the config.json model_type that marks its checkpoints, the
native transformers config and class those checkpoints build. The registry (names, loads, the fit check
before weights load), dtypes.py (a checkpoint's kind, hence its CPU dtype) and memory.py (parameter counts
on the meta device) read these records; none of them names a family.

Left out: the loaders themselves (each family's module), naming in the UI (presets.py), caching (registry.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .checkpoints import read_config
from .diffusion_gemma import DIFFUSION_GEMMA_MODEL_TYPE, load_diffusion_gemma
from .dream_llada import (DREAM_MODEL_TYPE, LLADA_MODEL_TYPE, dream_qwen2_config, llada_llama_config, load_dream,
                          load_llada)
from .models import CausalLM, DiffusionLM, ModelUnavailable
from .presets import (
    AR_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2, DIFFUSION_GEMMA, DIFFUSION_SMOLLM2, DREAM_BASE, DREAM_INSTRUCT, LLADA_BASE,
    LLADA_INSTRUCT,
)
from .smollm2 import load_embedded_smollm2


@dataclass(frozen=True)
class Family:
    name: str  # for messages
    load: Callable[[str, str, torch.dtype], DiffusionLM | CausalLM]  # (name or path, device, dtype) -> the model
    names: tuple[str, ...] = ()  # its catalogue names (presets.py) that load_model takes
    model_types: tuple[str, ...] = ()  # config.json model_type of its diffusion checkpoints: a local copy is one
    native_config: Callable[[dict], Any] | None = None  # config.json -> the transformers config it loads into
    model_class: str | None = None  # the transformers class it builds, where AutoModelForCausalLM cannot
    check_fit: bool = True  # weights too large for this machine are refused before they load (memory.can_run)

    def transformers_config(self, name_or_path: str):
        """The config its loader builds the model from, read from the checkpoint (the network allowed)."""
        if self.native_config is not None:
            return self.native_config(read_config(name_or_path))
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(name_or_path)
        except (OSError, ValueError) as error:
            raise ModelUnavailable(f"could not read the config of {name_or_path!r}: {error}") from error


FAMILIES = (
    # The embedded pair: small enough for any machine, recognised by name only (a SmolLM2 checkpoint is an AR model).
    Family("SmolLM2 (embedded)", load_embedded_smollm2, (AR_SMOLLM2, DIFFUSION_SMOLLM2, BLOCK_DIFFUSION_SMOLLM2),
           check_fit=False),
    Family("Dream", load_dream, (DREAM_INSTRUCT, DREAM_BASE), (DREAM_MODEL_TYPE,), dream_qwen2_config),
    Family("LLaDA", load_llada, (LLADA_INSTRUCT, LLADA_BASE), (LLADA_MODEL_TYPE,), llada_llama_config),
    Family("DiffusionGemma", load_diffusion_gemma, (DIFFUSION_GEMMA,), (DIFFUSION_GEMMA_MODEL_TYPE,),
           model_class="DiffusionGemmaForBlockDiffusion"),
)


def by_model_type(model_type: str | None) -> Family | None:
    """The family whose checkpoints carry this config.json model_type, or None (an AR model, or unknown)."""
    return next((family for family in FAMILIES if model_type and model_type in family.model_types), None)
