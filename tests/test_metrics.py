"""generation.metrics: hand-computed entropies, repetition rates and perplexities, and the judge's NLL against a direct
log-softmax sum (one implementation, shared by the sweep and training/evaluate.py)."""

import math

import torch

from fakes import TINY_VOCAB, tiny_llama
from generation import CausalLM
from generation.metrics import perplexity, repeated_ngrams, teacher_nll, unigram_entropy


def test_unigram_entropy_by_hand():
    assert math.isclose(unigram_entropy([1, 1, 2, 2]), math.log(2))
    assert unigram_entropy([7, 7, 7]) == 0.0 and unigram_entropy([]) == 0.0
    assert math.isclose(unigram_entropy([1, 2, 3, 4]), math.log(4))


def test_repeated_ngrams_by_hand():
    assert repeated_ngrams([1, 2, 1, 2, 1], n=2) == 0.5  # (1,2) (2,1) (1,2) (2,1): 2 of 4 repeat
    assert repeated_ngrams([1, 2, 3, 4, 5]) == 0.0 and repeated_ngrams([9] * 8) == 1 - 1 / 5
    assert repeated_ngrams([1, 2, 3]) == 0.0 and repeated_ngrams([]) == 0.0  # no 4-gram: nothing repeats


def test_perplexity_pools_over_tokens():
    assert math.isclose(perplexity(2 * math.log(4), 2), 4.0)
    assert math.isnan(perplexity(0.0, 0))


def test_teacher_nll_is_the_sum_of_next_token_log_probabilities():
    judge = CausalLM(tiny_llama(3), tokenizer=None, name="judge")
    prompt, answer = [5, 6, 7], [8, 9, 10, 11]
    logits = judge.module(torch.tensor([prompt + answer])).logits[0].double()
    expected = -sum(torch.log_softmax(logits[len(prompt) - 1 + i], -1)[t] for i, t in enumerate(answer))
    assert math.isclose(teacher_nll(judge, prompt, answer), float(expected), rel_tol=1e-9)
    assert teacher_nll(judge, prompt, []) == 0.0
    assert max(answer) < TINY_VOCAB


def test_training_evaluate_uses_the_same_functions():
    import training.evaluate as evaluate

    assert evaluate.teacher_nll is teacher_nll and evaluate.unigram_entropy is unigram_entropy
    assert evaluate.repeated_ngrams is repeated_ngrams
