"""page/pickers.py: what a pick may load, what it unloads to make room, and the note for a model that
runs its own loop."""

import pytest

from fakes import TINY_AR, TINY_DIFFUSION, TINY_GEMMA, tiny_model
from generation import DiffusionConfig, ModelUnavailable, memory, presets
from generation.runs import own_loop_config
from page import pickers


def test_an_empty_pick_is_refused_before_anything_loads():
    calls = []
    with pytest.raises(ModelUnavailable, match="no model picked"):
        pickers.load_checked(calls.append, " ", "diffusion")
    assert calls == []


def test_a_model_of_the_wrong_kind_is_refused_after_loading():
    with pytest.raises(ModelUnavailable, match="is an autoregressive model"):
        pickers.load_checked(tiny_model, TINY_AR, "diffusion")
    assert pickers.load_checked(tiny_model, TINY_DIFFUSION, "diffusion") is tiny_model(TINY_DIFFUSION)


def test_a_pick_that_does_not_fit_unloads_the_models_the_page_no_longer_uses(monkeypatch):
    """A preset switch on a GPU: the old pair's memory goes back before the new pair is refused."""
    need = memory.can_run(presets.DREAM_INSTRUCT, pickers.app_device()).need_bytes
    held = {"old-diffusion-model": need}  # what the earlier preset occupies
    monkeypatch.setattr(memory, "free_memory", lambda device: need + 2**30 - sum(held.values()))
    loaded = {"old-diffusion-model", "smollm2-135m-instruct"}  # what the registry holds
    monkeypatch.setattr(pickers.generation, "loaded_models", lambda: set(loaded))
    unloaded = []
    monkeypatch.setattr(pickers.generation, "unload_models", lambda keep: unloaded.append(keep) or [
        held.pop("old-diffusion-model"), loaded.intersection_update(keep)])

    pickers.refuse_if_too_big(presets.DREAM_INSTRUCT, ("smollm2-135m-instruct",))  # fits once the old one is gone
    assert unloaded == [(presets.DREAM_INSTRUCT, "smollm2-135m-instruct")]
    assert loaded == {"smollm2-135m-instruct"}

    held["someone else's model"] = need  # memory that unloading cannot return: refused, with the numbers
    with pytest.raises(ModelUnavailable, match="GiB"):
        pickers.refuse_if_too_big(presets.DREAM_INSTRUCT, ("smollm2-135m-instruct",))


def test_own_loop_config_keeps_what_diffusion_gemma_takes_and_names_the_rest():
    gemma = tiny_model(TINY_GEMMA)
    config, note = own_loop_config(gemma, DiffusionConfig(gen_length=32, steps=8, seed=3, algorithm="random"))
    assert config == DiffusionConfig(gen_length=32, steps=8, seed=3)
    assert note.endswith("Ignored this run: algorithm random.")
    assert own_loop_config(gemma, DiffusionConfig())[1].endswith("The other settings do not apply.")
