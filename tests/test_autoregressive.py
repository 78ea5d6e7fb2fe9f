"""The AR streamer: same History type, streaming equals collected, stop really ends the thread."""

import threading

import pytest

from generation import ARConfig, ConfigError, History, generate_autoregressive, stream_autoregressive
from generation.models import CausalLM
from fakes import TINY_EOS_ID, tiny_llama

PROMPT = [4, 8, 15, 16, 23, 42]


@pytest.fixture(scope="module")
def tiny_ar():
    return CausalLM(tiny_llama(21), tokenizer=None, stop_ids=(TINY_EOS_ID,), context_length=512, name="tiny-ar")


def ar_threads():
    """The AR generate threads alive now (a set: a test asserts that its own are gone, whatever other tests left)."""
    return {t for t in threading.enumerate() if t.name == "unmask-ar-generate"}


def test_streaming_equals_collected(tiny_ar):
    config = ARConfig(max_new_tokens=12)
    streamed = [h.canvas for h in stream_autoregressive(tiny_ar, PROMPT, config)]
    collected = generate_autoregressive(tiny_ar, PROMPT, config)
    assert streamed[-1] == collected.canvas
    assert streamed == [collected.canvas_at(k) for k in range(1, len(collected.steps) + 1)]


def test_matches_plain_greedy_generate(tiny_ar):
    import torch

    expected = tiny_ar.module.generate(torch.tensor([PROMPT]), max_new_tokens=12, do_sample=False,
                                       eos_token_id=[TINY_EOS_ID], pad_token_id=TINY_EOS_ID)[0, len(PROMPT):]
    assert generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=12)).canvas == expected.tolist()


def test_step_i_appends_token_i(tiny_ar):
    history = generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=10))
    assert [s.positions for s in history.steps] == [[i] for i in range(len(history.steps))]
    assert history.last_changed == history.first_committed == list(range(1, len(history.steps) + 1))
    assert history.kind == "autoregressive" and history.initial == []
    assert all(0 < s.scores[0] <= 1 for s in history.steps)
    assert [s.forward_passes for s in history.steps] == list(range(1, len(history.steps) + 1))


def test_same_seed_same_sample(tiny_ar):
    config = ARConfig(max_new_tokens=12, temperature=1.0, seed=5)
    assert generate_autoregressive(tiny_ar, PROMPT, config).canvas == generate_autoregressive(tiny_ar, PROMPT, config).canvas


def test_stop_ends_the_thread_and_keeps_a_valid_history(tiny_ar):
    earlier = ar_threads()
    stop = threading.Event()
    for history in stream_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=200), stop=stop):
        if len(history.steps) == 3:
            stop.set()
    assert history.stopped and len(history.steps) == 3  # nothing made after the stop is recorded
    assert history.canvas == [s.tokens[0] for s in history.steps]  # valid: one token per step, in order
    assert History.from_json(history.to_json()) == history
    assert ar_threads() <= earlier


def test_abandoned_stream_ends_the_thread(tiny_ar):
    earlier = ar_threads()
    stream = stream_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=200))
    next(stream)
    stream.close()
    assert ar_threads() <= earlier


def test_repeated_runs_leak_no_threads(tiny_ar):
    before = len(threading.enumerate())
    for _ in range(5):
        stop = threading.Event()
        for history in stream_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=50), stop=stop):
            stop.set()
    assert len(threading.enumerate()) == before


def test_errors_in_the_generate_thread_reach_the_caller(tiny_ar):
    earlier = ar_threads()
    with pytest.raises(IndexError, match="index out of range"):
        generate_autoregressive(tiny_ar, [10_000], ARConfig(max_new_tokens=4))  # id outside the vocabulary
    assert ar_threads() <= earlier


def test_context_overflow(tiny_ar):
    with pytest.raises(ConfigError, match="exceeds the model's context"):
        generate_autoregressive(tiny_ar, list(range(500)), ARConfig(max_new_tokens=64))


def test_a_prefix_starts_the_canvas_as_given_tokens_and_is_continued(tiny_ar):
    prefix = [7, 9, 11]
    history = generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=6), prefix=prefix)
    assert history.canvas[:3] == prefix and history.fixed == [0, 1, 2] and history.initial == prefix
    plain = generate_autoregressive(tiny_ar, PROMPT + prefix, ARConfig(max_new_tokens=6))
    assert history.canvas[3:] == plain.canvas  # the same as prompting with the prefix appended
    assert history.answer_tokens() == history.answer_length() - 3
