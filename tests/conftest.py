"""Fixtures only (tiny models and History builders live in tests/fakes.py): the real embedded SmolLM2
AR model, loaded once per session for tests marked `slow`. Also: tests/ on sys.path, the hub offline."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["HF_HUB_OFFLINE"] = "1"  # no test touches the network, even by accident


@pytest.fixture(scope="session")
def smollm2_ar():
    from generation import load_model
    from generation.presets import AR_SMOLLM2

    return load_model(AR_SMOLLM2, device="cpu")
