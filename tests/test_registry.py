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


def test_the_embedded_ar_model_loads_on_cpu_in_the_dtype_that_steps_faster(monkeypatch):
    """Timed once (float32 loaded, a bf16 copy cast from it), the faster copy cached, the verdict recorded."""
    from fakes import tiny_llama
    from generation.models import CausalLM

    loads = []

    def load(device, dtype):
        loads.append(dtype)
        return CausalLM(tiny_llama(0).to(dtype), tokenizer=None, name="my-ar")

    for faster in (torch.bfloat16, torch.float32):
        timed = []

        def step_ms(modules, faster=faster):
            timed.append({dtype: next(m.parameters()).dtype for dtype, m in modules.items()})
            return {dtype: 1.0 if dtype == faster else 2.0 for dtype in modules}

        loads.clear()
        monkeypatch.setitem(REGISTRY, "my-ar", Registered(load))
        monkeypatch.setattr(dtypes, "TIMED_ON_CPU", ("my-ar",))
        monkeypatch.setattr(dtypes, "_cpu_step_ms", {})
        monkeypatch.setattr(dtypes, "one_token_step_ms", step_ms)
        monkeypatch.setattr(registry, "_cache", {})
        model = load_model("my-ar", device="cpu")
        assert load_model("my-ar", device="cpu") is model and loads == [torch.float32] and len(timed) == 1
        assert timed[0] == {torch.bfloat16: torch.bfloat16, torch.float32: torch.float32}  # each copy in its dtype
        assert next(model.module.parameters()).dtype == faster == dtypes.device_dtype("my-ar", "cpu")[1]
        assert list(registry._cache) == [("my-ar", "cpu", faster)]  # the slower copy is not kept
        assert dtypes.cpu_step_ms("my-ar")[faster] == 1.0
        exact = load_model("my-ar", device="cpu", dtype=torch.float32)  # a dtype asked for: as given
        assert next(exact.module.parameters()).dtype == torch.float32


def test_one_token_step_ms_times_each_module():
    from fakes import tiny_llama

    step_ms = dtypes.one_token_step_ms({"a": tiny_llama(0), "b": tiny_llama(1).to(torch.bfloat16)}, context=16, repeats=3)
    assert set(step_ms) == {"a", "b"} and all(ms > 0 for ms in step_ms.values())


def test_every_registered_model_is_in_the_catalogue_which_gives_its_kind():
    """The catalogue says which names are diffusion models, hence their CPU dtype (dtypes.device_dtype)."""
    assert [n for n in REGISTRY if n not in (*presets.DIFFUSION_CHOICES, *presets.AR_CHOICES)] == []
    assert set(FAMILY_LOADERS) == set(dtypes.DIFFUSION_MODEL_TYPES)


def test_every_preset_diffusion_model_has_a_loader():
    from generation.registry import REGISTRY

    assert all(p.diffusion in REGISTRY for p in presets.PRESETS)


@pytest.mark.slow
def test_load_model_caches(smollm2_ar):
    assert load_model("smollm2-135m-instruct", device="cpu", dtype=torch.float32) is smollm2_ar
