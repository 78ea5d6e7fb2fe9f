"""Fixtures only (tiny models and History builders live in tests/fakes.py): the real embedded SmolLM2
AR model (once per session, for tests marked `slow`), tiny hub checkpoints, two small runs for the
renderer's tests. Also: tests/ on sys.path, the hub offline."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["HF_HUB_OFFLINE"] = "1"  # no test touches the network, even by accident


@pytest.fixture(scope="session")
def smollm2_ar():
    """The embedded AR model in float32, the exact reference (by default it loads in whichever dtype steps faster here)."""
    import torch
    from generation import load_model
    from generation.presets import AR_SMOLLM2

    return load_model(AR_SMOLLM2, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def hub_checkpoints(tmp_path_factory):
    """Tiny random Dream, LLaDA and DiffusionGemma checkpoints in their published on-disk formats."""
    from tiny_hub_checkpoints import write_diffusion_gemma, write_dream, write_llada

    root = tmp_path_factory.mktemp("hub")
    return {"dream": write_dream(root / "dream"), "llada": write_llada(root / "llada"),
            "gemma": write_diffusion_gemma(root / "gemma")}


@pytest.fixture
def diffusion():
    """A small diffusion run over the byte-level tokenizer's ids (fakes.byte_level_runs)."""
    from fakes import byte_level_runs

    return byte_level_runs()[0]


@pytest.fixture
def autoregressive():
    """A small AR run over the byte-level tokenizer's ids (fakes.byte_level_runs)."""
    from fakes import byte_level_runs

    return byte_level_runs()[1]
