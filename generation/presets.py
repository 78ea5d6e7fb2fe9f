"""The catalogue: hub names of the large models, presets pairing each diffusion model with the AR model
it was made from or compared to, the pickers' choices, and the model cards' parameter counts.

Plain data, no torch: the page reads it to draw its pickers before any model loads.
Left out: whether a preset fits this machine (memory.py), where the page starts (page/start.py),
loading (registry.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DREAM_INSTRUCT = "Dream-org/Dream-v0-Instruct-7B"
DREAM_BASE = "Dream-org/Dream-v0-Base-7B"
LLADA_INSTRUCT = "GSAI-ML/LLaDA-8B-Instruct"
LLADA_BASE = "GSAI-ML/LLaDA-8B-Base"
DIFFUSION_GEMMA = "google/diffusiongemma-26B-A4B-it"
QWEN25_7B_INSTRUCT = "Qwen/Qwen2.5-7B-Instruct"
LLAMA3_8B_INSTRUCT = "meta-llama/Meta-Llama-3-8B-Instruct"
GEMMA4_26B_INSTRUCT = "google/gemma-4-26B-A4B-it"
QWEN2_05B_INSTRUCT = "Qwen/Qwen2-0.5B-Instruct"
AR_SMOLLM2 = "smollm2-135m-instruct"  # the embedded pair (smollm2.py)
DIFFUSION_SMOLLM2 = "smollm2-135m-diffusion"  # any-order (bidirectional) masked diffusion
BLOCK_DIFFUSION_SMOLLM2 = "smollm2-135m-block-diffusion"  # block-causal: blocks left to right, any order inside

PROFILE_ENV = "UNMASK_PROFILE"  # "space": the large presets come first (a Space starts on the first that fits)


@dataclass(frozen=True)
class Preset:
    label: str  # what the picker shows
    diffusion: str  # a load_model name: registered name, hub id or local path
    autoregressive: str  # the AR model it was made from or is compared to
    large: bool  # needs a GPU (a Space or a workstation): never the start preset on a CPU
    why: str  # why this pairing


# The page starts on the first preset of the profile's order that fits (page/start.py). So the large ones
# go largest first (a GPU Space starts on the largest pair its GPU holds; Dream before LLaDA, the same size
# class, because both of its models are ungated on the hub), and the embedded pair leads the small ones
# (it runs offline). To add a preset: one line here, plus KNOWN_PARAMETERS for a model new to the catalogue.
PRESETS = (
    Preset("DiffusionGemma 26B-A4B vs Gemma 4 26B-A4B", DIFFUSION_GEMMA, GEMMA4_26B_INSTRUCT, True,
           "DiffusionGemma is Gemma 4 turned into a block diffusion model; tokens can change after acceptance"),
    Preset("Dream 7B vs Qwen2.5 7B", DREAM_INSTRUCT, QWEN25_7B_INSTRUCT, True,
           "Dream was initialised from Qwen2.5-7B: the same weights, taught to unmask"),
    Preset("LLaDA 8B vs Llama 3 8B", LLADA_INSTRUCT, LLAMA3_8B_INSTRUCT, True,
           "LLaDA-8B was trained from scratch and compared with LLaMA3-8B in its paper"),
    Preset("SmolLM2 135M block diffusion vs SmolLM2 135M", BLOCK_DIFFUSION_SMOLLM2, AR_SMOLLM2, False,
           "the embedded pair: runs offline on a laptop CPU; the diffusion model writes blocks left to right"),
    Preset("SmolLM2 135M any-order diffusion vs SmolLM2 135M", DIFFUSION_SMOLLM2, AR_SMOLLM2, False,
           "the embedded any-order model: every position can be filled at any step (slower, rougher)"),
    Preset("SmolLM2 135M block diffusion vs Qwen2 0.5B", BLOCK_DIFFUSION_SMOLLM2, QWEN2_05B_INSTRUCT, False,
           "a small AR model from the hub, for a CPU Space"),
)

DIFFUSION_CHOICES = tuple(dict.fromkeys((*(p.diffusion for p in PRESETS), DREAM_BASE, LLADA_BASE)))
AR_CHOICES = tuple(dict.fromkeys(p.autoregressive for p in PRESETS))

# Parameter counts from the model cards, for the memory check when the config cannot be read here.
KNOWN_PARAMETERS = {
    DREAM_INSTRUCT: 7.62e9, DREAM_BASE: 7.62e9, LLADA_INSTRUCT: 8.02e9, LLADA_BASE: 8.02e9,
    DIFFUSION_GEMMA: 25.8e9, QWEN25_7B_INSTRUCT: 7.62e9, LLAMA3_8B_INSTRUCT: 8.03e9,
    GEMMA4_26B_INSTRUCT: 25.8e9, QWEN2_05B_INSTRUCT: 0.49e9,
    DIFFUSION_SMOLLM2: 0.135e9, BLOCK_DIFFUSION_SMOLLM2: 0.135e9, AR_SMOLLM2: 0.135e9,
}


def profile() -> str:
    """"space" (large presets first) when UNMASK_PROFILE=space, else "local"."""
    return "space" if os.environ.get(PROFILE_ENV, "").strip().lower() == "space" else "local"


def presets(profile_name: str | None = None) -> list[Preset]:
    """The presets in picker order: large ones first on a Space profile, the embedded pair first locally.
    `profile_name`: "space" or "local" instead of this process's profile()."""
    space = (profile_name or profile()) == "space"
    return sorted(PRESETS, key=lambda p: p.large != space)
