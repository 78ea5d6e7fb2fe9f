"""page/settings.py: the controls' values as the page sends them, turned into the two configs."""

import pytest

from generation import ConfigError
from page.settings import Settings


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
