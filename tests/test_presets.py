"""generation/presets.py: the catalogue the pickers show, in the order the profile asks for."""

from generation import presets


def test_space_profile_puts_large_presets_first_and_the_largest_of_them_first(monkeypatch):
    monkeypatch.setenv(presets.PROFILE_ENV, "space")
    order = presets.presets()
    large = [p for p in order if p.large]
    assert order[:len(large)] == large
    assert large[0] == max(large, key=lambda p: presets.KNOWN_PARAMETERS[p.diffusion])
    monkeypatch.delenv(presets.PROFILE_ENV)
    assert presets.presets()[0].diffusion == "smollm2-135m-block-diffusion" == presets.presets("local")[0].diffusion


def test_every_catalogue_model_has_a_parameter_count_for_the_start_and_the_readme_table():
    missing = [n for n in (*presets.DIFFUSION_CHOICES, *presets.AR_CHOICES) if n not in presets.KNOWN_PARAMETERS]
    assert missing == [], f"add these to presets.KNOWN_PARAMETERS: {missing}"


def test_every_preset_names_a_diffusion_model_and_its_ar_partner_in_the_choices():
    assert all(p.diffusion in presets.DIFFUSION_CHOICES and p.autoregressive in presets.AR_CHOICES
               for p in presets.PRESETS)
