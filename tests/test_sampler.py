"""generation/sampler.py: properties of the diffusion sampler, one per test, on tiny random models."""

import threading

import pytest
import torch

from generation import ConfigError, History, diffuse, stream_diffusion
from generation.config import UNMASKING_ALGORITHMS
from fakes import small_config as config
from fakes import TINY_MASK_ID, tiny_diffusion_lm

PROMPT = [3, 14, 15, 92, 65]
SAMPLED = dict(temperature=1.0, top_p=0.9)



@pytest.mark.parametrize("algorithm", UNMASKING_ALGORITHMS)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_same_seed_same_output(algorithm, temperature):
    lm = tiny_diffusion_lm(3)
    a = diffuse(lm, PROMPT, config(algorithm, temperature=temperature, seed=11))
    b = diffuse(lm, PROMPT, config(algorithm, temperature=temperature, seed=11))
    assert [(s.positions, s.tokens, s.scores) for s in a.steps] == [(s.positions, s.tokens, s.scores) for s in b.steps]


def test_different_seeds_differ_when_sampling():
    lm = tiny_diffusion_lm(3)
    outputs = {tuple(diffuse(lm, PROMPT, config(seed=seed, **SAMPLED)).canvas) for seed in range(4)}
    assert len(outputs) > 1


@pytest.mark.parametrize("algorithm", UNMASKING_ALGORITHMS)
def test_no_masks_left_and_no_forbidden_ids(algorithm):
    lm = tiny_diffusion_lm(4)
    history = diffuse(lm, PROMPT, config(algorithm, **SAMPLED))
    assert TINY_MASK_ID not in history.canvas and not set(history.canvas) & set(lm.never_propose)
    assert all(step is not None for step in history.first_committed)


def test_never_propose_is_respected():
    forbidden = tuple(range(10, 90))
    lm = tiny_diffusion_lm(5, never_propose=(TINY_MASK_ID, *forbidden))
    history = diffuse(lm, PROMPT, config(**SAMPLED))
    assert not set(history.canvas) & set(forbidden)


@pytest.mark.parametrize("algorithm", UNMASKING_ALGORITHMS)
def test_streaming_equals_collected(algorithm):
    lm = tiny_diffusion_lm(6)
    streamed = [h.canvas for h in stream_diffusion(lm, PROMPT, config(algorithm, **SAMPLED))]
    collected = diffuse(lm, PROMPT, config(algorithm, **SAMPLED))
    assert streamed[-1] == collected.canvas
    assert streamed == [collected.canvas_at(k) for k in range(1, len(collected.steps) + 1)]


def test_stream_yields_once_per_step_with_the_planned_step_count():
    lm = tiny_diffusion_lm(7)
    steps_seen = [len(history.steps) for history in stream_diffusion(lm, PROMPT, config(steps=8))]
    assert steps_seen == list(range(1, 9))


def test_even_split_commits_per_step():
    """LLaDA, block 8 over 4 steps per block: 2 tokens each step, blocks left to right."""
    history = diffuse(tiny_diffusion_lm(8), PROMPT, config(steps=8, block_length=8))
    assert [len(s.positions) for s in history.steps] == [2] * 8
    assert all(p < 8 for s in history.steps[:4] for p in s.positions)
    assert all(p >= 8 for s in history.steps[4:] for p in s.positions)


def test_stop_signal_leaves_valid_partial_history():
    lm = tiny_diffusion_lm(9)
    stop = threading.Event()
    frames = 0
    for history in stream_diffusion(lm, PROMPT, config(steps=8), stop=stop):
        frames += 1
        if frames == 3:
            stop.set()
    assert history.stopped and len(history.steps) == 3
    assert History.from_json(history.to_json()) == history
    assert history.canvas.count(TINY_MASK_ID) == 16 - sum(len(s.positions) for s in history.steps)


def test_stop_before_start_gives_empty_stopped_history():
    stop = threading.Event()
    stop.set()
    history = diffuse(tiny_diffusion_lm(9), PROMPT, config(), stop=stop)
    assert history.stopped and history.steps == [] and history.canvas == [TINY_MASK_ID] * 16


@pytest.mark.parametrize("threshold", [0.01, 0.5, 1.0])
def test_threshold_steps_depend_on_confidence(threshold):
    history = diffuse(tiny_diffusion_lm(14), PROMPT, config(threshold=threshold))
    assert history.planned_steps is None
    assert 2 <= len(history.steps) <= 16 and TINY_MASK_ID not in history.canvas
    for step in history.steps:
        assert len(step.positions) >= 1
        assert all(s >= threshold for s in step.scores[1:]) or len(step.positions) == 1


def test_empty_prompt_and_context_overflow_are_rejected():
    lm = tiny_diffusion_lm(0)
    with pytest.raises(ConfigError, match="prompt is empty"):
        diffuse(lm, [], config())
    with pytest.raises(ConfigError, match="exceeds the model's context of 512"):
        diffuse(lm, list(range(500)), config())


def test_sampler_uses_no_gradients_and_leaves_global_rng_alone():
    lm = tiny_diffusion_lm(15)
    grad_enabled = []
    lm.module.register_forward_hook(lambda module, args, output: grad_enabled.append(torch.is_grad_enabled()))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    diffuse(lm, PROMPT, config(**SAMPLED))
    assert torch.rand(1) == before
    assert grad_enabled and not any(grad_enabled)


def test_a_model_that_runs_its_own_loop_is_handed_the_run():
    """The sampler asks one question (runs_own_loop) and hands such a model the whole run."""
    expected = History(kind="diffusion", prompt_ids=PROMPT, initial=[TINY_MASK_ID] * 4, mask_id=TINY_MASK_ID)

    class OwnLoop:
        runs_own_loop = True
        calls = []

        def stream(self, prompt_ids, config, stop=None):
            self.calls.append((prompt_ids, config, stop))
            yield expected

    model, stop = OwnLoop(), threading.Event()
    assert list(stream_diffusion(model, PROMPT, config(), stop)) == [expected]
    assert model.calls == [(PROMPT, config(), stop)]



def test_draw_follows_the_weights_and_never_picks_a_zero_weight():
    """sampling.draw, the speculative and AR loops' one draw: unnormalised weights, zeros at the edges and inside."""
    from generation.sampling import draw

    weights = torch.tensor([0.0, 3.0, 0.0, 1.0, 0.0, 6.0, 0.0])
    generator = torch.Generator().manual_seed(0)
    runs = 20_000
    counts = torch.bincount(torch.tensor([draw(weights, generator) for _ in range(runs)]), minlength=len(weights))
    expected = weights / weights.sum()
    assert counts[expected == 0].sum() == 0
    spread = (expected * (1 - expected) / runs).sqrt()
    assert ((counts / runs - expected).abs() <= 4 * spread + 1e-9).all()
