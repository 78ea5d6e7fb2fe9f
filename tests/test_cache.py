"""KV caching in the sampler (generation/sampler.py's step plans), on tiny random models: the exact
block cache of block-causal models (cached == uncached, step for step), the uncached block-causal
loop against the published LLaDA loop run under a block-causal mask, Fast-dLLM's prefix/dual caches
(exact on a one-layer model, where a position's keys and values depend on its own token only), and
the positions each step computes. The cache settings' validation and the page's starting settings
are in test_config.py; the History fields in test_history.py."""

import pytest
import torch

from fakes import TINY_EOS_ID, TINY_MASK_ID, tiny_block_causal_lm, tiny_diffusion_lm, tiny_llama
from generation import ConfigError, DiffusionConfig, DiffusionLM, diffuse, stream_diffusion
from generation.models import make_bidirectional
from generation.cache_plans import block_causal_mask
from reference import forbid, llada_reference

PROMPT = [5, 17, 33, 2, 41, 8]


def steps_of(history):
    return [(s.positions, s.tokens) for s in history.steps]


def scores_of(history):
    return [[0.0 if score is None else score for score in s.scores] for s in history.steps]


# ---- block-causal models: the exact block cache


@pytest.mark.parametrize("algorithm,threshold", [
    ("low_confidence", None), ("random", None), ("low_confidence", 0.3), ("maskgit_plus", None),
    ("maskgit_plus", 0.2), ("topk_margin", None), ("entropy", None), ("origin", None),
])
@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("block,temperature", [(4, 0.0), (8, 0.0), (2, 1.0), (8, 1.0)])
def test_block_cache_equals_uncached_block_causal_loop(algorithm, threshold, shift, block, temperature):
    lm = tiny_block_causal_lm(3, block_size=block, shift=shift)
    settings = dict(gen_length=16, steps=16, block_length=block, algorithm=algorithm, threshold=threshold,
                    temperature=temperature, seed=7)
    uncached = diffuse(lm, PROMPT, DiffusionConfig(**settings))
    cached = diffuse(lm, PROMPT, DiffusionConfig(**settings, cache="prefix"))
    assert steps_of(cached) == steps_of(uncached)
    for a, b in zip(scores_of(cached), scores_of(uncached)):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("block,steps", [(4, 16), (8, 8)])
def test_uncached_block_causal_loop_is_the_published_loop_under_a_block_causal_mask(seed, shift, block, steps):
    """LLaDA's loop over the whole canvas, the module under an element-by-element block-causal mask."""
    lm = tiny_block_causal_lm(seed, block_size=block, shift=shift, stop_ids=())
    ours = diffuse(lm, PROMPT, DiffusionConfig(gen_length=16, steps=steps, block_length=block, seed=seed))
    reference = llada_reference(BlockCausalReference(lm.module, len(PROMPT), block), PROMPT, steps, 16, block,
                                mask_id=TINY_MASK_ID, logits_hook=forbid([TINY_MASK_ID]), shift=shift)
    assert [ours.canvas_at(k) for k in range(1, len(ours.steps) + 1)] == reference


class BlockCausalReference(torch.nn.Module):
    """Runs the module over the whole sequence with the mask written out one pair at a time:
    the current block is the first answer block holding a mask."""

    def __init__(self, module, prompt_len: int, block: int) -> None:
        super().__init__()
        self.module, self.prompt_len, self.block = module, prompt_len, block

    def forward(self, x):
        L = x.shape[1]
        answer_masks = (x[0, self.prompt_len:] == TINY_MASK_ID).nonzero()
        current = int(answer_masks[0]) // self.block
        start = self.prompt_len + current * self.block
        end = start + self.block
        mask = torch.zeros(1, 1, L, L, dtype=torch.bool)
        for q in range(L):
            for k in range(L):
                if q < start:
                    mask[0, 0, q, k] = k <= q  # prompt and finished blocks: causal
                elif q < end:
                    mask[0, 0, q, k] = k < end  # the current block: everything up to its end
                else:
                    mask[0, 0, q, k] = k <= q  # later blocks: rows nobody reads
        return self.module(x, attention_mask=mask)


def test_block_causal_run_stops_after_the_block_that_commits_a_stop():
    free = diffuse(tiny_block_causal_lm(4, stop_ids=()), PROMPT, DiffusionConfig(gen_length=16, steps=16))
    stop_token = free.canvas[1]  # committed in block 0 (positions 0-3)
    for cache in ("none", "prefix"):
        history = diffuse(tiny_block_causal_lm(4, stop_ids=(stop_token,)), PROMPT,
                          DiffusionConfig(gen_length=16, steps=16, cache=cache))
        assert len(history.steps) == 4 and history.canvas[4:] == [TINY_MASK_ID] * 12
        assert history.answer_length() == history.canvas.index(stop_token) <= 1


def test_block_causal_model_defaults_to_its_trained_block_size():
    history = diffuse(tiny_block_causal_lm(5, block_size=8), PROMPT, DiffusionConfig(gen_length=16, steps=16))
    assert history.settings["block_length"] == 8


def test_block_causal_cache_computes_the_block_plus_the_finished_block_once():
    """Shift: each step feeds the position left of the block too; a block's first step also fills the
    previous block's KV (the very first one the prompt's)."""
    history = diffuse(tiny_block_causal_lm(6, block_size=4, stop_ids=()), PROMPT,
                      DiffusionConfig(gen_length=12, steps=12, cache="prefix"))
    assert [s.computed_positions for s in history.steps] == [10, 5, 5, 5] + [4 + 5, 5, 5, 5] * 2


@pytest.mark.parametrize("block_causal", [False, True])
def test_each_step_records_what_the_uncached_loop_computes(block_causal):
    """work_saved's baseline is the uncached loop of the same model: the whole sequence for a bidirectional
    model, everything up to the block's end for a block-causal one (never the whole canvas)."""
    lm = tiny_block_causal_lm(6, block_size=4, stop_ids=()) if block_causal else tiny_diffusion_lm(9, shift_logits=True)
    settings = dict(gen_length=12, steps=12, block_length=4)
    cached = diffuse(lm, PROMPT, DiffusionConfig(**settings, cache="prefix"))
    plain = diffuse(lm, PROMPT, DiffusionConfig(**settings))
    baseline = [s.computed_positions for s in plain.steps]
    assert [s.uncached_positions for s in cached.steps] == [s.uncached_positions for s in plain.steps] == baseline
    assert plain.work_saved() == 1.0 and cached.work_saved() == sum(baseline) / cached.computed_positions > 1


def test_block_causal_mask_worked_example():
    assert block_causal_mask(torch.arange(4), 2, 4)[0, 0].int().tolist() == [
        [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert block_causal_mask(torch.arange(2, 4), 2, 4).shape == (1, 1, 2, 4)


@pytest.mark.parametrize("is_causal", [True, False])
def test_transformers_takes_a_4d_mask_as_given_whatever_is_causal_says(is_causal):
    """The block-causal design rests on this (transformers 5.x `create_causal_mask` early exit)."""
    module = tiny_llama(0)
    module.config.is_causal = is_causal
    x = torch.tensor([PROMPT + [TINY_MASK_ID] * 4])
    L = x.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool).tril()[None, None]
    additive = torch.zeros(1, 1, L, L).masked_fill(~causal, float("-inf"))
    with torch.no_grad():
        plain = tiny_llama(0)(x).logits  # a causal model as built
        assert torch.allclose(module(x, attention_mask=causal).logits, plain, atol=1e-5)
        assert torch.allclose(module(x, attention_mask=additive).logits, plain, atol=1e-5)
        full = module(x, attention_mask=torch.ones_like(causal)).logits
        assert not torch.allclose(full, plain, atol=1e-3)


# ---- bidirectional models: Fast-dLLM's prefix and dual cache


@pytest.mark.parametrize("cache", ["prefix", "dual"])
@pytest.mark.parametrize("algorithm,threshold,shift", [
    ("low_confidence", None, False), ("low_confidence", 0.2, True), ("maskgit_plus", None, True),
    ("entropy", None, False), ("random", None, True),
])
def test_prefix_and_dual_cache_are_exact_on_a_one_layer_model(cache, algorithm, threshold, shift):
    """With one layer, keys and values are a function of the token and its position alone, so the
    cache is exact and any difference from cache='none' is a bug in what a step feeds or keeps."""
    lm = DiffusionLM(make_bidirectional(tiny_llama(8, layers=1)), mask_id=TINY_MASK_ID, shift_logits=shift,
                     never_propose=(TINY_MASK_ID,), name="tiny-one-layer")
    settings = dict(gen_length=16, steps=16, block_length=4, algorithm=algorithm, threshold=threshold,
                    temperature=1.0, seed=3)
    uncached = diffuse(lm, PROMPT, DiffusionConfig(**settings))
    cached = diffuse(lm, PROMPT, DiffusionConfig(**settings, cache=cache))
    assert steps_of(cached) == steps_of(uncached)


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_refills_at_each_block_and_then_computes_less(cache):
    history = diffuse(tiny_diffusion_lm(9, shift_logits=True), PROMPT,
                      DiffusionConfig(gen_length=16, steps=8, block_length=8, cache=cache))
    L = len(PROMPT) + 16
    per_step = {"prefix": [L, L - 6 + 1, L, 8 + 1], "dual": [L, 8 + 1, L, 8 + 1]}[cache]
    assert [s.computed_positions for s in history.steps] == [per_step[0]] + [per_step[1]] * 3 + \
        [per_step[2]] + [per_step[3]] * 3
    assert TINY_MASK_ID not in history.canvas


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
def test_streaming_equals_collected_with_each_cache(cache):
    lm = tiny_diffusion_lm(10, shift_logits=True)
    config = DiffusionConfig(gen_length=16, steps=8, block_length=8, cache=cache, temperature=1.0, seed=2)
    streamed = [h.canvas for h in stream_diffusion(lm, PROMPT, config)]
    collected = diffuse(lm, PROMPT, config)
    assert streamed == [collected.canvas_at(k) for k in range(1, len(collected.steps) + 1)]


# ---- what a model cannot take


def test_cache_modes_the_model_cannot_take_are_refused():
    with pytest.raises(ConfigError, match="use cache='prefix'"):
        diffuse(tiny_block_causal_lm(0), PROMPT, DiffusionConfig(gen_length=16, steps=16, cache="dual"))
    with pytest.raises(ConfigError, match="decodes in blocks of 32"):
        diffuse(tiny_block_causal_lm(0, block_size=32), PROMPT, DiffusionConfig(gen_length=16, steps=16))

    class Plain(torch.nn.Module):  # a module with no KV cache arguments
        def __init__(self):
            super().__init__()
            self.inner = tiny_llama(0)

        def forward(self, x):
            return self.inner(x)

    plain = DiffusionLM(Plain(), mask_id=TINY_MASK_ID, shift_logits=False, name="plain")
    with pytest.raises(ConfigError, match="takes no KV cache"):
        diffuse(plain, PROMPT, DiffusionConfig(gen_length=16, steps=8, cache="prefix"))
