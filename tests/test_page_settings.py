"""page/settings.py: the controls' values as the page sends them, turned into the two configs; the settings
the page starts with for a model; the help texts."""

import pytest

from generation import ConfigError, recommended_config
from page.settings import SETTING_HELP, Settings, recommended_settings


def test_settings_accept_what_the_page_sends():
    diffusion, ar = Settings(64.0, 32.0, 32.0, "low_confidence", 0, 1, 0, 0, 7.0).configs()
    assert (diffusion.gen_length, diffusion.steps, diffusion.block_length, diffusion.seed) == (64, 32, 32, 7)
    assert diffusion.threshold is None and ar.max_new_tokens == 64
    assert Settings(64, 8, None, "low_confidence", 0, 1, 0, 0.9, 0).configs()[0].threshold == 0.9
    with pytest.raises(ConfigError, match="whole number"):
        Settings(64, 32.5).configs()
    with pytest.raises(ConfigError, match="steps is empty"):
        Settings(64, None).configs()


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
    assert Settings(64, 32, 32, cache="dual").configs()[0].cache == "dual"
    assert Settings(64, 32, 32).configs()[0].cache == "none"
    with pytest.raises(ConfigError, match="unknown cache 'full'"):
        Settings(64, 32, 32, cache="full").configs()


@pytest.mark.parametrize("name", ["smollm2-135m-diffusion", "Dream-org/Dream-v0-Instruct-7B", "some/unknown-model"])
def test_recommended_settings_are_the_models_recommended_config(name):
    assert recommended_settings(name, 128).configs()[0] == recommended_config(name, 128)
    assert recommended_settings(name).configs()[0].gen_length == Settings().gen_length


def test_the_cache_help_says_where_it_is_approximate_and_where_exact():
    text = SETTING_HELP["cache"]
    assert "Approximate for bidirectional models (Fast-dLLM v1), exact for block-causal ones" in text
