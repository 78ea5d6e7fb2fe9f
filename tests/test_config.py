"""generation/config.py: every setting validated in one place, with a message that says what is valid."""

import pytest

from generation import ARConfig, ConfigError, DiffusionConfig


@pytest.mark.parametrize("bad, message", [
    (dict(steps=32, gen_length=16), "steps 32 > gen_length 16"),
    (dict(block_length=5), "block_length 5 must divide gen_length 16"),
    (dict(steps=6, block_length=4), "multiple of the number of blocks"),
    (dict(temperature=-1.0), "temperature must be in"),
    (dict(temperature=float("nan")), "temperature must be a number"),
    (dict(top_p=0.0), "top_p must be in (0, 1]"),
    (dict(top_p=1.5), "top_p must be in (0, 1]"),
    (dict(algorithm="greedy"), "unknown algorithm 'greedy'; valid: low_confidence"),
    (dict(threshold=0.9, algorithm="entropy"), "threshold needs a probability-scale score"),
    (dict(gen_length=0), "gen_length must be >= 1"),
    (dict(steps=2.5), "steps must be a whole number"),
    (dict(cfg_scale=1.0, algorithm="entropy"), "cfg_scale"),
])
def test_bad_settings_raise_config_error_with_a_useful_message(bad, message):
    settings = {**dict(gen_length=16, steps=8), **bad}
    with pytest.raises(ConfigError) as raised:
        DiffusionConfig(**settings)
    assert message in str(raised.value)


@pytest.mark.parametrize("bad, message", [
    (dict(max_new_tokens=0), "max_new_tokens must be >= 1"),
    (dict(temperature=-0.5), "temperature must be in"),
    (dict(top_p=2.0), "top_p must be in (0, 1]"),
    (dict(top_k=0), "top_k must be >= 1"),
])
def test_bad_ar_settings_raise_config_error_with_a_useful_message(bad, message):
    with pytest.raises(ConfigError) as raised:
        ARConfig(**bad)
    assert message in str(raised.value)
