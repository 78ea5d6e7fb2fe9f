"""The AR decoding loop: same History type, streaming equals collected, greedy = transformers' greedy
`generate` (with its repetition penalty too), draws from the tempered distribution with the run's own generator, in the caller's thread."""

import itertools
import threading
from dataclasses import replace

import pytest
import torch
from transformers import RepetitionPenaltyLogitsProcessor

from generation import ARConfig, ConfigError, History, generate_autoregressive, stream_autoregressive
from generation.models import CausalLM
from fakes import TINY_EOS_ID, tiny_llama

PROMPT = [4, 8, 15, 16, 23, 42]


@pytest.fixture(scope="module")
def tiny_ar():
    return CausalLM(tiny_llama(21), tokenizer=None, stop_ids=(TINY_EOS_ID,), context_length=512, name="tiny-ar")


def test_streaming_equals_collected(tiny_ar):
    config = ARConfig(max_new_tokens=12)
    streamed = [h.canvas for h in stream_autoregressive(tiny_ar, PROMPT, config)]
    collected = generate_autoregressive(tiny_ar, PROMPT, config)
    assert streamed[-1] == collected.canvas
    assert streamed == [collected.canvas_at(k) for k in range(1, len(collected.steps) + 1)]


def test_matches_plain_greedy_generate(tiny_ar):
    expected = tiny_ar.module.generate(torch.tensor([PROMPT]), max_new_tokens=12, do_sample=False,
                                       eos_token_id=[TINY_EOS_ID], pad_token_id=TINY_EOS_ID)[0, len(PROMPT):]
    assert generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=12)).canvas == expected.tolist()


@pytest.mark.parametrize("penalty", [0.7, 1.5, 3.0])
def test_repetition_penalty_is_transformers_one(tiny_ar, penalty):
    """CTRL's penalty as `generate` applies it (the prompt and the answer so far), greedy and sampled at T=1: the
    same tokens, and the same first-token distribution; a strong penalty changes the greedy answer."""
    expected = tiny_ar.module.generate(torch.tensor([PROMPT]), max_new_tokens=12, do_sample=False,
                                       repetition_penalty=penalty, eos_token_id=[TINY_EOS_ID],
                                       pad_token_id=TINY_EOS_ID)[0, len(PROMPT):]
    config = ARConfig(max_new_tokens=12, repetition_penalty=penalty)
    assert generate_autoregressive(tiny_ar, PROMPT, config).canvas == expected.tolist()
    assert expected.tolist() != generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=12)).canvas
    logits = tiny_ar.module(torch.tensor([PROMPT])).logits[:, -1].detach().float()
    processed = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([PROMPT]), logits.clone())
    first = generate_autoregressive(tiny_ar, PROMPT, replace(config, max_new_tokens=1, temperature=1.0)).steps[0]
    assert first.scores[0] == pytest.approx(float(torch.softmax(processed[0], -1)[first.tokens[0]]), rel=1e-4)


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


def test_stop_ends_the_run_and_keeps_a_valid_history(tiny_ar):
    stop = threading.Event()
    for history in stream_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=200), stop=stop):
        if len(history.steps) == 3:
            stop.set()
    assert history.stopped and len(history.steps) == 3  # nothing made after the stop is recorded
    assert history.canvas == [s.tokens[0] for s in history.steps]  # valid: one token per step, in order
    assert History.from_json(history.to_json()) == history


def test_stopped_before_the_first_token(tiny_ar):
    stop = threading.Event()
    stop.set()
    history = generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=8), stop=stop)
    assert history.stopped and history.steps == [] and history.canvas == []


def test_runs_in_the_callers_thread(tiny_ar, monkeypatch):
    """No thread of its own: CPU torch runs slower in a thread started after the main thread has used it."""
    threads = set()
    forward = type(tiny_ar.module).forward
    monkeypatch.setattr(type(tiny_ar.module), "forward",
                        lambda self, *a, **k: threads.add(threading.current_thread()) or forward(self, *a, **k))
    before = len(threading.enumerate())
    generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=5, temperature=1.0))
    assert threads == {threading.current_thread()} and len(threading.enumerate()) == before


def test_errors_reach_the_caller(tiny_ar):
    with pytest.raises(IndexError, match="index out of range"):
        generate_autoregressive(tiny_ar, [10_000], ARConfig(max_new_tokens=4))  # id outside the vocabulary


def test_draws_follow_the_tempered_distribution(tiny_ar):
    """The first token of many seeded runs is distributed as softmax(logits / T), and its score is that probability."""
    temperature, runs = 0.6, 3000
    logits = tiny_ar.module(torch.tensor([PROMPT])).logits[0, -1].detach().float()
    expected = torch.softmax(logits / temperature, dim=-1)
    counts = torch.zeros_like(expected)
    for seed in range(runs):
        step = generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=1, temperature=temperature, seed=seed)).steps[0]
        counts[step.tokens[0]] += 1
        assert step.scores[0] == pytest.approx(float(expected[step.tokens[0]]), rel=1e-4)
    likeliest = expected.topk(5).indices
    spread = (expected * (1 - expected) / runs).sqrt()  # the sampling error of each frequency
    assert ((counts / runs - expected)[likeliest].abs() < 4 * spread[likeliest]).all()


def test_top_k_and_top_p_filter_the_draws(tiny_ar):
    greedy = generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=8)).canvas
    for filtered in (ARConfig(max_new_tokens=8, temperature=1.0, top_k=1, seed=3),
                     ARConfig(max_new_tokens=8, temperature=1.0, top_p=1e-6, seed=3)):
        history = generate_autoregressive(tiny_ar, PROMPT, filtered)
        assert history.canvas == greedy and all(s.scores[0] == 1.0 for s in history.steps)


def test_concurrent_runs_do_not_perturb_each_others_draws(tiny_ar):
    configs = [ARConfig(max_new_tokens=10, temperature=1.0, seed=seed) for seed in (1, 2)]
    alone = [generate_autoregressive(tiny_ar, PROMPT, c).canvas for c in configs]
    streams = [stream_autoregressive(tiny_ar, PROMPT, c) for c in configs]
    histories = {}
    for pair in itertools.zip_longest(*streams):  # interleaved: one step of each in turn
        histories.update({i: h for i, h in enumerate(pair) if h is not None})
    assert [histories[0].canvas, histories[1].canvas] == alone


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


def test_each_token_keeps_the_models_five_likeliest_there_whatever_top_p_left(tiny_ar):
    """Top-p 0.05 leaves one token to draw from; the hover still lists the model's five likeliest, none at 0%."""
    history = generate_autoregressive(tiny_ar, PROMPT, ARConfig(max_new_tokens=8, temperature=0.8, top_p=0.05, seed=3))
    for step in history.steps:
        (top,) = step.candidates
        probabilities = [p for _, p in top]
        assert len(top) == 5 and probabilities == sorted(probabilities, reverse=True) and min(probabilities) > 0
        assert step.tokens[0] == top[0][0] and step.scores == [1.0]  # a nucleus of one: the likeliest, drawn surely
    assert History.from_json(history.to_json()) == history
