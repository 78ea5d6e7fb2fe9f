"""generation/registry.py: one entry point for every model: registered names, the cache, unloading."""

import pytest
import torch

from generation import ModelUnavailable, dtypes, load_model, presets, registry, unload_models
from generation.registry import FAMILY_LOADERS, REGISTRY, Registered


def test_unknown_model_names_both_ways_to_fix_it(tmp_path):
    with pytest.raises(ModelUnavailable, match="Registered models: smollm2-135m-instruct"):
        load_model(str(tmp_path / "no-such-model"))


def test_unload_models_drops_every_cached_model_but_the_kept(monkeypatch):

    kept, dropped = ("b", "cpu", torch.bfloat16), ("a", "cpu", torch.float32)
    monkeypatch.setattr(registry, "_cache", {dropped: object(), kept: object()})
    assert unload_models(keep=("b",)) == ["a"]
    assert list(registry._cache) == [kept]
    assert unload_models(keep=("b",)) == []


def test_a_registered_model_is_one_line_and_is_loaded_once(monkeypatch):
    calls = []

    def load(device, dtype):
        calls.append((device, dtype))
        return object()

    monkeypatch.setitem(REGISTRY, "my-model", Registered(load))
    monkeypatch.setattr(dtypes, "DIFFUSION_CHOICES", (*dtypes.DIFFUSION_CHOICES, "my-model"))  # the catalogue line
    monkeypatch.setattr(registry, "_cache", {})
    first = load_model("my-model", device="cpu")
    assert load_model("my-model", device="cpu") is first
    assert calls == [("cpu", torch.bfloat16)]  # a diffusion model: bf16 on CPU
    monkeypatch.setitem(REGISTRY, "my-ar-model", Registered(load))
    load_model("my-ar-model", device="cpu")
    assert calls[-1] == ("cpu", torch.float32)


def test_every_registered_model_is_in_the_catalogue_which_gives_its_kind():
    """The catalogue says which names are diffusion models, hence their CPU dtype (dtypes.device_dtype)."""
    assert [n for n in REGISTRY if n not in (*presets.DIFFUSION_CHOICES, *presets.AR_CHOICES)] == []
    assert set(FAMILY_LOADERS) == set(dtypes.DIFFUSION_MODEL_TYPES)


def test_every_preset_diffusion_model_has_a_loader():
    from generation.registry import REGISTRY

    assert all(p.diffusion in REGISTRY for p in presets.PRESETS)


@pytest.mark.slow
def test_load_model_caches(smollm2_ar):
    assert load_model("smollm2-135m-instruct", device="cpu") is smollm2_ar
