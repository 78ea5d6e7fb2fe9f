"""generation/memory.py: will it fit? Parameter counts from configs, verdicts with the numbers."""

import torch

from generation import load_model, memory, presets
from generation.memory import can_run, needed_memory, parameter_count


def test_parameter_count_from_the_config_matches_the_loaded_model(hub_checkpoints):
    dream = load_model(str(hub_checkpoints["dream"]), device="cpu", dtype=torch.float32)
    assert parameter_count(str(hub_checkpoints["dream"])) == sum(p.numel() for p in dream.module.parameters())


def test_can_run_refuses_a_7b_model_that_does_not_fit_with_numbers(monkeypatch):
    monkeypatch.setattr(memory, "free_memory", lambda device: 24 * 2**30)
    verdict = can_run(presets.DREAM_INSTRUCT, "cpu", torch.float32)
    assert not verdict.ok and "GiB" in verdict.message and "24.0 GiB" in verdict.message
    assert can_run("smollm2-135m-diffusion", "cpu", torch.float32, alongside=("smollm2-135m-instruct",)).ok


def test_can_run_counts_the_ar_partner_too(monkeypatch):
    monkeypatch.setattr(memory, "free_memory", lambda device: 30 * 2**30)
    assert can_run(presets.DREAM_INSTRUCT, "cuda", torch.bfloat16).ok
    assert not can_run(presets.DREAM_INSTRUCT, "cuda", torch.bfloat16,
                       alongside=(presets.QWEN25_7B_INSTRUCT,)).ok


def test_needed_memory_is_weights_plus_margin():
    assert needed_memory(10**9, torch.bfloat16) == int(2 * 10**9 * (1 + memory.MEMORY_MARGIN) + memory.MEMORY_MARGIN_BYTES)
    assert needed_memory(10**9, torch.float32) > needed_memory(10**9, torch.bfloat16)
