"""generation/config.py: every setting validated in one place, with a message that says what is valid."""

import pytest

from generation import ARConfig, ConfigError, DiffusionConfig, recommended_config
from generation.decoders import decoder


@pytest.mark.parametrize("bad, message", [
    (dict(steps=32, gen_length=16), "steps 32 > gen_length 16"),
    (dict(block_length=5), "block_length 5 must divide gen_length 16"),
    (dict(steps=6, block_length=4), "multiple of the number of blocks"),
    (dict(temperature=-1.0), "temperature must be in"),
    (dict(temperature=float("nan")), "temperature must be a number"),
    (dict(top_p=0.0), "top_p must be in (0, 1]"),
    (dict(top_p=1.5), "top_p must be in (0, 1]"),
    (dict(repetition_penalty=0.0), "repetition_penalty must be in (0, inf)"),
    (dict(dry_multiplier=-0.1), "dry_multiplier must be in [0, inf)"),
    (dict(algorithm="greedy"), "unknown algorithm 'greedy'; valid: low_confidence"),
    (dict(threshold=0.9, algorithm="entropy"), "threshold needs a probability-scale score"),
    (dict(gen_length=0), "gen_length must be >= 1"),
    (dict(steps=2.5), "steps must be a whole number"),
    (dict(cfg_scale=1.0, algorithm="entropy"), "cfg_scale"),
    (dict(cache="full"), "unknown cache 'full'; valid: none, prefix, dual"),
    (dict(cache="dual", cfg_scale=1.0), "cfg_scale (classifier-free guidance) needs cache='none'"),
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
    (dict(repetition_penalty=-1.0), "repetition_penalty must be in (0, inf)"),
])
def test_bad_ar_settings_raise_config_error_with_a_useful_message(bad, message):
    with pytest.raises(ConfigError) as raised:
        ARConfig(**bad)
    assert message in str(raised.value)


def test_recommended_configs_name_registered_models_and_are_valid():
    from generation.config import RECOMMENDED
    from generation.registry import REGISTRY

    assert set(RECOMMENDED) <= set(REGISTRY)
    for name in [*RECOMMENDED, "some/unknown-model"]:
        for gen_length in (16, 24, 64, 128, 256, 100):
            config = recommended_config(name, gen_length)
            assert config.gen_length == gen_length and config.block <= 32
            # a draft length is cut at the canvas end, so it need not divide it
            assert gen_length % config.block == 0 or not decoder(config.algorithm).blocks_divide_canvas
    assert recommended_config("smollm2-135m-block-diffusion", 127).block == 3


def test_unknown_models_start_with_the_exact_loop_and_the_embedded_model_with_the_dual_cache():
    assert recommended_config("some/unknown-model", 64).cache == "none"
    assert recommended_config("smollm2-135m-diffusion", 128).cache == "dual"
