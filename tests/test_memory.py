"""generation/memory.py: will it fit? Parameter counts from configs, verdicts with the numbers."""

import pytest
import torch

from generation import dtypes, load_model, memory, presets, registry
from generation.memory import can_run, needed_memory, parameter_count
from generation.registry import REGISTRY, Registered


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


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_the_estimate_plans_each_model_in_the_dtype_the_loader_loads_it_in(monkeypatch, device):
    """On CPU a diffusion model loads in bf16 and its AR partner in float32 (the embedded one, in the faster
    dtype once timed: tests/test_registry.py): the verdict counts the same."""
    loaded = {}
    monkeypatch.setattr(registry, "_cache", {})
    monkeypatch.setattr(dtypes, "TIMED_ON_CPU", ())
    for name in list(REGISTRY):
        monkeypatch.setitem(REGISTRY, name, Registered(lambda _device, dtype, name=name: loaded.setdefault(name, dtype)))
    monkeypatch.setattr(registry, "load_causal_lm", lambda name, _device, dtype: loaded.setdefault(name, dtype))
    names = (*presets.DIFFUSION_CHOICES, *presets.AR_CHOICES)
    for name in names:
        load_model(name, device=device)
    assert {name: dtype for name, _, dtype in memory.model_sizes(names, device)} == loaded
    assert loaded[presets.DREAM_INSTRUCT] == torch.bfloat16
    assert loaded[presets.QWEN25_7B_INSTRUCT] == (torch.float32 if device == "cpu" else torch.bfloat16)


def test_a_verdict_names_each_model_with_its_own_dtype(monkeypatch):
    monkeypatch.setattr(memory, "free_memory", lambda device: 16 * 2**30)
    verdict = can_run(presets.DREAM_INSTRUCT, "cpu", alongside=(presets.QWEN25_7B_INSTRUCT,))
    assert "Dream-v0-Instruct-7B 7.6B params in bfloat16 + Qwen2.5-7B-Instruct 7.6B params in float32" in verdict.message
    assert verdict.need_bytes == memory.needed_for((presets.DREAM_INSTRUCT, presets.QWEN25_7B_INSTRUCT), "cpu")
