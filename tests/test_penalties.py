"""generation/sampling.py's penalties: CTRL's repetition penalty and DRY, worked examples, and on tiny random models
every decoder honours them (a strong DRY leaves no repeated 3-gram; CTRL's penalty of the AR loop is transformers',
tests/test_autoregressive.py)."""

from types import SimpleNamespace

import pytest
import torch

from fakes import TINY_MASK_ID, tiny_block_causal_lm, tiny_diffusion_lm, tiny_llama
from generation import ARConfig, DiffusionConfig, diffuse, generate_autoregressive
from generation.models import CausalLM
from generation.sampling import Penalties, dry_penalised, penalised, repeats, sequence_breakers

PROMPT = [5, 17, 33, 2, 41, 8]
STRONG = 50.0  # a DRY multiplier that bans extending any repeat of 2 tokens or more


def repeated_trigrams(ids: list[int]) -> list[tuple[int, ...]]:
    grams = [tuple(ids[i:i + 3]) for i in range(len(ids) - 2)]
    return [gram for i, gram in enumerate(grams) if gram in grams[:i]]


def test_the_repetition_penalty_divides_positive_logits_and_multiplies_negative_ones():
    assert penalised(torch.tensor([2.0, -1.0, 3.0]), [0, 1, 1], 2.0).tolist() == [1.0, -2.0, 3.0]
    assert penalised(torch.tensor([[2.0, -1.0]]), [], 2.0).tolist() == [[2.0, -1.0]]


def test_repeats_finds_the_longest_repeat_each_next_token_would_extend():
    assert repeats([5, 6, 7, 9, 5, 6]) == {7: 2}  # 5 6 -> 7 again would repeat 5 6 7
    assert repeats([1, 5, 6, 7, 1, 5, 6, 8, 2, 5, 6]) == {7: 2, 8: 2}
    assert repeats([1, 5, 6, 7, 2, 1, 5, 6]) == {7: 3}
    assert repeats([5, 6, 7, 9, 5, 6], frozenset({5})) == {7: 1}  # a breaker ends the repeat
    assert repeats([5, 6, 7, 9, 5, 6], frozenset({6})) == {}  # the text ends in a breaker
    assert repeats([5, 6, 9, 5, 6], frozenset({9})) == {}  # nor is a breaker penalised
    assert repeats([]) == {}


def test_dry_grows_with_the_repeat_from_the_allowed_length_on():
    context = [1, 2, 3, 4, 5, 9, 1, 2, 3, 4]  # 5 would repeat 4 tokens, ...
    logits = dry_penalised(torch.zeros(10), context, 0.8)
    assert logits[5] == pytest.approx(-0.8 * 1.75 ** 2) and (logits[:5] == 0).all() and (logits[6:] == 0).all()
    assert dry_penalised(torch.zeros(10), [1, 2, 9, 1], 0.8).tolist() == [0.0] * 10  # a repeat of 1 is allowed
    assert dry_penalised(torch.zeros(10), context, 0.0).tolist() == [0.0] * 10
    assert torch.isfinite(dry_penalised(torch.zeros(3), [1, 2] * 400, 0.8)).all()  # a very long loop: banned, finite


def test_breakers_are_each_texts_last_token():
    tokenizer = SimpleNamespace(encode=lambda text, add_special_tokens: [7, ord(text[0])])
    assert sequence_breakers(tokenizer) == frozenset(map(ord, "\n:\"*"))
    assert sequence_breakers(None) == frozenset()


def test_on_a_canvas_the_repetition_penalty_counts_every_token_and_dry_the_text_before_each_blank():
    M = TINY_MASK_ID
    canvas = [1, 2, 3, 9, 1, 2, M, 4, M, 9, 3, 9, 3, M]  # blanks at 6, 8 and 13
    shaped = Penalties(repetition=2.0, dry=1.0).on_canvas(torch.ones(3, 10), torch.tensor(canvas),
                                                          torch.tensor([6, 8, 13]), M)
    ctrl = torch.ones(10).index_fill(0, torch.tensor([1, 2, 3, 4, 9]), 0.5)  # every token on it, either side
    assert torch.equal(shaped[1], ctrl)  # 4 before blank 8: no repeat
    assert shaped[0][3] == pytest.approx(0.5 - 1.0)  # 1 2 -> 3 would repeat "1 2 3"
    assert torch.equal(shaped[0].index_fill(0, torch.tensor(3), 0.5), ctrl)
    assert shaped[2][9] == pytest.approx(0.5 - 1.0)  # 9 3 9 3 -> 9 would repeat "3 9"; its text starts after blank 8
    assert torch.equal(shaped[2].index_fill(0, torch.tensor(9), 0.5), ctrl)


def test_the_ar_loop_extends_no_repeat_under_a_strong_dry():
    lm = CausalLM(tiny_llama(5), tokenizer=None, stop_ids=(), context_length=512, name="tiny-ar")
    looping = generate_autoregressive(lm, PROMPT, ARConfig(max_new_tokens=64)).canvas
    assert repeated_trigrams(PROMPT + looping)  # greedy, this tiny model loops
    plain = generate_autoregressive(lm, PROMPT, ARConfig(max_new_tokens=64, dry_multiplier=STRONG)).canvas
    assert not repeated_trigrams(PROMPT + plain)


@pytest.mark.parametrize("algorithm,block", [("speculative", 4), ("verified", 2), ("low_confidence", 1)])
def test_diffusion_decoders_reading_left_to_right_extend_no_repeat_under_a_strong_dry(algorithm, block):
    lm = tiny_block_causal_lm(5, stop_ids=())
    config = DiffusionConfig(gen_length=64, steps=64, block_length=block, algorithm=algorithm, cache="prefix")
    assert repeated_trigrams(PROMPT + diffuse(lm, PROMPT, config).canvas)
    config = DiffusionConfig(**{**config.to_dict(), "dry_multiplier": STRONG})
    assert not repeated_trigrams(PROMPT + diffuse(lm, PROMPT, config).canvas)


def test_any_order_decoding_takes_the_penalties_too():
    lm = tiny_diffusion_lm(4)
    plain = DiffusionConfig(gen_length=32, steps=32, block_length=8)
    penalised_run = diffuse(lm, PROMPT, DiffusionConfig(**{**plain.to_dict(), "dry_multiplier": STRONG,
                                                           "repetition_penalty": 3.0}))
    assert penalised_run.canvas != diffuse(lm, PROMPT, plain).canvas
    assert TINY_MASK_ID not in penalised_run.canvas
