"""generation/presets.py: the catalogue the pickers show, in the order the profile asks for."""

from generation import presets


def test_space_profile_puts_large_presets_first(monkeypatch):
    monkeypatch.setenv(presets.PROFILE_ENV, "space")
    assert presets.default_preset().large
    monkeypatch.delenv(presets.PROFILE_ENV)
    assert presets.default_preset().diffusion == "smollm2-135m-diffusion"


def test_every_preset_names_a_diffusion_model_and_its_ar_partner_in_the_choices():
    assert all(p.diffusion in presets.DIFFUSION_CHOICES and p.autoregressive in presets.AR_CHOICES
               for p in presets.PRESETS)
