"""Shared fixtures: tiny random transformers models built from a config (no download), and the
real embedded SmolLM2 models (loaded once per session, for tests marked `slow`)."""

import os
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["HF_HUB_OFFLINE"] = "1"  # no test touches the network, even by accident

from generation.models import DiffusionLM, make_bidirectional  # noqa: E402

TINY_VOCAB = 96
TINY_MASK_ID = TINY_VOCAB - 1
TINY_EOS_ID = 0


def tiny_llama(seed: int = 0, vocab: int = TINY_VOCAB, layers: int = 2) -> LlamaForCausalLM:
    """A randomly initialised Llama small enough to run hundreds of steps per second on CPU."""
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.3)  # peaked distributions: exact score ties are rare
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def tiny_diffusion_lm(seed: int = 0, shift_logits: bool = False, never_propose=(TINY_MASK_ID,)) -> DiffusionLM:
    return DiffusionLM(make_bidirectional(tiny_llama(seed)), mask_id=TINY_MASK_ID, shift_logits=shift_logits,
                       never_propose=tuple(never_propose), stop_ids=(TINY_EOS_ID,), context_length=512,
                       name=f"tiny-{seed}")


@pytest.fixture
def tiny_lm() -> DiffusionLM:
    return tiny_diffusion_lm(0)


@pytest.fixture(scope="session")
def smollm2_ar():
    from generation import load_model
    from generation.presets import AR_SMOLLM2

    return load_model(AR_SMOLLM2, device="cpu")
