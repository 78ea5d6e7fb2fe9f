"""page/settings.py: the controls' values as the page sends them, turned into the two configs; the settings
the page starts with for a model; the help texts."""

from dataclasses import replace

import pytest

from generation import ConfigError, recommended_config
from page.settings import DEFAULTS, PAGE_SAMPLING, SETTING_HELP, Settings, recommended_settings


def test_settings_accept_what_the_page_sends():
    diffusion, ar = Settings(gen_length=64.0, steps=32.0, block_length=32.0, algorithm="low_confidence", temperature=0, top_p=1,
                          alg_temp=0, threshold=0, seed=7.0).configs()
    assert (diffusion.gen_length, diffusion.steps, diffusion.block_length, diffusion.seed) == (64, 32, 32, 7)
    assert diffusion.threshold is None and ar.max_new_tokens == 64
    assert Settings(gen_length=64, steps=8, block_length=None, algorithm="low_confidence", temperature=0, top_p=1,
                    alg_temp=0, threshold=0.9, seed=0).configs()[0].threshold == 0.9
    with pytest.raises(ConfigError, match="whole number"):
        Settings(gen_length=64, steps=32.5).configs()
    with pytest.raises(ConfigError, match="steps is empty"):
        Settings(gen_length=64, steps=None).configs()


def test_infilling_tasks_parse_or_say_what_is_wrong():
    from page.settings import ANSWER, BLANKS, WORDS

    assert Settings(task=ANSWER, template="ignored ___").infill() is None
    assert Settings(task=BLANKS, template="a ___ b ___8", blank_length=3.0).infill().pieces == ("a", 3, " b", 8)
    assert Settings(task=WORDS, template="0:Once").infill().words == ((0, "Once"),)
    with pytest.raises(ConfigError, match="no blank"):
        Settings(task=BLANKS, template="no blanks").infill()
    with pytest.raises(ConfigError, match="default blank length"):
        Settings(task=BLANKS, template="a ___", blank_length=2.5).infill()


def test_the_cache_setting_reaches_the_diffusion_config():
    assert Settings(gen_length=64, steps=32, block_length=32, cache="dual").configs()[0].cache == "dual"
    assert Settings(gen_length=64, steps=32, block_length=32).configs()[0].cache == "none"
    with pytest.raises(ConfigError, match="unknown cache 'full'"):
        Settings(gen_length=64, steps=32, block_length=32, cache="full").configs()


@pytest.mark.parametrize("name", ["smollm2-135m-diffusion", "Dream-org/Dream-v0-Instruct-7B", "some/unknown-model"])
def test_recommended_settings_are_the_models_recommended_config(name):
    page_sampling = {field: getattr(DEFAULTS, field) for field in PAGE_SAMPLING}  # the page's own, for any model
    assert recommended_settings(name, 128).configs()[0] == replace(recommended_config(name, 128), **page_sampling)
    assert recommended_settings(name).configs()[0].gen_length == Settings().gen_length


def test_the_cache_help_says_where_it_is_approximate_and_where_exact():
    text = SETTING_HELP["cache"]
    assert "Approximate for bidirectional models (Fast-dLLM v1), exact for block-causal ones" in text
