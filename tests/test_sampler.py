"""Properties of the diffusion sampler and its History, one per test, on tiny random models."""

import threading

import pytest
import torch

from generation import ConfigError, DiffusionConfig, History, diffuse, stream_diffusion
from generation.config import ALGORITHMS
from fakes import TINY_EOS_ID, TINY_MASK_ID, tiny_diffusion_lm

PROMPT = [3, 14, 15, 92, 65]
SAMPLED = dict(temperature=1.0, top_p=0.9)


def config(algorithm="low_confidence", **overrides):
    base = dict(gen_length=16, steps=8, block_length=8, algorithm=algorithm)
    if algorithm not in ("low_confidence", "random"):
        base.pop("block_length")
    return DiffusionConfig(**{**base, **overrides})


@pytest.mark.parametrize("algorithm", ALGORITHMS)
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


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_no_masks_left_and_no_forbidden_ids(algorithm):
    lm = tiny_diffusion_lm(4)
    history = diffuse(lm, PROMPT, config(algorithm, **SAMPLED))
    assert TINY_MASK_ID not in history.canvas
    assert all(step is not None for step in history.first_committed)


def test_never_propose_is_respected():
    forbidden = tuple(range(10, 90))
    lm = tiny_diffusion_lm(5, never_propose=(TINY_MASK_ID, *forbidden))
    history = diffuse(lm, PROMPT, config(**SAMPLED))
    assert not set(history.canvas) & set(forbidden)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
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


def test_history_round_trips_json_losslessly():
    history = diffuse(tiny_diffusion_lm(10), PROMPT, config("entropy", **SAMPLED))
    restored = History.from_json(history.to_json())
    assert restored == history
    assert restored.canvas == history.canvas and restored.to_json() == history.to_json()


def test_origin_has_no_scores_and_round_trips():
    history = diffuse(tiny_diffusion_lm(10), PROMPT, config("origin"))
    assert all(score is None for step in history.steps for score in step.scores)
    assert History.from_json(history.to_json()) == history


def test_history_records_changes_not_snapshots():
    history = diffuse(tiny_diffusion_lm(11), PROMPT, DiffusionConfig(gen_length=64, steps=64))
    stored = sum(len(s.positions) for s in history.steps)
    assert stored == 64  # one entry per change, not steps x length (64 x 64)
    assert len(history.to_json()) < 64 * 64 * 4


def test_last_changed_and_first_committed_for_masked_models():
    history = diffuse(tiny_diffusion_lm(12), PROMPT, config(steps=8))
    for number, step in enumerate(history.steps, start=1):
        for position in step.positions:
            assert history.last_changed[position] == number == history.first_committed[position]


def test_history_handles_revisions():
    """A model that revises tokens: last_changed moves, first_committed stays."""
    history = History(kind="diffusion", prompt_ids=[1], initial=[7, 7, 7], mask_id=None, stop_ids=[0])
    history.record([0, 1, 2], [4, 5, 6], [0.1, 0.2, 0.3], 0.01, 1)
    history.record([1], [9], [0.9], 0.01, 2)
    assert history.canvas == [4, 9, 6] and history.canvas_at(1) == [4, 5, 6] and history.canvas_at(0) == [7, 7, 7]
    assert history.last_changed == [1, 2, 1] and history.first_committed == [1, 1, 1]
    history.record([2], [0], [None], 0.01, 3)
    assert history.answer_ids() == [4, 9] and history.answer_length(step=2) == 3


def test_history_takes_the_samplers_own_acceptance_when_given():
    """DiffusionGemma drafts every position at once but accepts them over several steps."""
    history = History(kind="diffusion", prompt_ids=[1], initial=[7, 7, 7], mask_id=7, stop_ids=[0])
    history.record([0, 1, 2], [4, 5, 6], [None] * 3, 0.01, 1, committed=[0])
    history.record([1, 2], [8, 9], [None] * 2, 0.01, 2, committed=[0, 2])
    history.record([1], [3], [None], 0.01, 3, committed=[1])
    assert history.first_committed == [1, 3, 2] and history.last_changed == [1, 3, 2]


def test_answer_ends_at_first_stop_token_and_canvas_keeps_the_rest():
    history = History(kind="diffusion", prompt_ids=[1], initial=[TINY_MASK_ID] * 5, mask_id=TINY_MASK_ID,
                      stop_ids=[TINY_EOS_ID])
    history.record([0, 1, 2, 3, 4], [20, 21, TINY_EOS_ID, 22, TINY_EOS_ID], [0.5] * 5, 0.1, 1)
    assert history.answer_ids() == [20, 21]
    assert history.canvas[3] == 22


def test_timings_are_recorded():
    history = diffuse(tiny_diffusion_lm(13), PROMPT, config(steps=8))
    assert all(s.seconds > 0 for s in history.steps)
    assert history.elapsed()[-1] == pytest.approx(history.seconds)
    assert [s.forward_passes for s in history.steps] == list(range(1, 9))
    assert history.seconds_to_first_token() == history.elapsed()[0]


@pytest.mark.parametrize("threshold", [0.01, 0.5, 1.0])
def test_threshold_steps_depend_on_confidence(threshold):
    history = diffuse(tiny_diffusion_lm(14), PROMPT, config(threshold=threshold))
    assert history.planned_steps is None
    assert 2 <= len(history.steps) <= 16 and TINY_MASK_ID not in history.canvas
    for step in history.steps:
        assert len(step.positions) >= 1
        assert all(s >= threshold for s in step.scores[1:]) or len(step.positions) == 1


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


def test_empty_prompt_and_context_overflow_are_rejected():
    lm = tiny_diffusion_lm(0)
    with pytest.raises(ConfigError, match="prompt is empty"):
        diffuse(lm, [], config())
    with pytest.raises(ConfigError, match="exceeds the model's context of 512"):
        diffuse(lm, list(range(500)), config())


def test_sampler_uses_no_gradients_and_leaves_global_rng_alone():
    lm = tiny_diffusion_lm(15)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    diffuse(lm, PROMPT, config(**SAMPLED))
    assert torch.rand(1) == before
